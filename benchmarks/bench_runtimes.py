"""Deployment latency (batch 1) and throughput (batch 32) of every runtime present, full frame
against multiresolution, side by side in one run (issue 6).

Runtimes: PyTorch eager (CUDA graphs on a GPU), onnxruntime (CUDA provider with onnxruntime-gpu,
CPU otherwise), TensorRT where `tensorrt` is installed. Models are the paper's single-frame and
slow-fusion networks at 178x178 with 101 classes (UCF-101).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from conftest import record, run_device

from sportsfusion.checkpoint import save_checkpoint
from sportsfusion.models import arch_of, create

CLASSES = [f"class{i}" for i in range(101)]
BATCHES = {"latency": 1, "throughput": 32}


def runtimes() -> list[str]:
    found = ["torch"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        found.append("onnxruntime")
    if importlib.util.find_spec("tensorrt") and torch.cuda.is_available():
        found.append("tensorrt")
    return found


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Checkpoint, ONNX and (where possible) engine per (model, form), built once on first use."""
    root = tmp_path_factory.mktemp("runtimes")
    cache: dict[tuple[str, str, str], str] = {}

    def get(name: str, form: str, runtime: str) -> str:
        key = (name, form, runtime)
        if key in cache:
            return cache[key]
        torch.manual_seed(0)
        model = create(name, len(CLASSES), multires=form == "multires").eval()
        ckpt = root / f"{name}-{form}.pt"
        if not ckpt.exists():
            save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "arch": arch_of(model),
                    "classes": CLASSES,
                    "step": 0,
                },
            )
        path = ckpt
        if runtime in ("onnxruntime", "tensorrt"):
            from sportsfusion.export.onnx import export_onnx

            path = root / f"{name}-{form}.onnx"
            if not path.exists():
                export_onnx(model, CLASSES, path)
        if runtime == "tensorrt":
            from sportsfusion.export.tensorrt import build_engine

            onnx_path, path = path, root / f"{name}-{form}.engine"
            build_engine(onnx_path, path, precision="fp16", max_batch=max(BATCHES.values()))
        cache[key] = str(path)
        return cache[key]

    return get


@pytest.mark.parametrize("mode", list(BATCHES))
@pytest.mark.parametrize("form", ["full", "multires"])
@pytest.mark.parametrize("name", ["single", "slow"])
@pytest.mark.parametrize("runtime", runtimes())
def bench_runtime(benchmark, model_files, runtime, name, form, mode):
    from sportsfusion.export.runtime import load_classifier

    device = run_device()
    batch = BATCHES[mode]
    if device.type == "cpu" and mode == "throughput":
        batch = 8  # 32 clips of 10 frames at 178x178 take seconds per call on a laptop CPU
    classifier = load_classifier(model_files(name, form, runtime), runtime=runtime)
    rng = np.random.default_rng(0)
    shape = (batch, classifier.frames_per_clip, classifier.input_size, classifier.input_size, 3)
    clips = rng.integers(0, 256, shape, dtype=np.uint8)

    benchmark.group = f"{runtime}-{name}-{mode}"
    rounds = 20 if mode == "latency" else 5
    benchmark.pedantic(lambda: classifier(clips), rounds=rounds, warmup_rounds=2)
    record(
        benchmark,
        f"{runtime}-{name}-{mode}",
        form,
        batch,
        runtime=classifier.name,
        batch=batch,
        device=str(device),
    )
    if benchmark.stats is not None:
        benchmark.extra_info["latency_ms"] = round(benchmark.stats.stats.median * 1e3, 2)
