"""The fused conv + bias + ReLU against a float64 PyTorch reference: every layer of slow and early
fusion (full frame and multiresolution) scaled down, tiling-breaking sizes, strided inputs,
gradients, and the dispatcher. Without CUDA the Triton kernel runs under TRITON_INTERPRET=1."""

import os

import pytest
import torch

from sportsfusion.models.layers import conv2d_block, conv3d_block
from sportsfusion.ops._backends import triton_runs_on
from sportsfusion.ops.conv3d_fused import LAYERS as FULL_SIZE
from sportsfusion.ops.conv3d_fused import conv3d_fused, conv3d_fused_reference

# Before the first triton import, which none of the imports above makes (tests/conftest.py sets
# it too): the kernels then run under Triton's interpreter on the CPU.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = [
    pytest.mark.skipif(
        not triton_runs_on(DEVICE.type), reason="Triton needs CUDA or TRITON_INTERPRET=1"
    ),
    pytest.mark.gpu,  # on CUDA every test here checks the compiled kernel
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# Relative (Frobenius) error against float64: the bounds for fp32 and bf16; fp16 keeps 3
# more mantissa bits than bf16.
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 2e-3}

# (cin, cout, (T, H, W), kernel, stride, padding): the paper's geometry (kernel, stride, padding,
# frames) with few channels and small frames. A 2-entry kernel is a 2-D layer on (N, C, H, W).
LAYERS = {
    "slow_conv1_full": (3, 24, (10, 23, 23), (4, 11, 11), (2, 3, 3), (0, 0, 0)),
    "slow_conv1_multires": (3, 24, (10, 14, 14), (4, 11, 11), (2, 3, 3), (0, 0, 0)),
    "slow_conv2_full": (24, 40, (4, 7, 7), (2, 5, 5), (2, 1, 1), (0, 2, 2)),
    "slow_conv2_multires": (24, 40, (4, 4, 4), (2, 5, 5), (2, 1, 1), (0, 2, 2)),
    "slow_conv3_full": (40, 48, (2, 5, 5), (2, 3, 3), (2, 1, 1), (0, 1, 1)),
    "slow_conv3_multires": (40, 48, (2, 3, 3), (2, 3, 3), (2, 1, 1), (0, 1, 1)),
    "early_conv1_full": (3, 24, (10, 23, 23), (10, 11, 11), (1, 3, 3), (0, 0, 0)),
    "early_conv1_multires": (3, 24, (10, 14, 14), (10, 11, 11), (1, 3, 3), (0, 0, 0)),
    "early_conv2": (24, 40, (1, 7, 7), (5, 5), (1, 1), (2, 2)),
    "conv3_2d": (40, 48, (1, 5, 5), (3, 3), (1, 1), (1, 1)),
    "conv4": (48, 48, (1, 5, 5), (3, 3), (1, 1), (1, 1)),
    "conv5": (48, 32, (1, 3, 3), (3, 3), (1, 1), (1, 1)),
}
# The same at full size (paper-facts §2 shape table), for the GPU session.
FULL_LAYERS = {
    name: FULL_SIZE[name]
    for name in [
        "slow_conv1_full",
        "slow_conv1_multires",
        "slow_conv2_full",
        "slow_conv2_multires",
        "slow_conv3_full",
        "slow_conv3_multires",
        "early_conv1_full",
        "early_conv1_multires",
        "slow_conv4_full",
        "slow_conv5_multires",
    ]
}


