"""Slow fusion's whole forward and training step on three paths, side by side in one run:

    eager     every op forced to the PyTorch reference (cuDNN convs, separate ReLU/LRN/pool)
    fused     the dispatcher's fast paths: fused stem, Triton conv + bias + ReLU, CUDA LRN + pool
    compiled  torch.compile (default mode) of the eager path, CUDA only: the compiler baseline;
              max-autotune would spend most of the GPU check's minutes tuning

CUDA: the paper's network at 178x178, batch 32, bf16 autocast, channels-last, cudnn.benchmark on;
the goal (issue 5) is fused >= 1.3x eager forward, >= 1.2x eager training, and faster than
compiled. CPU (CI smoke): a tiny network, eager against the C++ ops; no compile (minutes on CPU).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import record, sync

from sportsfusion.models import create, to_channels_last
from sportsfusion.models.cost import multiply_adds_per_clip
from sportsfusion.ops import forced_impl
from sportsfusion.ops._backends import native_runs_on, triton_runs_on

CLASSES = 487  # Sports-1M


def fused_impl(device: torch.device) -> str | None:
    """The one --ops value that reaches the fast paths here, or None when there are none."""
    if device.type == "cuda":
        return "auto"  # native stem and LRN + pool, Triton conv, in the dispatcher's order
    return "native" if native_runs_on("cpu") else None


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("form", ["full", "multires"])
@pytest.mark.parametrize("path", ["eager", "fused", "compiled"])
def bench_slow_fusion(benchmark, device, path, form, mode):
    cuda = device.type == "cuda"
    if path == "compiled" and not cuda:
        pytest.skip("torch.compile is benchmarked on CUDA only")
    impl = "reference" if path != "fused" else fused_impl(device)
    if impl is None:
        pytest.skip("no fast path built here (extension missing)")
    if path == "fused" and cuda and not triton_runs_on("cuda"):
        pytest.skip("triton missing: the fused conv cannot run")
    torch.backends.cudnn.benchmark = True
    batch, size, width = (32, 178, 1.0) if cuda else (4, 48, 0.05)
    torch.manual_seed(0)
    model = create("slow", CLASSES, multires=form == "multires", width=width, input_size=size)
    model = model.to(device).train(mode == "train")
    if cuda:
        to_channels_last(model)
    clip = torch.randint(0, 256, (batch, 10, size, size, 3), dtype=torch.uint8, device=device)
    target = torch.randint(0, CLASSES, (batch,), device=device)
    flops = 2 * multiply_adds_per_clip(model, clip) * batch * (1 if mode == "forward" else 3)
    run = torch.compile(model) if path == "compiled" else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    def step():
        with forced_impl(impl), amp:
            if mode == "forward":
                with torch.no_grad():
                    run(clip)
            else:
                loss = F.cross_entropy(run(clip).float(), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        sync(device)

    benchmark.group = f"slow-{form}-{mode}"
    # Warm-up keeps autotuning (Triton, cuDNN) and compilation out of the timing.
    benchmark.pedantic(step, rounds=10 if cuda else 2, warmup_rounds=3 if cuda else 1)
    record(
        benchmark,
        f"slow-{form}-{mode}",
        path,
        batch,
        impl="eager" if path == "eager" else path,
        flops=flops,
        device=str(device),
        batch=batch,
    )
