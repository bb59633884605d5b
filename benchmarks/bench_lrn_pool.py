"""The fused LRN + max pool against the PyTorch reference, on slow fusion's two 'C-N-P' layers.

Shapes are conv1's and conv2's outputs (after ReLU) at the paper's input size, full frame (178)
and multiresolution (89): (N, 96, 4, 56, 56), (N, 256, 2, 28, 28), (N, 96, 4, 27, 27),
(N, 256, 2, 14, 14). CUDA: N = 32, bf16, channels-last (the models' CUDA setting). CPU: N = 1,
fp32 (CI smoke with `--benchmark-disable`, and the numbers for CPU users).

`forward` times the op alone; `train` times forward + backward (the native path's autograd runs
the fused analytic backward, torch.ops.sportsfusion.lrn_pool_backward, so `train` says whether the
fused path pays off in training too).
Work per call, `bytes`: what a fused kernel must move, with E input elements of s bytes,
    forward: E*s read + E/4*s written (1.25 E*s);  train: forward + x and grad_out read, grad_x
    written (3.5 E*s in all).
The reference moves about 13x the forward bytes (ops/lrn_pool.py).
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from conftest import record, sync

from sportsfusion.ops._backends import native_runs_on
from sportsfusion.ops.lrn_pool import lrn_pool, pooled_shape

# The module itself: sportsfusion.ops.lrn_pool, as an attribute, is the function.
lrn_pool_module = importlib.import_module("sportsfusion.ops.lrn_pool")

# (C, T, H, W) of slow fusion's conv1 and conv2 outputs.
SHAPES = {
    "slow_conv1_full": (96, 4, 56, 56),
    "slow_conv1_multires": (96, 4, 27, 27),
    "slow_conv2_full": (256, 2, 28, 28),
    "slow_conv2_multires": (256, 2, 14, 14),
}


def fused_bytes(x: torch.Tensor, mode: str) -> int:
    inputs, outputs = x.numel(), math.prod(pooled_shape(x))
    moved = inputs + outputs if mode == "forward" else 2 * inputs + 2 * outputs + inputs
    return moved * x.element_size()


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("impl", ["reference", "native"])
@pytest.mark.parametrize("name", list(SHAPES))
def bench_lrn_pool(benchmark, device, name, impl, mode):
    if impl == "native" and not native_runs_on(device.type):
        pytest.skip(f"sportsfusion._C has no {device.type} kernel in this build")
    cuda = device.type == "cuda"
    batch, dtype = (32, torch.bfloat16) if cuda else (1, torch.float32)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, *SHAPES[name]), generator=g, device=device, dtype=dtype)
    x = x.relu_().mul_(30).contiguous(memory_format=torch.channels_last_3d)
    grad_out = torch.randn(pooled_shape(x), generator=g, device=device, dtype=dtype)
    x.requires_grad_(mode == "train")

    def run():
        if mode == "forward":
            with torch.no_grad():
                lrn_pool(x, impl=impl)
        else:
            torch.autograd.grad(lrn_pool(x, impl=impl), x, grad_out)
        sync(device)

    group = f"{name}-{mode}"
    benchmark.group = group
    benchmark.pedantic(run, rounds=50 if cuda else 5, iterations=1, warmup_rounds=5 if cuda else 1)
    record(
        benchmark,
        group,
        impl,
        batch,
        impl=impl,
        bytes=fused_bytes(x, mode),
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        shape=f"{tuple(x.shape)} -> {tuple(pooled_shape(x))}",
    )
