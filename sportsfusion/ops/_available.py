"""What fast paths this process can run: the compiled extension and Triton, each checked once.

A missing path is not an error: the package says once which path it uses instead (the reference
always works), and `--ops native|triton` then fails with one line naming what is missing.

The three questions the dispatchers ask (`native_runs_on`, `triton_runs_on`, `triton_interpreted`)
are constants to torch.compile: dynamo runs them once while tracing instead of tracing into them,
since it cannot trace importlib, a pybind11 call or os.environ without breaking the graph.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os

import torch

log = logging.getLogger("sportsfusion.ops")


@functools.cache
def native_module():
    """`sportsfusion._C` (importing it registers torch.ops.sportsfusion.*), or None."""
    try:
        module = importlib.import_module("sportsfusion._C")
    except ImportError as exc:
        log.info(
            "sportsfusion.ops: native extension not available (%s); "
            "using Triton or the PyTorch reference",
            exc,
        )
        return None
    return module


@torch.compiler.assume_constant_result
def native_runs_on(device_type: str) -> bool:
    module = native_module()
    if module is None:
        return False
    return device_type == "cpu" or (device_type == "cuda" and module.with_cuda())


@functools.cache
def _triton_importable() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        log.info("sportsfusion.ops: triton not installed; Triton kernels unavailable")
        return False
    return True


@torch.compiler.assume_constant_result
def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@torch.compiler.assume_constant_result
def triton_runs_on(device_type: str) -> bool:
    """Triton compiles for CUDA devices; on the CPU it runs only under its interpreter
    (TRITON_INTERPRET=1, which must be set before triton is first imported)."""
    if device_type == "cuda":
        return _triton_importable()
    return device_type == "cpu" and triton_interpreted() and _triton_importable()
