"""Forward and training-step throughput of every model, full frame against multiresolution, at
the paper's input size (178x178 clips), on the reference ops and on the dispatcher's choice
(`auto`: the fused kernels on CUDA). Beside each timing: multiply-adds per clip (counted on the
reference path, so the same whichever path is timed) and, in the closing table, the
multires/full ratio of this run per path.

CUDA: batch 32, bf16 autocast, channels-last. CPU: batch 8, fp32, 2 warm-up rounds and 7 timed
(a laptop can run it; at batch 2 the FC layers, memory-bound, hide the convolutions and multires
loses on CPU). `bench_model_forward_paper_batch` times forward on `auto` at the paper's batch of
32 on every device too. The closing table gives each multires/full ratio with its interquartile
spread.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import record, sync

from sportsfusion.models import MODELS, create, to_channels_last
from sportsfusion.models.cost import multiply_adds_per_clip
from sportsfusion.ops import forced_impl

CLASSES = 487  # Sports-1M


def _setup(device, name, form, batch):
    """The model as the device runs it, a random uint8 batch of paper-size clips, its
    multiply-adds per clip, and the autocast context (bf16 on CUDA, off on the CPU)."""
    model = create(name, CLASSES, multires=form == "multires").to(device)
    if device.type == "cuda":
        to_channels_last(model)
    shape = (batch, model.frames_per_clip, 178, 178, 3)
    clip = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    return model, clip, multiply_adds_per_clip(model, clip), amp


@pytest.mark.parametrize("ops", ["reference", "auto"])
@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("form", ["full", "multires"])
@pytest.mark.parametrize("name", list(MODELS))
def bench_model(benchmark, device, name, form, mode, ops):
    batch = 32 if device.type == "cuda" else 8
    model, clip, macs, amp = _setup(device, name, form, batch)
    target = torch.randint(0, CLASSES, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with forced_impl(ops), amp:
            if mode == "forward":
                with torch.no_grad():
                    model(clip)
            else:
                loss = F.cross_entropy(model(clip).float(), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        sync(device)

    model.train(mode == "train")
    benchmark.group = f"{name}-{mode}-{ops}"
    # Enough rounds for a stable median on a CPU too (2 rounds varied by +-25% there).
    rounds = 10 if device.type == "cuda" else 7
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=3 if device.type == "cuda" else 2)
    record(
        benchmark,
        f"{name}-{mode}-{ops}",
        form,
        batch,
        impl=ops,
        device=str(device),
        batch=batch,
        macs_per_clip=macs,
        gmacs_per_clip=round(macs / 1e9, 3),
    )


@pytest.mark.parametrize("form", ["full", "multires"])
@pytest.mark.parametrize("name", list(MODELS))
def bench_model_forward_paper_batch(benchmark, device, name, form):
    """Forward on `auto` at the paper's batch of 32 (paper-facts §4), on every device. At the
    CPU's default batch of 8 the FC layers dominate a forward: at so few rows a matrix product
    reads its weights once per batch, memory-bound, and multires has more FC weights (single:
    122 M against 70 M), so its multiply-add saving shows only once a batch amortises them."""
    batch = 32
    model, clip, macs, amp = _setup(device, name, form, batch)
    model.eval()

    def step():
        with forced_impl("auto"), amp, torch.no_grad():
            model(clip)
        sync(device)

    benchmark.group = f"{name}-forward-auto-batch32"
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    record(
        benchmark,
        f"{name}-forward-auto-b32",
        form,
        batch,
        impl="auto",
        device=str(device),
        batch=batch,
        macs_per_clip=macs,
        gmacs_per_clip=round(macs / 1e9, 3),
    )
