"""Shared fixtures: tiny synthetic data sets (real encoded videos), built once per session."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
import torch

# Triton's jit decorator reads TRITON_INTERPRET when a kernel module is imported, so it is set here,
# before any test imports sportsfusion.kernels: without CUDA, Triton kernels run on the CPU.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Fast paths must never be needed by the tests; each op test forces the path it checks.
os.environ.setdefault("SPORTSFUSION_OPS", "auto")

# A tiny network on tiny clips keeps every end-to-end test at a few seconds on 2 cores; the
# structure (layers, strides, streams) is the paper's.
TINY_MODEL = ["--width", "0.05", "--input-size", "48"]


def tiny_config(classes: str = "sports", **overrides):
    from sportsfusion.data.synthetic import PRESETS

    base = PRESETS["sports" if classes == "sports" else "ucf"]
    knobs = dict(num_classes=3, videos_per_class=4, frames=24, width=64, height=48)
    return replace(base, **{**knobs, **overrides})


@pytest.fixture(scope="session")
def tiny_sports(tmp_path_factory):
    pytest.importorskip("av", reason="the synthetic videos are encoded with PyAV")
    from sportsfusion.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("data") / "sports", tiny_config(), progress=False)


@pytest.fixture(scope="session")
def tiny_ucf(tmp_path_factory):
    pytest.importorskip("av", reason="the synthetic videos are encoded with PyAV")
    from sportsfusion.data.synthetic import generate

    out = tmp_path_factory.mktemp("data") / "ucf"
    return generate(out, tiny_config("ucf", num_classes=2), progress=False)


@pytest.fixture
def sports_copy(tiny_sports, tmp_path):
    """A private copy a test may damage."""
    return shutil.copytree(tiny_sports, tmp_path / "sports")
