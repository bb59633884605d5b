"""The fused conv + bias + ReLU against cuDNN, layer by layer, in one run.

CUDA: every convolution of slow fusion (conv1-3 spatio-temporal, conv4-5 2-D) and early fusion's
conv1, full frame (178) and multiresolution (89) shapes, batch 32 and 128, bf16 channels-last.
`reference` is F.conv3d / F.conv2d with its bias, then ReLU, under cudnn.benchmark; `triton` is
sportsfusion.kernels.conv3d_fused, autotuned before timing. Work per call:
    flops = 2 * N*TO*HO*WO * COUT * CIN*KT*KH*KW,  bytes = input + weight + output, each once.
CPU (CI smoke, `--benchmark-disable`): the reference on tiny scaled layers, and Triton only where
it runs on the CPU (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import record, sync

from sportsfusion.ops._backends import triton_runs_on
from sportsfusion.ops.conv3d_fused import LAYERS, conv3d_fused

# CPU smoke: the same geometry with few channels and small frames.
TINY = {
    "slow_conv1_tiny": (3, 16, (10, 23, 23), (4, 11, 11), (2, 3, 3), (0, 0, 0)),
    "slow_conv2_tiny": (16, 32, (4, 7, 7), (2, 5, 5), (2, 1, 1), (0, 2, 2)),
    "slow_conv4_tiny": (32, 32, (1, 7, 7), (3, 3), (1, 1), (1, 1)),
}
ON_CUDA = torch.cuda.is_available()
CASES = [(n, b) for n in LAYERS for b in (32, 128)] if ON_CUDA else [(n, 2) for n in TINY]


def setup(layer, batch: int, device: torch.device, dtype: torch.dtype):
    cin, cout, (t, h, w), kernel, stride, padding = layer
    two_d = len(kernel) == 2
    shape = (batch, cin, h, w) if two_d else (batch, cin, t, h, w)
    fmt = torch.channels_last if two_d else torch.channels_last_3d
    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=fmt)
    weight = torch.randn(cout, cin, *kernel, device=device, dtype=dtype) / math.sqrt(cin)
    weight = weight.contiguous(memory_format=fmt)
    bias = torch.randn(cout, device=device, dtype=dtype)
    return x, weight, bias, stride, padding


def work(x, weight, stride, padding) -> tuple[int, int, tuple[int, ...]]:
    """(flops, bytes, output shape) of one call."""
    sizes = [
        (s + 2 * p - k) // st + 1
        for s, k, st, p in zip(x.shape[2:], weight.shape[2:], stride, padding)
    ]
    out = (x.shape[0], weight.shape[0], *sizes)
    positions = x.shape[0] * math.prod(sizes)
    k = math.prod(weight.shape[1:])
    flops = 2 * positions * weight.shape[0] * k
    nbytes = (x.numel() + weight.numel() + math.prod(out)) * x.element_size()
    return flops, nbytes, out


@pytest.mark.parametrize("impl", ["reference", "triton"])
@pytest.mark.parametrize("name,batch", CASES, ids=[f"{n}-b{b}" for n, b in CASES])
def bench_conv3d_fused(benchmark, device, name, batch, impl, monkeypatch):
    if impl == "triton" and not triton_runs_on(device.type):
        pytest.skip(f"Triton does not run on {device.type} here (CPU needs TRITON_INTERPRET=1)")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    layer = LAYERS[name] if device.type == "cuda" else TINY[name]
    x, weight, bias, stride, padding = setup(layer, batch, device, dtype)
    # The reference's best algorithm, picked in the warm-up call; restored for other benchmarks.
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)

    def run():
        with torch.no_grad():
            conv3d_fused(x, weight, bias, stride, padding, impl=impl)
        sync(device)

    run()  # autotuning (Triton) and algorithm search (cuDNN) happen here, outside the timing
    group = f"{name}-b{batch}"
    benchmark.group = group
    cuda = device.type == "cuda"
    benchmark.pedantic(run, rounds=20 if cuda else 1, iterations=1, warmup_rounds=3 if cuda else 0)
    flops, nbytes, out = work(x, weight, stride, padding)
    record(
        benchmark,
        group,
        impl,
        batch,
        impl=impl,
        flops=flops,
        bytes=nbytes,
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        shape=f"{tuple(x.shape)} -> {out}",
    )
