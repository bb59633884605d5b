"""Local response normalisation + 2x2 max pooling, fused: the 'N-P' after conv1 and conv2.

    lrn_pool(x)  (N, C, T, H, W) or (N, C, H, W) -> (N, C, [T,] ceil(H/2), ceil(W/2)), x's dtype

LRN across channels as nn.LocalResponseNorm(size, alpha, beta, k) computes it (our constants,
models/layers.py: size 5, alpha 5e-4, beta 0.5, k 2; the window is channels c - size//2 to
c + (size-1)//2, and the sum is divided by size however much of it lies outside [0, C)), then
max pooling 2x2 stride 2 with ceil_mode=True over H and W: windows overhanging the edge take the
max of their valid elements. T is untouched. The ReLU before the LRN is not part of the op.

Memory traffic, forward, for E = N*C*T*H*W input elements: the reference writes and re-reads a
full-size tensor at each step (square, pad, window average, scale, add, pow, divide, then the
pool reads it again): about 16 E element transfers. The fused kernels (csrc/lrn_pool/) read x
once and write the pooled output once: 1.25 E, all in x's dtype (16-bit on CUDA), computing in
fp32 and rounding once at the store. Slow fusion's conv1 at batch 32 in bf16 is E = 38.5 M:
96 MB for the fused kernel.

Paths: `reference` (plain PyTorch, exportable; what ONNX export traces),
`native` (the C++ CPU kernel and the CUDA kernel behind torch.ops.sportsfusion.lrn_pool; the CUDA
default when built). Autograd of the native path runs the analytic fused backward,
torch.ops.sportsfusion.lrn_pool_backward (first order only): it saves only x, which the ReLU
before keeps alive anyway, where the reference saves its full-size intermediates, and recomputes
the divisors and each window's argmax from it. Ties in the pooling go where PyTorch's max pooling
sends them (the first index in row-major order, NaN winning, compared in x's dtype). Backward
traffic: x and grad_out read, grad_x written, 2.25 E elements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sportsfusion.ops._backends import candidates, choose, native_module

# The models' constants (models/layers.py LRN_*), repeated here so ops/ never imports models/.
SIZE, ALPHA, BETA, K = 5, 5e-4, 0.5, 2.0
NATIVE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_x(x: torch.Tensor) -> None:
    if x.dim() not in (4, 5) or not x.is_floating_point():
        raise ValueError(
            "x: expected a floating-point tensor (N, C, T, H, W) or (N, C, H, W), "
            f"got {x.dtype} {tuple(x.shape)}"
        )


def lrn_pool_reference(
    x: torch.Tensor, size: int = SIZE, alpha: float = ALPHA, beta: float = BETA, k: float = K
) -> torch.Tensor:
    """nn.LocalResponseNorm then ceil-mode 2x2/2 max pooling over (H, W), in x's dtype.

    PyTorch's CPU avg_pool3d (inside local_response_norm) has no 16-bit kernel, so 16-bit CPU
    inputs are normalised in fp32 and rounded back; everywhere else this is exactly the models'
    nn.LocalResponseNorm + max pooling.
    """
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        y = F.local_response_norm(x.float(), size, alpha, beta, k).to(x.dtype)
    else:
        y = F.local_response_norm(x, size, alpha, beta, k)
    if x.dim() == 5:
        return F.max_pool3d(y, (1, 2, 2), (1, 2, 2), ceil_mode=True)  # frames stay apart
    return F.max_pool2d(y, 2, 2, ceil_mode=True)


def pooled_shape(x: torch.Tensor) -> list[int]:
    *lead, h, w = x.shape
    return [*lead, (h + 1) // 2, (w + 1) // 2]


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The native op's output layout: channels-last when x is (and is not also plain
    contiguous, as with C = 1), contiguous otherwise; csrc/lrn_pool/lrn_pool_torch.cpp agrees."""
    channels_last = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    if not x.is_contiguous() and x.is_contiguous(memory_format=channels_last):
        return channels_last
    return torch.contiguous_format


# ---- registration of the native op: fake (shape-only) kernels and autograd ------------------


def _fake_lrn_pool(x, size, alpha, beta, k):
    torch._check(x.dim() in (4, 5), lambda: f"lrn_pool: x must be 4-D or 5-D, got {x.dim()}-D")
    torch._check(x.dtype in NATIVE_DTYPES, lambda: f"lrn_pool: unsupported dtype {x.dtype}")
    return torch.empty(
        pooled_shape(x), dtype=x.dtype, device=x.device, memory_format=output_memory_format(x)
    )


def _fake_lrn_pool_out(x, size, alpha, beta, k, out):
    return None


def _fake_lrn_pool_backward(grad_out, x, size, alpha, beta, k):
    torch._check(x.dim() in (4, 5), lambda: f"lrn_pool: x must be 4-D or 5-D, got {x.dim()}-D")
    torch._check(x.dtype in NATIVE_DTYPES, lambda: f"lrn_pool: unsupported dtype {x.dtype}")
    return torch.empty(
        x.shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x)
    )


def _fake_lrn_pool_backward_out(grad_out, x, size, alpha, beta, k, grad_x):
    return None


def _setup_context(ctx, inputs, output):
    x, size, alpha, beta, k = inputs
    ctx.save_for_backward(x)
    ctx.params = (size, alpha, beta, k)


def _backward(ctx, grad_out):
    (x,) = ctx.saved_tensors
    grad_x = torch.ops.sportsfusion.lrn_pool_backward(grad_out, x, *ctx.params)
    return grad_x, None, None, None, None


if native_module() is not None:
    torch.library.register_fake("sportsfusion::lrn_pool", _fake_lrn_pool)
    torch.library.register_fake("sportsfusion::lrn_pool_out", _fake_lrn_pool_out)
    torch.library.register_fake("sportsfusion::lrn_pool_backward", _fake_lrn_pool_backward)
    torch.library.register_fake("sportsfusion::lrn_pool_backward_out", _fake_lrn_pool_backward_out)
    torch.library.register_autograd(
        "sportsfusion::lrn_pool", _backward, setup_context=_setup_context
    )


def _lrn_pool_native(x, size, alpha, beta, k):
    return torch.ops.sportsfusion.lrn_pool(x, size, alpha, beta, k)


# ---- the dispatcher --------------------------------------------------------------------------


def _candidates(device_type: str, dtype: torch.dtype) -> dict:
    """This op's paths for `device_type` (ops/_backends.py orders them)."""
    native_ok = dtype in NATIVE_DTYPES
    return candidates(device_type, lrn_pool_reference, native=_lrn_pool_native, native_ok=native_ok)


def lrn_pool(
    x: torch.Tensor,
    *,
    size: int = SIZE,
    alpha: float = ALPHA,
    beta: float = BETA,
    k: float = K,
    impl: str | None = None,
) -> torch.Tensor:
    """LRN + 2x2/2 ceil-mode max pool: (N, C, [T,] H, W) -> (N, C, [T,] ceil(H/2), ceil(W/2)).

    `auto` runs the native kernel where the extension is built (CPU and CUDA; see
    _backends.PREFERENCE for the measured reasons), else the reference; `impl`, `--ops` or
    SPORTSFUSION_OPS force one.
    """
    _check_x(x)
    device = x.device.type
    _, fn = choose("lrn_pool", device, _candidates(device, x.dtype), impl)
    return fn(x, size, alpha, beta, k)


class LRNPool(nn.Module):
    """The 'N-P' of a conv block as one module (the models' LRN constants by default)."""

    def __init__(self, size: int = SIZE, alpha: float = ALPHA, beta: float = BETA, k: float = K):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrn_pool(x, size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
