"""The models' first stage against an independent float64 computation, its public checks, the
dispatcher's choices, the stem's input format, and the Triton path wired into the dispatcher.

The native op (csrc/fovea_context/) has its own file: test_fovea_context_native.py."""

import numpy as np
import pytest
import torch

from sportsfusion import ops
from sportsfusion.models.stem import input_format
from sportsfusion.ops import _backends
from sportsfusion.ops._backends import OpsUnavailableError
from sportsfusion.ops.fovea_context import (
    _candidates,
    _triton_fovea_context,
    clip_to_input_reference,
    fovea_context_reference,
    fovea_geometry,
)

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def expected(clips: np.ndarray):
    x = (clips.astype(np.float64) - 117.0) / 64.0  # (B, T, H, W, 3)
    b, t, h, w, _ = x.shape
    fh, fw = h // 2, w // 2
    top, left = (h - fh) // 2, (w - fw) // 2
    fovea = x[:, :, top : top + fh, left : left + fw]
    context = x[:, :, : 2 * fh, : 2 * fw].reshape(b, t, fh, 2, fw, 2, 3).mean((3, 5))
    to_ncthw = (0, 4, 1, 2, 3)
    return x.transpose(to_ncthw), fovea.transpose(to_ncthw), context.transpose(to_ncthw)


def random_clips(shape, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*shape, 3), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize(
    "shape", [(1, 1, 178, 178), (2, 10, 178, 178), (3, 2, 89, 89), (1, 3, 31, 47)]
)
def test_reference_matches_float64(shape):
    clips = random_clips(shape)
    full_want, fovea_want, context_want = expected(clips.numpy())
    full = ops.clip_to_input(clips)
    fovea, context = ops.fovea_context(clips)
    for got, want in ((full, full_want), (fovea, fovea_want), (context, context_want)):
        assert got.dtype == torch.float32 and tuple(got.shape) == want.shape
        assert got.is_contiguous()  # what CPU convolutions and ONNX export have always read
        np.testing.assert_array_equal(got.double().numpy(), want)  # multiples of 2^-8: exact


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reference_dtype_and_layout_are_the_fp32_values_rounded_once(dtype, channels_last):
    clips = random_clips((2, 3, 31, 47), seed=2)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    outputs = (
        ops.clip_to_input(clips, dtype=dtype, channels_last=channels_last),
        *ops.fovea_context(clips, dtype=dtype, channels_last=channels_last),
    )
    for got, want in zip(outputs, (clip_to_input_reference(clips), *ops.fovea_context(clips))):
        assert got.dtype == dtype and got.is_contiguous(memory_format=fmt)
        assert torch.equal(got, want.to(dtype))


def test_fovea_is_the_centre_89_of_178():
    assert fovea_geometry(178, 178) == (44, 44, 89, 89)


def test_non_contiguous_input_gives_the_same_answer():
    clips = torch.randint(0, 256, (2, 4, 178, 178, 3), dtype=torch.uint8)
    strided = clips.transpose(0, 1).contiguous().transpose(0, 1)
    for a, b in zip(ops.fovea_context(clips), ops.fovea_context(strided)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(1, 2, 8, 8, 3),
        torch.zeros(2, 8, 8, 3, dtype=torch.uint8),
        torch.zeros(1, 2, 8, 8, 4, dtype=torch.uint8),
    ],
)
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"clips: expected a uint8 tensor \(B, T, H, W, 3\)"):
        ops.fovea_context(bad)
    with pytest.raises(ValueError, match=r"clips: expected a uint8 tensor \(B, T, H, W, 3\)"):
        ops.clip_to_input(bad)


def test_bad_format_is_a_clear_error():
    clips = torch.zeros(1, 1, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="dtype: expected torch.float32, .* got torch.float64"):
        ops.fovea_context(clips, dtype=torch.float64)
    with pytest.raises(ValueError, match="channels_last: expected True or False, got 'yes'"):
        ops.clip_to_input(clips, channels_last="yes")


def test_into_writes_every_element_of_any_layout():
    clips = random_clips((2, 3, 9, 13), seed=3)
    want = (clip_to_input_reference(clips), *fovea_context_reference(clips))
    base = torch.full((2, 4, 3, 4, 9), float("nan"), dtype=torch.bfloat16)
    fovea = base[:, 1:, :, :, :6]  # a channel offset and padded rows: no stride is dense
    context = torch.full((2, 3, 3, 4, 6), float("nan"), dtype=torch.bfloat16)
    out = torch.full((2, 3, 3, 9, 13), float("nan")).to(memory_format=torch.channels_last_3d)
    ops.fovea_context_into(clips, fovea, context)
    ops.clip_to_input_into(clips, out)
    for got, w in zip((out, fovea, context), want):
        assert torch.equal(got, w.to(got.dtype))


