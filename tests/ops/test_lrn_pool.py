"""The fused LRN + max pool: native kernels against the reference, autograd, the dispatcher.

Tolerances. fp32: rtol 1e-6 (about 8 ulp) against float64 and against the fp32 reference, since
the kernels round about ten times (5-term sum, divide, scale, add, sqrt, divide) in an order
that only mostly matches PyTorch's, and every step is relative (no cancellation), so atol is 0.
16-bit: the kernels compute in fp32 and round once, so the result is the fp32 result rounded,
bit for bit, and within one rounding step (2^-7 bf16, 2^-10 fp16, relative) of the exact value.

Backward (the analytic lrn_pool_backward against autograd through the reference). fp32: both
sides round some 20 times (divisor, root, the product chain, the window sum) in different orders,
and grad_x = grad_b * s - coef * a * sum can cancel, so the error is relative to the gradient's
scale, not to each element: rtol 1e-5 with atol 1e-6 * max |grad| (about 8 ulp of the scale).
fp64: the same at 1e-12. 16-bit: both compute in fp32 and round once (the CPU reference upcasts),
so within one rounding step plus the fp32 difference. A misrouted pooling gradient is an error of
the gradient's own size, so every tolerance also checks the argmax routing.
"""

import importlib

import pytest
import torch
from torch import nn

from sportsfusion.models import layers
from sportsfusion.ops._backends import OpsUnavailableError
from sportsfusion.ops.lrn_pool import LRNPool, lrn_pool, lrn_pool_reference

# The module itself: sportsfusion.ops.lrn_pool, as an attribute, is the function.
lrn_pool_module = importlib.import_module("sportsfusion.ops.lrn_pool")
_backends = importlib.import_module("sportsfusion.ops._backends")
native_runs_on = _backends.native_runs_on

PARAMS = (5, 5e-4, 0.5, 2.0)  # size, alpha, beta, k: the models' constants
STEP = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}  # one rounding step, relative
needs_native = pytest.mark.skipif(
    not native_runs_on("cpu"),
    reason="sportsfusion._C is not built (python setup.py build_ext --inplace)",
)
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() or not native_runs_on("cuda"),
    reason="needs a CUDA device and the CUDA build of sportsfusion._C",
)

SHAPES = [
    (1, 1, 2, 7, 9),  # one channel, batch 1, odd H and W (ceil-mode overhang)
    (2, 3, 1, 8, 6),  # C < size, one frame
    (1, 5, 4, 11, 5),  # C == size
    (2, 24, 2, 13, 17),  # conv1's 96 channels at width 0.25, primes
    (1, 96, 1, 9, 9),
    (2, 24, 12, 9),  # 4-D: the single-frame models
    (1, 3, 7, 7),
    (3, 1, 1, 1),  # one pixel
]


