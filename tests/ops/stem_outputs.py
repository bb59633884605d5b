"""Helpers shared by the stem tests (native and Triton): NaN-poisoned outputs in each layout the
ops must write, and the exact comparison with the reference."""

import torch


def nan_output(shape, dtype, layout, device="cpu"):
    """An output of `shape` in `layout`, full of NaN so that every element must be written."""
    if layout == "sliced":  # a channel offset and padded rows: no stride is dense
        b, c, t, h, w = shape
        base = torch.full((b, c + 1, t, h, w + 3), float("nan"), dtype=dtype, device=device)
        return base[:, 1:, :, :, :w]
    out = torch.full(shape, float("nan"), dtype=dtype, device=device)
    return out.to(memory_format=torch.channels_last_3d) if layout == "channels_last_3d" else out


def assert_equals_reference(got, want_fp32, name):
    assert not got.isnan().any(), f"{name}: some elements were never written"
    want = want_fp32.to(got.dtype)  # round to nearest even, like the kernels
    assert torch.equal(got, want), f"{name}: max error {(got.float() - want_fp32).abs().max()}"