def test_into_bad_outputs_are_clear_errors():
    clips = torch.zeros(2, 3, 8, 10, 3, dtype=torch.uint8)
    good = torch.empty(2, 3, 3, 4, 5)
    with pytest.raises(ValueError, match=r"fovea: expected .* \(2, 3, 3, 4, 5\), got .* \(2, 3"):
        ops.fovea_context_into(clips, torch.empty(2, 3, 3, 5, 4), good)
    with pytest.raises(ValueError, match="context: expected a float32/.*got torch.int32"):
        ops.fovea_context_into(clips, good, good.int())
    with pytest.raises(ValueError, match="context: expected fovea's dtype torch.float32"):
        ops.fovea_context_into(clips, good, good.half())
    with pytest.raises(ValueError, match="out: expected a tensor on clips' device cpu, got meta"):
        ops.clip_to_input_into(clips, torch.empty(2, 3, 3, 8, 10, device="meta"))


def test_dispatcher_order_per_device():
    ref = fovea_context_reference  # the dispatcher's table, whatever this machine has built
    tri = _triton_fovea_context
    assert list(_candidates("cpu", ref, "fovea_context", tri)) == ["native", "reference", "triton"]
    assert list(_candidates("cuda", ref, "fovea_context", tri)) == ["native", "triton", "reference"]
    assert list(_candidates("mps", ref, "fovea_context", tri)) == ["reference"]


def test_dispatcher_forcing_and_environment(monkeypatch):
    # Whatever this machine has built, pretend neither fast path runs here.
    monkeypatch.setattr(_backends, "native_runs_on", lambda device: False)
    monkeypatch.setattr(_backends, "triton_runs_on", lambda device: False)
    clips = torch.zeros(1, 1, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(OpsUnavailableError, match="'triton' is not available on cpu"):
        ops.fovea_context(clips, impl="triton")
    monkeypatch.setenv("SPORTSFUSION_OPS", "native")
    with pytest.raises(OpsUnavailableError, match="'native'"):
        ops.clip_to_input(clips)
    monkeypatch.setenv("SPORTSFUSION_OPS", "fast")
    with pytest.raises(ValueError, match="SPORTSFUSION_OPS='fast'"):
        ops.clip_to_input(clips)
    monkeypatch.setenv("SPORTSFUSION_OPS", "reference")
    ops.force_impl("auto")
    try:
        assert ops.active_impl() == "auto"  # the flag wins over the environment
        ops.clip_to_input(clips)
    finally:
        ops.force_impl(None)


def test_stem_reads_what_the_first_convolution_reads():
    assert input_format(torch.device("cpu")) == (torch.float32, False)
    assert input_format(torch.device("cuda")) == (torch.float32, True)
    enabled, dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
    torch.set_autocast_enabled("cuda", True)  # the flag alone: no CUDA device needed
    torch.set_autocast_dtype("cuda", torch.bfloat16)
    try:
        assert input_format(torch.device("cuda")) == (torch.bfloat16, True)
        assert input_format(torch.device("cpu")) == (torch.float32, False)
    finally:
        torch.set_autocast_enabled("cuda", enabled)
        torch.set_autocast_dtype("cuda", dtype)


@pytest.mark.skipif(
    not _backends.triton_runs_on("cpu"), reason="Triton runs on the CPU only interpreted"
)
def test_forced_triton_equals_reference():
    # Tiny: interpreted. tests/ops/test_fovea_context_triton.py checks the kernels themselves.
    clips = random_clips((1, 2, 7, 9), seed=4)
    bf16 = torch.bfloat16
    fovea, context = ops.fovea_context(clips, dtype=bf16, channels_last=True, impl="triton")
    assert fovea.is_contiguous(memory_format=torch.channels_last_3d)
    for got, want in zip((fovea, context), fovea_context_reference(clips)):
        assert torch.equal(got, want.to(bf16))
    out = torch.full((1, 3, 2, 7, 9), float("nan"))
    ops.clip_to_input_into(clips.transpose(0, 1).contiguous().transpose(0, 1), out, impl="triton")
    assert torch.equal(out, clip_to_input_reference(clips))