def make_x(shape, *, seed, signed=False, dtype=torch.float32, layout="contiguous", device="cpu"):
    """Activations as conv + ReLU produce them (scaled so that a^2 * alpha / size is comparable
    with k: the normalisation matters), or signed ones; in the asked layout."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 30
    x = (x if signed else x.relu()).to(dtype=dtype, device=device)
    if layout == "channels_last":
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        return x.contiguous(memory_format=fmt)
    if layout == "strided":  # a non-dense view: every other column of a wider tensor
        wide = torch.zeros((*shape[:-1], 2 * shape[-1]), dtype=dtype, device=device)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


def native(x, params=PARAMS):
    return torch.ops.sportsfusion.lrn_pool(x, *params)


def test_reference_is_the_models_lrn_then_pool():
    assert (layers.LRN_SIZE, layers.LRN_ALPHA, layers.LRN_BETA, layers.LRN_K) == PARAMS
    x = make_x((2, 8, 3, 9, 11), seed=0)
    block = nn.Sequential(layers.lrn(), nn.MaxPool3d((1, 2, 2), (1, 2, 2), ceil_mode=True))
    torch.testing.assert_close(lrn_pool_reference(x), block(x), rtol=0, atol=0)
    x4 = make_x((2, 8, 9, 11), seed=1)
    block = nn.Sequential(layers.lrn(), nn.MaxPool2d(2, 2, ceil_mode=True))
    torch.testing.assert_close(lrn_pool_reference(x4), block(x4), rtol=0, atol=0)


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("signed", [False, True], ids=["relu", "signed"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cpu_native_fp32_equals_reference(shape, signed, layout):
    x = make_x(shape, seed=sum(shape), signed=signed, layout=layout)
    got = native(x)
    assert got.shape == lrn_pool_reference(x).shape and got.dtype == torch.float32
    torch.testing.assert_close(got, lrn_pool_reference(x), rtol=1e-6, atol=0)
    exact = lrn_pool_reference(x.double())
    torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=0)


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", SHAPES[3:6], ids=str)
def test_cpu_native_16bit_rounds_the_fp32_result_once(shape, dtype):
    x = make_x(shape, seed=7, signed=True, dtype=dtype)
    got = native(x)
    assert got.dtype == dtype
    # Bit for bit the fp32 computation rounded once ...
    torch.testing.assert_close(got, native(x.float()).to(dtype), rtol=0, atol=0)
    # ... so within one step of the exact value, and no worse than PyTorch at this precision.
    exact = lrn_pool_reference(x.double())
    err = (got.double() - exact).abs()
    assert (err <= STEP[dtype] * exact.abs()).all()
    torch_err = (lrn_pool_reference(x).double() - exact).abs()
    assert err.max() <= 2 * torch_err.max()


@needs_native
@pytest.mark.parametrize("params", [(4, 1e-3, 0.75, 1.0), (1, 5e-4, 0.5, 2.0), (7, 2e-2, 0.6, 1.5)])
def test_cpu_native_other_window_sizes_and_exponents(params):
    x = make_x((2, 6, 2, 7, 8), seed=3, signed=True)
    torch.testing.assert_close(native(x, params), lrn_pool_reference(x, *params), rtol=1e-6, atol=0)


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_output_keeps_the_memory_format_and_parallel_rows_agree(layout):
    x = make_x((2, 96, 3, 27, 27), seed=5, layout=layout)  # multires conv1, many parallel tasks
    got = native(x)
    fmt = torch.channels_last_3d if layout == "channels_last" else torch.contiguous_format
    assert got.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(got, lrn_pool_reference(x), rtol=1e-6, atol=0)


@needs_native
@pytest.mark.parametrize("out_layout", ["contiguous", "channels_last", "strided"])
def test_out_variant_writes_every_element(out_layout):
    x = make_x((2, 12, 3, 9, 7), seed=11, signed=True)
    want = lrn_pool_reference(x)
    out = make_x(tuple(want.shape), seed=0, layout=out_layout).fill_(float("nan"))
    torch.ops.sportsfusion.lrn_pool_out(x, *PARAMS, out)
    assert not out.isnan().any()
    torch.testing.assert_close(out, want, rtol=1e-6, atol=0)


@needs_native
def test_bad_inputs_are_clear_errors():
    x = make_x((1, 4, 2, 6, 6), seed=0)
    with pytest.raises(ValueError, match="float32, float64, float16 or bfloat16"):
        native(x.long())
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\) or \(N, C, H, W\)"):
        native(x[0, :, 0])
    with pytest.raises(ValueError, match="size must be >= 1"):
        native(x, (0, 5e-4, 0.5, 2.0))
    with pytest.raises(ValueError, match=r"out must have shape \[1, 4, 2, 3, 3\]"):
        torch.ops.sportsfusion.lrn_pool_out(x, *PARAMS, torch.empty(1, 4, 2, 3, 4))
    with pytest.raises(ValueError, match="out must have x's dtype"):
        torch.ops.sportsfusion.lrn_pool_out(x, *PARAMS, torch.empty(1, 4, 2, 3, 3).double())
    with pytest.raises(ValueError, match=r"x: expected a floating-point tensor"):
        lrn_pool(x.long(), impl="native")
    with pytest.raises(ValueError, match=r"got torch.float32 \(4, 6, 6\)"):
        lrn_pool(x[0, :, 0])


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(1, 7, 2, 5, 3), (2, 3, 4, 3)], ids=str)
def test_gradcheck_float64(shape, layout):
    x = make_x(shape, seed=2, signed=True, dtype=torch.float64, layout=layout).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: lrn_pool(t, impl="native"), (x,))


def native_backward(grad_out, x, params=PARAMS):
    return torch.ops.sportsfusion.lrn_pool_backward(grad_out, x, *params)


def reference_backward(grad_out, x, params=PARAMS):
    x = x.detach().requires_grad_()
    (grad_x,) = torch.autograd.grad(lrn_pool_reference(x, *params), x, grad_out)
    return grad_x


def tied(shape, *, seed, dtype=torch.float32, layout="contiguous"):
    """Tie-heavy activations: ReLU'd (half zeros) and coarsely quantised, with every pixel
    repeated 2x2 so that each pooling window holds four equal values (cropped to the shape, so
    odd sizes shift the repeats against the windows)."""
    *lead, h, w = shape
    small = make_x((*lead, (h + 2) // 2, (w + 2) // 2), seed=seed, dtype=torch.float64)
    x = (small / 10).round() * 10  # few distinct values
    x = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    start = seed % 2  # an odd start puts the repeats across window boundaries
    x = x[..., start : start + h, start : start + w].to(dtype).contiguous()
    if layout == "channels_last":
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        return x.contiguous(memory_format=fmt)
    return x


def grad_out_for(x, *, seed):
    g = torch.Generator().manual_seed(seed)
    shape = lrn_pool_module.pooled_shape(x)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(x.dtype)


def assert_grad_close(got, want, *, rtol, scale):
    torch.testing.assert_close(got, want, rtol=rtol, atol=scale * want.abs().max().item())


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("inputs", ["relu", "signed", "tied"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_native_backward_fp32_equals_autograd_of_the_reference(shape, inputs, layout):
    if inputs == "tied":
        x = tied(shape, seed=sum(shape), layout="contiguous" if layout == "strided" else layout)
    else:
        x = make_x(shape, seed=sum(shape), signed=inputs == "signed", layout=layout)
    grad_out = grad_out_for(x, seed=1)
    got = native_backward(grad_out, x)
    assert got.shape == x.shape and got.dtype == x.dtype
    assert got.is_contiguous(memory_format=lrn_pool_module.output_memory_format(x))
    assert_grad_close(got, reference_backward(grad_out, x), rtol=1e-5, scale=1e-6)
    exact = reference_backward(grad_out.double(), x.double())
    assert_grad_close(got.double(), exact, rtol=1e-5, scale=1e-6)


@needs_native
@pytest.mark.parametrize("inputs", ["signed", "tied"])
@pytest.mark.parametrize("shape", [(2, 7, 3, 9, 11), (1, 3, 2, 4, 4), (2, 6, 7, 5)], ids=str)
def test_native_backward_fp64_equals_autograd_of_the_reference(shape, inputs):
    if inputs == "tied":
        x = tied(shape, seed=3, dtype=torch.float64)
    else:
        x = make_x(shape, seed=3, signed=True, dtype=torch.float64)
    grad_out = grad_out_for(x, seed=2)
    for params in (PARAMS, (4, 1e-3, 0.75, 1.0), (7, 2e-2, 0.6, 1.5)):
        got = native_backward(grad_out, x, params)
        assert_grad_close(got, reference_backward(grad_out, x, params), rtol=1e-12, scale=1e-13)


@needs_native
def test_native_backward_ties_go_to_the_first_index_as_in_pytorch():
    # Every window holds four equal values (all zero for many): the whole gradient of a window
    # goes to its top-left pixel, in PyTorch and in the kernel.
    x = tied((1, 4, 2, 6, 8), seed=0)
    grad_out = torch.ones(lrn_pool_module.pooled_shape(x))
    want = reference_backward(grad_out, x)
    got = native_backward(grad_out, x)
    own = torch.zeros_like(x, dtype=torch.bool)
    own[..., ::2, ::2] = True
    assert (want[~own] == 0).all() and (got[~own] == 0).all()
    assert_grad_close(got, want, rtol=1e-5, scale=1e-6)


@needs_native
def test_native_backward_nan_wins_the_pooling_as_in_pytorch():
    # A NaN input makes its pixel's b NaN, which wins its window (PyTorch takes the last of
    # several); its gradient, and those of the channels whose divisor it enters, are NaN.
    x = make_x((1, 8, 1, 4, 4), seed=9)
    x[:, 0, :, 0, 1] = float("nan")
    x[:, 7, :, 3, 2] = float("nan")
    x[:, 7, :, 3, 3] = float("nan")
    grad_out = grad_out_for(x, seed=3)
    got, want = native_backward(grad_out, x), reference_backward(grad_out, x)
    torch.testing.assert_close(got.isnan(), want.isnan(), rtol=0, atol=0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", [(2, 24, 3, 11, 9), (2, 24, 11, 9)], ids=str)
@pytest.mark.parametrize("inputs", ["signed", "tied"])
def test_native_backward_16bit_within_one_rounding(shape, dtype, inputs):
    # The CPU reference normalises in fp32 and pools the rounded tensor; the kernel compares the
    # rounded values too, so ties in 16 bits route alike.
    if inputs == "tied":
        x = tied(shape, seed=4, dtype=dtype, layout="channels_last")
    else:
        x = make_x(shape, seed=4, signed=True, dtype=dtype)
    grad_out = grad_out_for(x, seed=5)
    got = native_backward(grad_out, x)
    assert got.dtype == dtype
    want = reference_backward(grad_out, x)
    assert_grad_close(got.double(), want.double(), rtol=STEP[dtype], scale=1e-5)


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_native_gradients_through_autograd(dtype, layout):
    # lrn_pool(impl="native")'s autograd runs the fused backward.
    x = make_x((2, 24, 3, 11, 9), seed=4, signed=True, dtype=dtype, layout=layout)
    x.requires_grad_()
    grad_out = grad_out_for(x, seed=5)
    (g_native,) = torch.autograd.grad(lrn_pool(x, impl="native"), x, grad_out)
    torch.testing.assert_close(g_native, native_backward(grad_out, x.detach()), rtol=0, atol=0)
    (g_reference,) = torch.autograd.grad(lrn_pool(x, impl="reference"), x, grad_out)
    rtol = 1e-5 if dtype == torch.float32 else STEP[dtype]
    assert_grad_close(g_native.double(), g_reference.double(), rtol=rtol, scale=1e-5)


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_backward_out_variant_writes_every_element(layout):
    x = make_x((2, 12, 3, 9, 7), seed=11, signed=True)
    grad_out = grad_out_for(x, seed=6)
    broadcast = grad_out[:, :, :1].expand(2, 12, 3, 5, 4)  # autograd may pass expanded grads
    for g in (grad_out, broadcast):
        grad_x = make_x(tuple(x.shape), seed=0, layout=layout).fill_(float("nan"))
        torch.ops.sportsfusion.lrn_pool_backward_out(g, x, *PARAMS, grad_x)
        assert not grad_x.isnan().any()
        assert_grad_close(grad_x, reference_backward(g, x), rtol=1e-5, scale=1e-6)


@needs_native
def test_backward_bad_inputs_are_clear_errors():
    x = make_x((1, 4, 2, 6, 6), seed=0)
    grad_out = torch.zeros(1, 4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"grad_out must have shape \[1, 4, 2, 3, 3\]"):
        native_backward(torch.zeros(1, 4, 2, 3, 4), x)
    with pytest.raises(ValueError, match="grad_out must have x's dtype"):
        native_backward(grad_out.double(), x)
    with pytest.raises(ValueError, match="grad_x must have x's shape"):
        torch.ops.sportsfusion.lrn_pool_backward_out(grad_out, x, *PARAMS, torch.empty(1, 4))
    with pytest.raises(ValueError, match="size must be >= 1"):
        native_backward(grad_out, x, (0, 5e-4, 0.5, 2.0))


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 6, 2, 5, 7), (1, 3, 4, 3)], ids=str)
def test_opcheck_backward(shape, layout):
    x = make_x(shape, seed=6, signed=True, layout=layout)
    grad_out = grad_out_for(x, seed=7)
    torch.library.opcheck(torch.ops.sportsfusion.lrn_pool_backward.default, (grad_out, x, *PARAMS))
    grad_x = torch.empty_like(x)
    torch.library.opcheck(
        torch.ops.sportsfusion.lrn_pool_backward_out.default, (grad_out, x, *PARAMS, grad_x)
    )


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 6, 2, 5, 7), (1, 3, 4, 3)], ids=str)
def test_opcheck(shape, layout):
    x = make_x(shape, seed=6, signed=True, layout=layout)
    for requires_grad in (False, True):
        args = (x.clone().requires_grad_(requires_grad), *PARAMS)
        torch.library.opcheck(torch.ops.sportsfusion.lrn_pool.default, args)


def test_dispatcher_cpu_auto_is_native_where_built_else_the_reference(monkeypatch):
    def must_not_run(*args):
        raise AssertionError("the native path ran")

    monkeypatch.setattr(lrn_pool_module, "_lrn_pool_native", must_not_run)
    monkeypatch.setenv("SPORTSFUSION_OPS", "auto")
    x = make_x((1, 4, 2, 6, 6), seed=0)
    if native_runs_on("cpu"):  # auto takes the measured-faster C++ kernel
        with pytest.raises(AssertionError, match="the native path ran"):
            lrn_pool(x)
    lrn_pool(x, impl="triton")  # an op without a Triton kernel runs its reference
    monkeypatch.setattr(_backends, "native_runs_on", lambda device_type: False)
    torch.testing.assert_close(lrn_pool(x), lrn_pool_reference(x), rtol=0, atol=0)
    torch.testing.assert_close(LRNPool()(x), lrn_pool_reference(x), rtol=0, atol=0)
    monkeypatch.setenv("SPORTSFUSION_OPS", "native")
    with pytest.raises(OpsUnavailableError, match="'native' is not available on cpu"):
        lrn_pool(x)


# ---- CUDA (run on a GPU machine: pytest -m gpu) ------------------------------------------


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cuda_native_fp32_equals_reference(shape, layout):
    x = make_x(shape, seed=sum(shape), signed=True, layout=layout, device="cuda")
    got = native(x)
    assert got.device.type == "cuda" and got.is_contiguous(
        memory_format=lrn_pool_module.output_memory_format(x)
    )
    torch.testing.assert_close(got, lrn_pool_reference(x), rtol=1e-6, atol=0)
    torch.testing.assert_close(
        got.cpu().double(), lrn_pool_reference(x.cpu().double()), rtol=1e-6, atol=0
    )


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize(
    "shape", [(2, 96, 4, 27, 27), (2, 256, 2, 14, 14), (2, 24, 12, 9)], ids=str
)
def test_cuda_native_16bit_channels_last(shape, dtype):
    x = make_x(shape, seed=8, dtype=dtype, layout="channels_last", device="cuda")
    got = native(x)
    torch.testing.assert_close(got, native(x.float()).to(dtype), rtol=0, atol=0)
    exact = lrn_pool_reference(x.double())
    assert ((got.double() - exact).abs() <= STEP[dtype] * exact.abs()).all()
    torch.testing.assert_close(lrn_pool(x, impl="auto"), got, rtol=0, atol=0)  # CUDA: native


@pytest.mark.gpu
@needs_cuda
def test_cuda_out_variant_on_a_side_stream():
    x = make_x((2, 12, 3, 9, 7), seed=11, signed=True, layout="channels_last", device="cuda")
    out = torch.full((2, 12, 3, 5, 4), float("nan"), device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        torch.ops.sportsfusion.lrn_pool_out(x, *PARAMS, out)
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(out, lrn_pool_reference(x), rtol=1e-6, atol=0)


@pytest.mark.gpu
@needs_cuda
def test_cuda_gradcheck_and_opcheck():
    x = make_x(
        (2, 6, 2, 5, 7),
        seed=2,
        signed=True,
        dtype=torch.float64,
        layout="channels_last",
        device="cuda",
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: lrn_pool(t, impl="native"), (x,))
    torch.library.opcheck(torch.ops.sportsfusion.lrn_pool.default, (x, *PARAMS))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("inputs", ["signed", "tied"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cuda_native_backward_equals_autograd_of_the_reference(shape, inputs, layout, dtype):
    if inputs == "tied":
        lay = "contiguous" if layout == "strided" else layout
        x = tied(shape, seed=sum(shape), dtype=dtype, layout=lay).cuda()
    else:
        x = make_x(shape, seed=sum(shape), signed=True, dtype=dtype, layout=layout, device="cuda")
    grad_out = grad_out_for(x, seed=1).cuda()
    got = native_backward(grad_out, x)
    assert got.is_contiguous(memory_format=lrn_pool_module.output_memory_format(x))
    rtol, scale = (1e-5, 1e-6) if dtype == torch.float32 else (1e-12, 1e-13)
    assert_grad_close(got, reference_backward(grad_out, x), rtol=rtol, scale=scale)
    cpu = native_backward(grad_out.cpu(), x.cpu())
    assert_grad_close(got.cpu(), cpu, rtol=rtol, scale=scale)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", [(2, 96, 4, 27, 27), (2, 24, 12, 9)], ids=str)
def test_cuda_native_backward_16bit_channels_last(shape, dtype):
    # Against the CPU kernel on the same 16-bit input: the same fp32 arithmetic (up to FMA
    # contraction), rounded once.
    x = make_x(shape, seed=8, dtype=dtype, layout="channels_last")
    grad_out = grad_out_for(x, seed=9)
    got = native_backward(grad_out.cuda(), x.cuda())
    assert_grad_close(
        got.cpu().double(), native_backward(grad_out, x).double(), rtol=STEP[dtype], scale=1e-5
    )


@pytest.mark.gpu
@needs_cuda
def test_cuda_backward_out_and_opcheck():
    x = make_x((2, 12, 3, 9, 7), seed=11, signed=True, layout="channels_last", device="cuda")
    grad_out = grad_out_for(x, seed=6).cuda()
    grad_x = torch.full(x.shape, float("nan"), device="cuda")
    torch.ops.sportsfusion.lrn_pool_backward_out(grad_out, x, *PARAMS, grad_x)
    assert_grad_close(grad_x, reference_backward(grad_out, x), rtol=1e-5, scale=1e-6)
    torch.library.opcheck(torch.ops.sportsfusion.lrn_pool_backward.default, (grad_out, x, *PARAMS))
