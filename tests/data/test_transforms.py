"""Crops and flips: inside the centre square, mirrored half the time, one per clip."""

from __future__ import annotations

import numpy as np
import pytest

from sportsfusion.data.transforms import (
    CropFlip,
    apply_crop_flip,
    centre_crop,
    draw_crop_flip,
    evaluation_crops,
)


@pytest.mark.parametrize("height,width", [(200, 266), (266, 200), (200, 200), (201, 356)])
def test_random_crops_stay_in_the_centre_square_and_cover_it(height, width):
    size, side = 178, min(height, width)
    top0, left0 = (height - side) // 2, (width - side) // 2
    rng = np.random.default_rng(0)
    crops = [draw_crop_flip(height, width, size, rng) for _ in range(2000)]
    tops = np.array([c.top for c in crops]) - top0
    lefts = np.array([c.left for c in crops]) - left0
    # Every position of the square's (side - size + 1)^2 grid is allowed and reached at the ends.
    assert tops.min() == 0 and tops.max() == side - size
    assert lefts.min() == 0 and lefts.max() == side - size
    assert len(set(tops)) == side - size + 1 and len(set(lefts)) == side - size + 1
    flips = np.mean([c.flip for c in crops])
    assert 0.45 < flips < 0.55
    # Roughly uniform: each half of the range gets about half of the draws.
    assert 0.4 < np.mean(lefts <= (side - size) / 2) < 0.6


def test_draw_is_reproducible_from_the_generator():
    a = [draw_crop_flip(200, 266, 178, np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_centre_and_evaluation_crops():
    assert centre_crop(200, 266, 178) == CropFlip(11, 44, False)
    assert centre_crop(266, 200, 178) == CropFlip(44, 11, False)
    assert evaluation_crops(200, 266, 178, 1) == [CropFlip(11, 44, False)]
    # The paper's 4 crops/flips: centre, centre mirrored, and the square's opposite corners.
    assert evaluation_crops(200, 266, 178, 4) == [
        CropFlip(11, 44, False),
        CropFlip(11, 44, True),
        CropFlip(0, 33, False),
        CropFlip(22, 55, True),
    ]
    ten = evaluation_crops(200, 266, 178, 10)
    assert len(set(ten)) == 10 and ten[:4] == evaluation_crops(200, 266, 178, 4)
    assert sum(c.flip for c in ten) == 5
    for n in (0, 11):
        with pytest.raises(ValueError, match="1..10"):
            evaluation_crops(200, 266, 178, n)


def test_too_small_frames_are_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the 178x178 crop"):
        draw_crop_flip(170, 300, 178, np.random.default_rng(0))
    with pytest.raises(ValueError, match="smaller than"):
        centre_crop(300, 100, 178)
    with pytest.raises(ValueError, match="does not fit"):
        apply_crop_flip(np.zeros((2, 100, 100, 3), np.uint8), CropFlip(0, 0, False), 178)
    with pytest.raises(ValueError, match="does not fit"):
        apply_crop_flip(np.zeros((2, 100, 100, 3), np.uint8), CropFlip(50, 0, False), 64)
    with pytest.raises(ValueError, match="shape"):
        apply_crop_flip(np.zeros((100, 100, 3), np.uint8), CropFlip(0, 0, False), 32)


def _clip(t=5, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_crop_and_flip_are_a_window_and_a_mirror():
    frames = _clip()
    out = apply_crop_flip(frames, CropFlip(5, 9, False), 32)
    assert np.array_equal(out, frames[:, 5:37, 9:41])
    flipped = apply_crop_flip(frames, CropFlip(5, 9, True), 32)
    assert np.array_equal(flipped, out[:, :, ::-1])
    assert np.array_equal(flipped[:, :, 0], frames[:, 5:37, 40])  # left column = right edge
    for o in (out, flipped):
        assert o.dtype == np.uint8 and o.flags.c_contiguous and o.shape == (5, 32, 32, 3)
    # A copy, never a view of the decoded frames.
    whole = apply_crop_flip(frames[:, :32, :32], CropFlip(0, 0, False), 32)
    whole[...] = 0
    assert frames[:, :32, :32].any()


def test_the_same_crop_and_flip_on_every_frame_of_a_clip():
    rng = np.random.default_rng(1)
    same = np.repeat(_clip(1), 6, axis=0)
    distinct = _clip(6, seed=2)
    for _ in range(20):
        cf = draw_crop_flip(48, 64, 32, rng)
        out = apply_crop_flip(same, cf, 32)
        assert all(np.array_equal(out[0], out[t]) for t in range(6))
        out = apply_crop_flip(distinct, cf, 32)
        for t in range(6):
            assert np.array_equal(out[t], apply_crop_flip(distinct[t : t + 1], cf, 32)[0])
