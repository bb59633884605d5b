"""This run's peaks, the yardsticks of the roofline table (conftest.py): how fast this device
copies memory and multiplies matrices, measured in the same session as the kernels they judge,
so "% of copy" means the same clocks, drivers and neighbours.

    copy    a large tensor .copy_ into another: bytes read + written / time (device to device)
    matmul  CUDA: bf16 8192^3 (tensor cores); CPU: fp32 1024^3 (a laptop runs it in seconds)
"""

from __future__ import annotations

import torch
from conftest import sync


def bench_copy(benchmark, device):
    # Far beyond any cache: H100 L2 is 50 MB, but server CPUs' L3 reaches hundreds of MB (this
    # 2-core VM reports 480 MiB), hence 1 GiB each side there; a smaller copy measures the cache.
    size = (512 if device.type == "cuda" else 1024) << 20
    src = torch.ones(size // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)

    def run():
        dst.copy_(src)
        sync(device)

    run()  # first touch of dst's pages
    benchmark.group = "peaks"
    benchmark.extra_info.update(peak="copy", bytes=2 * size, device=str(device))
    benchmark(run)


def bench_matmul(benchmark, device):
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def run():
        torch.mm(a, b)
        sync(device)

    run()  # cuBLAS / oneDNN pick their kernels on the first call
    benchmark.group = "peaks"
    benchmark.extra_info.update(peak="matmul", flops=2 * n**3, dtype=str(dtype), device=str(device))
    benchmark(run)
