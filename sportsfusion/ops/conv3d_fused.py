"""The fusion towers' convolutions with bias and ReLU in one pass: relu(conv(x, w) + b).

    conv3d_fused(x, weight, bias, stride, padding, *, relu=True, impl=None)
        x       (N, CIN, T, H, W), or (N, CIN, H, W) for the 2-D layers (run as T = 1)
        weight  (COUT, CIN, KT, KH, KW), or (COUT, CIN, KH, KW)
        bias    (COUT,) or None
        ->      (N, COUT, TO, HO, WO), each output size (size + 2*pad - kernel) // stride + 1
    FLOPs = 2 * N*TO*HO*WO * COUT * K, K = CIN*KT*KH*KW (bias and ReLU not counted)

The layers (paper-facts §1-2; models/slow.py, early.py, layers.py), full frame 178 | multires 89:
    slow conv1   3->96    k(4,11,11) s(2,3,3) p0        10x178² -> 4x56²  | 10x89² -> 4x27²
    slow conv2   96->256  k(2,5,5)   s(2,1,1) p(0,2,2)  4x28²   -> 2x28²  | 4x14²  -> 2x14²
    slow conv3   256->384 k(2,3,3)   s(2,1,1) p(0,1,1)  2x14²   -> 1x14²  | 2x7²   -> 1x7²
    early conv1  3->96    k(10,11,11) s(1,3,3) p0       10x178² -> 1x56²  | 10x89² -> 1x27²
    2-D layers   conv4 384->384, conv5 384->256 3x3 p1 on 14² | 7² (early fusion's conv2-3 too:
                 96->256 5x5 p2 on 28² | 14², 256->384 3x3 p1 on 14² | 7²)

Paths: `reference` is F.conv3d / F.conv2d + ReLU, any float dtype: what the CPU and ONNX export
run. `triton` (sportsfusion.kernels.conv3d_fused) is an implicit GEMM over channels-last input,
bf16/fp16/fp32 with fp32 accumulation and bias + ReLU in its epilogue; its backward is PyTorch's
own convolution backward (cuDNN on CUDA) behind the ReLU mask. Under autocast both paths compute
in the autocast dtype, as F.conv3d does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sportsfusion.ops._backends import candidates, choose, triton_interpreted

TRITON_DTYPES = (torch.bfloat16, torch.float16, torch.float32)  # tl.dot operand types on GPUs

# The layers above at the paper's size, for the GPU tests and benchmarks: (cin, cout, (T, H, W),
# kernel, stride, padding); a 2-entry kernel is a 2-D layer on (N, C, H, W).
LAYERS = {
    "slow_conv1_full": (3, 96, (10, 178, 178), (4, 11, 11), (2, 3, 3), (0, 0, 0)),
    "slow_conv1_multires": (3, 96, (10, 89, 89), (4, 11, 11), (2, 3, 3), (0, 0, 0)),
    "slow_conv2_full": (96, 256, (4, 28, 28), (2, 5, 5), (2, 1, 1), (0, 2, 2)),
    "slow_conv2_multires": (96, 256, (4, 14, 14), (2, 5, 5), (2, 1, 1), (0, 2, 2)),
    "slow_conv3_full": (256, 384, (2, 14, 14), (2, 3, 3), (2, 1, 1), (0, 1, 1)),
    "slow_conv3_multires": (256, 384, (2, 7, 7), (2, 3, 3), (2, 1, 1), (0, 1, 1)),
    "slow_conv4_full": (384, 384, (1, 14, 14), (3, 3), (1, 1), (1, 1)),
    "slow_conv4_multires": (384, 384, (1, 7, 7), (3, 3), (1, 1), (1, 1)),
    "slow_conv5_full": (384, 256, (1, 14, 14), (3, 3), (1, 1), (1, 1)),
    "slow_conv5_multires": (384, 256, (1, 7, 7), (3, 3), (1, 1), (1, 1)),
    "early_conv1_full": (3, 96, (10, 178, 178), (10, 11, 11), (1, 3, 3), (0, 0, 0)),
    "early_conv1_multires": (3, 96, (10, 89, 89), (10, 11, 11), (1, 3, 3), (0, 0, 0)),
}


def compile_cases(dtype: torch.dtype, batch: int = 32) -> dict:
    """What `python -m sportsfusion.ops.aot` compiles for sm_90: every layer of LAYERS at
    `batch` through this op's own Triton path (channels-last input, 2-D layers as T = 1), on
    empty CPU tensors: only the launch arguments matter."""

    def case(layer):
        cin, cout, size, kernel, stride, padding = layer
        size = size[1:] if len(kernel) == 2 else size  # a 2-D layer reads (N, C, H, W)
        x = torch.empty((batch, cin, *size), dtype=dtype)
        weight = torch.empty((cout, cin, *kernel), dtype=dtype)
        bias = torch.empty((cout,), dtype=dtype)
        return lambda: conv3d_fused_triton(x, weight, bias, stride, padding, relu=True)

    return {name: case(layer) for name, layer in LAYERS.items()}


def _triple(value, name: str, dims: int) -> tuple[int, ...]:
    """int or a tuple of `dims` ints -> a tuple of `dims` ints."""
    values = (value,) * dims if isinstance(value, int) else tuple(value)
    if len(values) != dims or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{name}: expected an int or {dims} ints, got {value!r}")
    return values


def _check(x, weight, bias, stride, padding) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate once; returns (stride, padding) as tuples of x.dim() - 2 ints."""
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() in (4, 5)):
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a float tensor (N, C, T, H, W) or (N, C, H, W), got {got}")
    dims = x.dim() - 2
    if weight.dim() != x.dim() or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"weight: expected (COUT, {x.shape[1]}{', k' * dims}) for x of shape "
            f"{tuple(x.shape)}, got {tuple(weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias: expected ({weight.shape[0]},) or None, got {tuple(bias.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.device != x.device or not t.is_floating_point()):
            raise ValueError(
                f"{name}: expected a float tensor on {x.device}, got {t.dtype} on {t.device}"
            )
    stride, padding = _triple(stride, "stride", dims), _triple(padding, "padding", dims)
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"stride, padding: expected >= 1 and >= 0, got {stride}, {padding}")
    sizes = zip(x.shape[2:], weight.shape[2:], stride, padding)
    if min((s + 2 * p - k) // st + 1 for s, k, st, p in sizes) < 1:
        raise ValueError(
            f"x: input size {tuple(x.shape[2:])} with padding {padding} is smaller than the "
            f"kernel {tuple(weight.shape[2:])}"
        )
    return stride, padding


def conv3d_fused_reference(x, weight, bias=None, stride=1, padding=0, relu=True) -> torch.Tensor:
    """relu(conv(x, weight) + bias) in plain PyTorch: conv3d on 5-D input, conv2d on 4-D."""
    conv = F.conv3d if x.dim() == 5 else F.conv2d
    y = conv(x, weight, bias, stride, padding)
    return F.relu(y, inplace=True) if relu else y  # in place, as the models' nn.ReLU


class Conv3dFused(torch.autograd.Function):
    """Forward: the Triton kernel (bias + ReLU fused). Backward: ReLU's mask from the saved
    output, then aten.convolution_backward (cuDNN on CUDA) for input and weight, and the bias
    gradient as an fp32 sum. x and weight arrive in one compute dtype, 5-D."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, relu):
        from sportsfusion.kernels.conv3d_fused import (
            conv3d_fused_packed,
            pack_weight,
            pad_thin_channels,
        )

        tf32 = torch.backends.cudnn.allow_tf32  # fp32 follows what F.conv3d would do here
        x_kernel, w_kernel = pad_thin_channels(x, weight)  # RGB -> 4 channels, forward only
        y = conv3d_fused_packed(
            x_kernel, pack_weight(w_kernel), bias, list(weight.shape[2:]), list(stride),
            list(padding), relu, tf32,
        )  # fmt: skip
        del x_kernel, w_kernel  # the backward reads the unpadded tensors saved below
        ctx.save_for_backward(x, weight, y if relu else None)
        ctx.geometry = (list(stride), list(padding))
        ctx.relu, ctx.bias_dtype = relu, None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, y = ctx.saved_tensors
        stride, padding = ctx.geometry
        grad = torch.ops.aten.threshold_backward(grad_y, y, 0) if ctx.relu else grad_y
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, stride, padding, [1, 1, 1], False, [0, 0, 0], 1,
                [need_x, need_w, False],
            )  # fmt: skip
        if need_b:
            grad_b = grad.sum((0, 2, 3, 4), dtype=torch.float32).to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None, None, None


def conv3d_fused_triton(x, weight, bias=None, stride=1, padding=0, relu=True) -> torch.Tensor:
    """The Triton path for 4-D or 5-D input (checked by the caller)."""
    flat = x.dim() == 4
    if flat:  # a 2-D layer is the T = 1 case of the 3-D kernel
        x, weight = x.unsqueeze(2), weight.unsqueeze(2)
        stride, padding = (1, *stride), (0, *padding)
    dtype = _compute_dtype(x)
    # Channels innermost, or every row of an A tile is a strided gather (16x the DRAM sectors);
    # one copy costs ~2x the input's bytes, a few % of any of these layers' time.
    x = x.to(dtype).contiguous(memory_format=torch.channels_last_3d)
    y = Conv3dFused.apply(x, weight.to(dtype), bias, tuple(stride), tuple(padding), relu)
    return y.squeeze(2) if flat else y


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the convolution computes in: autocast's where it is on, else x's."""
    device = x.device.type
    if device in ("cpu", "cuda") and torch.is_autocast_enabled(device):  # meta has no autocast
        return torch.get_autocast_dtype(device)
    return x.dtype


def _candidates(device_type: str, dtype: torch.dtype) -> dict:
    """This op's paths for `device_type` (ops/_backends.py orders them). Triton takes the
    GPU's tl.dot dtypes, and fp64 under the interpreter (numpy), where gradcheck runs."""
    triton_dtype = dtype in TRITON_DTYPES or (dtype == torch.float64 and triton_interpreted())
    return candidates(
        device_type, conv3d_fused_reference, triton=conv3d_fused_triton, triton_ok=triton_dtype
    )


def conv3d_fused(x, weight, bias=None, stride=1, padding=0, *, relu=True, impl=None):
    """relu(conv(x, weight) + bias) for the towers' conv layers, on the path the dispatcher picks
    (CUDA: Triton then reference; CPU: reference, or Triton when forced under the interpreter)."""
    stride, padding = _check(x, weight, bias, stride, padding)
    device = x.device.type
    _, fn = choose("conv3d_fused", device, _candidates(device, _compute_dtype(x)), impl)
    return fn(x, weight, bias, stride, padding, relu)
