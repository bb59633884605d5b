"""The models' first stage against an independent float64 computation, and the dispatcher."""

import numpy as np
import pytest
import torch

from sportsfusion import ops
from sportsfusion.ops._backends import OpsUnavailableError
from sportsfusion.ops.fovea_context import fovea_geometry


def expected(clips: np.ndarray):
    x = (clips.astype(np.float64) - 117.0) / 64.0  # (B, T, H, W, 3)
    b, t, h, w, _ = x.shape
    fh, fw = h // 2, w // 2
    top, left = (h - fh) // 2, (w - fw) // 2
    fovea = x[:, :, top : top + fh, left : left + fw]
    context = x[:, :, : 2 * fh, : 2 * fw].reshape(b, t, fh, 2, fw, 2, 3).mean((3, 5))
    to_ncthw = (0, 4, 1, 2, 3)
    return x.transpose(to_ncthw), fovea.transpose(to_ncthw), context.transpose(to_ncthw)


@pytest.mark.parametrize(
    "shape", [(1, 1, 178, 178), (2, 10, 178, 178), (3, 2, 89, 89), (1, 3, 31, 47)]
)
def test_reference_matches_float64(shape):
    clips = torch.randint(
        0, 256, (*shape, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    full_want, fovea_want, context_want = expected(clips.numpy())
    full = ops.clip_to_input(clips)
    fovea, context = ops.fovea_context(clips)
    for got, want in ((full, full_want), (fovea, fovea_want), (context, context_want)):
        assert got.dtype == torch.float32 and tuple(got.shape) == want.shape
        np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=1e-6)


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


def test_dispatcher_forcing_and_environment(monkeypatch):
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