@pytest.fixture(autouse=True)
def _strict_fp32_one_config(request, monkeypatch):
    """fp32 without TF32, so 1e-4 holds on GPUs too (the kernel follows cudnn.allow_tf32, like
    F.conv3d). On CUDA the small-shape tests run one tile config: autotuning each of their many
    geometries would compile every config for each; test_every_cuda_config covers the others, and
    the `autotune`-marked full-size tests tune over the configs SPORTSFUSION_AUTOTUNE selects."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    if DEVICE.type == "cuda" and request.node.get_closest_marker("autotune") is None:
        from sportsfusion.kernels import conv3d_fused as kernel

        monkeypatch.setattr(kernel._conv3d_fused_kernel, "configs", kernel._cuda_configs()[:1])


def make(layer, batch=2, dtype=torch.float32, seed=0, bias=True):
    """Fresh random (x, weight, bias, stride, padding) for a layer, channels-last like the model."""
    cin, cout, (t, h, w), kernel, stride, padding = layer
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cin, t, h, w) if len(kernel) == 3 else (batch, cin, h, w)
    fmt = torch.channels_last_3d if len(kernel) == 3 else torch.channels_last
    x = torch.randn(shape, generator=g).to(DEVICE, dtype).contiguous(memory_format=fmt)
    fan_in = cin * torch.tensor(kernel).prod().item()
    weight = (torch.randn((cout, cin, *kernel), generator=g) / fan_in**0.5).to(DEVICE, dtype)
    b = (torch.randn(cout, generator=g) * 0.1).to(DEVICE, dtype) if bias else None
    return x, weight, b, stride, padding


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).norm() / want.norm().clamp_min(1e-30)).item()


def reference64(x, weight, bias, stride, padding, relu=True):
    up = [None if t is None else t.double() for t in (x, weight, bias)]
    return conv3d_fused_reference(*up, stride, padding, relu)


def check(x, weight, bias, stride, padding, relu=True):
    y = conv3d_fused(x, weight, bias, stride, padding, relu=relu, impl="triton")
    want = reference64(x, weight, bias, stride, padding, relu)
    assert y.dtype == x.dtype and y.shape == want.shape
    assert torch.isfinite(y).all()
    assert rel_error(y, want) < TOLERANCE[x.dtype], rel_error(y, want)
    return y


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_float64(name, dtype):
    y = check(*make(LAYERS[name], dtype=dtype, seed=list(LAYERS).index(name)))
    fmt = torch.channels_last_3d if y.dim() == 5 else torch.channels_last
    assert y.is_contiguous(memory_format=fmt)


def test_float16():
    check(*make(LAYERS["slow_conv3_multires"], dtype=torch.float16, seed=2))


@pytest.mark.parametrize(
    "layer",
    [
        (17, 19, (5, 11, 13), (3, 3, 5), (2, 2, 1), (1, 0, 2)),  # primes, ragged every tile
        (5, 33, (3, 9, 7), (2, 5, 3), (1, 2, 1), (1, 2, 1)),  # thin CIN, padded: flat K loop
        (24, 40, (4, 7, 7), (2, 5, 5), (2, 1, 1), (0, 2, 2)),  # batch 1 below
        (3, 1, (1, 1, 1), (1, 1, 1), (1, 1, 1), (0, 0, 0)),  # one output element
    ],
    ids=["primes", "thin-padded", "conv2-batch1", "one-element"],
)
def test_odd_sizes_and_batch_one(layer):
    check(*make(layer, batch=1, seed=3))


@pytest.mark.parametrize("relu", [True, False])
def test_relu_off_and_no_bias(relu):
    x, weight, _, stride, padding = make(LAYERS["slow_conv2_multires"], seed=4, bias=False)
    y = check(x, weight, None, stride, padding, relu=relu)
    assert (y < 0).any() != relu


def test_layouts_and_strided_views_give_the_same_answer():
    """Through the dispatcher (which makes channels innermost) and through the kernel directly
    (which reads any strides): NCDHW-contiguous, channels-last, a channel slice, swapped H/W."""
    from sportsfusion.kernels.conv3d_fused import conv3d_fused_packed, pack_weight

    x, weight, bias, stride, padding = make(LAYERS["slow_conv2_multires"], seed=5)
    big = torch.randn(2, 48, 4, 5, 4, device=DEVICE)
    views = {
        "ncdhw": x.contiguous(),
        "channels_last": x,
        "channel_slice": big[:, 1::2, :, :4],  # (2, 24, 4, 4, 4), no stride is 1
        "swapped_hw": x.transpose(3, 4).contiguous().transpose(3, 4),
    }
    for name, v in views.items():
        want = reference64(v, weight, bias, stride, padding)
        got = conv3d_fused(v, weight, bias, stride, padding, impl="triton")
        packed = pack_weight(weight)
        raw = conv3d_fused_packed(v, packed, bias, [2, 5, 5], [2, 1, 1], [0, 2, 2], True, False)
        for out in (got, raw):
            assert rel_error(out, want) < 1e-4, name


@pytest.mark.parametrize("cin", [1, 3, 4, 5, 15, 16, 24])
def test_thin_inputs_are_padded_to_aligned_pixels(cin):
    """pad_thin_channels: thin inputs get zero channels up to a multiple of 4 (one aligned 8-byte
    bf16 pixel, which the kernel then loads as a vector), computing the same convolution; inputs
    with 16 or more channels (the taps loop) pass through untouched."""
    from sportsfusion.kernels.conv3d_fused import _row_alignment, pad_thin_channels

    x, weight, _, stride, padding = make((cin, 8, (3, 6, 5), (2, 3, 3), (1, 2, 1), (1, 1, 0)))
    xp, wp = pad_thin_channels(x, weight)
    if cin >= 16:
        assert xp is x and wp is weight
        return
    padded = -(-cin // 4) * 4
    assert xp.shape == (2, padded, 3, 6, 5) and wp.shape == (8, padded, 2, 3, 3)
    assert xp.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(xp[:, :cin], x) and torch.equal(wp[:, :cin], weight)
    assert not xp[:, cin:].any() and not wp[:, cin:].any()
    assert _row_alignment(xp) % 4 == 0
    want = reference64(x, weight, None, stride, padding)
    assert rel_error(reference64(xp, wp, None, stride, padding), want) < 1e-12


def test_row_alignment_is_what_every_stride_shares():
    """The kernel's alignment promise: the largest power of two (<= 16) dividing the n/t/h/w
    strides (channels excluded: they are the contiguous run the vector covers)."""
    from sportsfusion.kernels.conv3d_fused import _row_alignment

    def last(c, t=2, h=5, w=7):
        return torch.empty(2, c, t, h, w).contiguous(memory_format=torch.channels_last_3d)

    assert _row_alignment(last(3)) == 1  # RGB: pixels 3 elements apart
    assert _row_alignment(last(4)) == 4
    assert _row_alignment(last(8)) == 8
    assert _row_alignment(last(96)) == 16  # capped: 16 elements is past any vector width
    assert _row_alignment(torch.empty(2, 4, 2, 5, 7)) == 1  # NCDHW: w stride 1


def test_batch_split_keeps_offsets_in_int32(monkeypatch):
    """A batch spanning more than 2^31 elements runs in several launches; shrink the limit to see
    the split on small tensors."""
    from sportsfusion.kernels import conv3d_fused as kernel

    x, weight, bias, stride, padding = make(LAYERS["slow_conv3_multires"], batch=5, seed=6)
    monkeypatch.setattr(kernel, "INT32_SPAN", 2 * x.stride(0) - 1)  # 2 samples per launch
    assert kernel._batch_chunk(x, x) == 2
    check(x, weight, bias, stride, padding)


def grads(fn, x, weight, bias, stride, padding, relu=True):
    inputs = [t.detach().requires_grad_() for t in (x, weight, bias) if t is not None]
    y = fn(*inputs, *([None] if bias is None else []), stride, padding, relu=relu)
    g = torch.Generator().manual_seed(7)
    y.backward(torch.randn(y.shape, generator=g).to(y.device, y.dtype))
    return y, [t.grad for t in inputs]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    "name,bias,relu",
    [
        ("slow_conv1_multires", True, True),
        ("slow_conv2_multires", True, True),
        ("slow_conv3_full", False, True),
        ("conv5", True, False),
    ],
)
def test_gradients_match_float64(name, bias, relu, dtype):
    x, weight, b, stride, padding = make(LAYERS[name], dtype=dtype, seed=8, bias=bias)

    def triton(*args, relu):
        return conv3d_fused(*args, relu=relu, impl="triton")

    def reference(x, w, b, stride, padding, relu):
        return reference64(x, w, b, stride, padding, relu)

    y, got = grads(triton, x, weight, b, stride, padding, relu)
    _, want = grads(reference, x, weight, b, stride, padding, relu)
    for g, w, what in zip(got, want, ("x", "weight", "bias")):
        assert g.dtype == dtype
        assert rel_error(g, w) < TOLERANCE[dtype], (what, rel_error(g, w))


def test_gradcheck_float64():
    if DEVICE.type == "cuda":
        pytest.skip("float64 runs on the reference path on GPUs (tl.dot takes bf16/fp16/fp32)")
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 3, 4, 5, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)

    def fn(x, w, b):
        return conv3d_fused(x, w, b, (2, 1, 2), (0, 1, 1), impl="triton")

    assert torch.autograd.gradcheck(fn, (x, w, b), fast_mode=True)


def test_model_block_same_output_on_both_paths(monkeypatch):
    """The models' own blocks (conv -> ReLU) against the dispatcher, forced each way and via
    SPORTSFUSION_OPS; on the CPU `auto` runs the reference (no native conv, Triton interpreted)."""
    torch.manual_seed(10)
    block3 = conv3d_block(3, 8, (4, 11, 11), (2, 3, 3), 0).to(DEVICE)
    block2 = conv2d_block(8, 16, 3, padding=1).to(DEVICE)
    x3 = torch.randn(2, 3, 10, 17, 17, device=DEVICE)
    x2 = torch.randn(2, 8, 5, 5, device=DEVICE)
    for block, x in ((block3, x3), (block2, x2)):
        conv, relu = block[0], block[1]
        with torch.no_grad():
            # nn.Conv then nn.ReLU themselves: block[:2] is still a ConvBlock (Sequential slicing
            # keeps the class), whose forward goes through the dispatcher (Triton on CUDA).
            want = relu(conv(x))
            outs = [
                conv3d_fused(x, conv.weight, conv.bias, conv.stride, conv.padding, impl=impl)
                for impl in ("reference", "triton")
            ]
            monkeypatch.setenv("SPORTSFUSION_OPS", "triton")
            outs.append(conv3d_fused(x, conv.weight, conv.bias, conv.stride, conv.padding))
            monkeypatch.delenv("SPORTSFUSION_OPS")
        torch.testing.assert_close(outs[0], want, rtol=0, atol=0)
        for out in outs[1:]:
            torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)


def test_autocast_computes_in_the_autocast_dtype():
    x, weight, bias, stride, padding = make(LAYERS["slow_conv3_multires"], seed=11)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        y = conv3d_fused(x, weight, bias, stride, padding, impl="triton")
        want = conv3d_fused(x, weight, bias, stride, padding, impl="reference")
    assert y.dtype == want.dtype == torch.bfloat16
    assert rel_error(y, reference64(x, weight, bias, stride, padding)) < 1e-2


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.zeros(1, 3, 8, 8, 8, dtype=torch.int64), torch.zeros(4, 3, 1, 1, 1)), r"^x: "),
        ((torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 1, 1, 1)), r"^weight: expected \(COUT, 3"),
        ((torch.zeros(1, 3, 8, 8, 8), torch.zeros(4, 2, 1, 1, 1)), r"^weight: "),
        ((torch.zeros(1, 3, 8, 8, 8), torch.zeros(4, 3, 1, 1, 1), torch.zeros(3)), r"^bias: "),
        ((torch.zeros(1, 3, 2, 8, 8), torch.zeros(4, 3, 4, 1, 1)), r"^x: input size"),
        ((torch.zeros(1, 3, 8, 8, 8), torch.zeros(4, 3, 1, 1, 1), None, (1, 1)), r"^stride: "),
    ],
)
def test_bad_input_is_a_clear_error(args, match):
    with pytest.raises(ValueError, match=match):
        conv3d_fused(*args, impl="reference")


def test_autotune_prunes_to_tiles_that_fit():
    from sportsfusion.kernels.conv3d_fused import SHARED_BYTES, _cuda_configs, _prune

    for cin, cout, dtype in (
        (3, 96, torch.bfloat16),
        (96, 256, torch.float32),
        (20, 24, torch.float32),
    ):
        x = torch.empty(1, dtype=dtype)
        kept = _prune(_cuda_configs(), {"x_ptr": x}, CIN=cin, COUT=cout)
        assert kept
        for c in kept:
            bm, bn, bk = (c.kwargs[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K"))
            assert min(bm, bn, bk) >= 16  # tl.dot's minimum on GPUs
            assert c.num_stages * (bm + bn) * bk * x.element_size() <= SHARED_BYTES
            assert bn <= max(16, 2 * cout) and (cin < 16 or bk <= max(16, 2 * cin))


@pytest.mark.autotune
@needs_cuda
@pytest.mark.parametrize("layer", ["slow_conv1_multires", "slow_conv2_full", "conv5"])
@pytest.mark.parametrize("index", range(12))
def test_every_cuda_config(index, layer, monkeypatch):
    """Each autotune candidate on its own, flat and taps loops: a wrong tile would otherwise
    surface only on the shapes where autotuning happens to pick it. The candidates are the ones
    this process can pick (all 12; the 3 of SPORTSFUSION_AUTOTUNE=quick in the GPU check)."""
    from sportsfusion.kernels import conv3d_fused as kernel

    configs = list(kernel._conv3d_fused_kernel.configs)
    if index >= len(configs):
        pytest.skip(f"{len(configs)} configs")
    monkeypatch.setattr(kernel._conv3d_fused_kernel, "configs", [configs[index]])
    check(*make(LAYERS[layer], dtype=torch.bfloat16, seed=index))


def scaled_down(layer):
    """A full-size layer with its kernel, stride, padding and frames kept and few channels and
    pixels: what the CPU runs in place of a GPU-only full-size test, so the test's own logic
    (names, tolerances, comparisons) is checked on every commit."""
    cin, cout, (t, h, w), kernel, stride, padding = layer
    spatial = [(k + 2 * s - 2 * p) for k, s, p in zip(kernel[-2:], stride[-2:], padding[-2:])]
    return (min(cin, 24), min(cout, 16), (t, *spatial), kernel, stride, padding)


# Full size on the GPU; scaled down elsewhere (the same body, under the interpreter on the CPU).
on_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="runs at full size on CUDA")
SIZES = [
    pytest.param("full", marks=[pytest.mark.autotune, needs_cuda]),
    pytest.param("scaled", marks=on_cuda),
]


def layer_at(name: str, size: str):
    return FULL_LAYERS[name] if size == "full" else scaled_down(FULL_LAYERS[name])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", FULL_LAYERS)
def test_full_size_layer_matches_float64(name, size):
    check(*make(layer_at(name, size), batch=32 if size == "full" else 2, dtype=torch.bfloat16))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["slow_conv1_full", "slow_conv2_full", "slow_conv4_full"])
def test_full_size_gradients_bf16(name, size):
    layer = layer_at(name, size)
    x, weight, b, stride, padding = make(layer, batch=4, dtype=torch.bfloat16)

    def triton(*args, relu):
        return conv3d_fused(*args, relu=relu, impl="triton")

    _, got = grads(triton, x, weight, b, stride, padding)
    _, want = grads(lambda *a, relu: reference64(*a, relu=relu), x, weight, b, stride, padding)
    for g, w in zip(got, want):
        assert rel_error(g, w) < 1e-2


def test_the_triton_conv_follows_cudnn_tf32(monkeypatch):
    """fp32 on the Triton path uses TF32 exactly when F.conv3d would (cudnn.allow_tf32, on by
    default): tests comparing fp32 paths at 1e-4 must turn it off (the fixture above does, and
    so does tests/models/test_op_paths.py)."""
    from sportsfusion.kernels import conv3d_fused as kernel

    seen = []
    launch = kernel.conv3d_fused_packed

    def recording(*args):
        seen.append(args[-1])
        return launch(*args)

    monkeypatch.setattr(kernel, "conv3d_fused_packed", recording)
    x, weight, bias, stride, padding = make(LAYERS["conv5"], seed=13)
    for allow in (True, False):
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", allow)
        conv3d_fused(x, weight, bias, stride, padding, impl="triton")
    assert seen == [True, False]
