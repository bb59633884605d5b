"""Clip crops and flips, following the paper's preprocessing (Karpathy et al. 2014, §3).

Frames are first resized so the short side is 200 (done by the decoder); the paper then
takes the centre square region (200x200) and, during training, a random 178x178 crop of it,
mirrored with probability 0.5. One `CropFlip` is drawn per *clip* and applied to all of its
frames: a different crop per frame would fake motion that the temporal fusion models would
then learn.

Evaluation uses fixed crops: the centre one, or the paper's "4 crops/flips" (centre, centre
mirrored, and two corners of the centre square).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropFlip:
    top: int  # row of the crop's top-left corner in the (resized) frame
    left: int  # column of the crop's top-left corner
    flip: bool  # mirror left-right after cropping


def _centre_square(height: int, width: int, size: int) -> tuple[int, int, int]:
    """(top, left, side) of the centre square; checks that a `size` crop fits in it."""
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    side = min(height, width)
    if side < size:
        raise ValueError(
            f"frame {width}x{height} is smaller than the {size}x{size} crop "
            f"(resize the short side to at least {size})"
        )
    return (height - side) // 2, (width - side) // 2, side


def draw_crop_flip(height: int, width: int, size: int, rng: np.random.Generator) -> CropFlip:
    """A uniformly random `size` crop inside the centre square, mirrored with p = 0.5."""
    top0, left0, side = _centre_square(height, width, size)
    top = top0 + int(rng.integers(0, side - size + 1))
    left = left0 + int(rng.integers(0, side - size + 1))
    return CropFlip(top, left, bool(rng.random() < 0.5))


def centre_crop(height: int, width: int, size: int) -> CropFlip:
    top0, left0, side = _centre_square(height, width, size)
    margin = (side - size) // 2
    return CropFlip(top0 + margin, left0 + margin, False)


def evaluation_crops(height: int, width: int, size: int, n: int) -> list[CropFlip]:
    """The first `n` (1 to 10) of a fixed list of crops of the centre square.

    Order: centre, centre mirrored, top-left, bottom-right mirrored, top-right,
    bottom-left mirrored, then the same four corners with the other flip. n = 4 is the
    paper's "4 crops/flips"; n = 10 is the usual ten-crop (5 positions x 2 flips).
    """
    if not 1 <= n <= 10:
        raise ValueError(f"evaluation crops: n must be in 1..10, got {n}")
    top0, left0, side = _centre_square(height, width, size)
    far = side - size  # offset of the far corner within the square
    centre = centre_crop(height, width, size)
    tl, tr = (top0, left0), (top0, left0 + far)
    bl, br = (top0 + far, left0), (top0 + far, left0 + far)
    crops = [
        centre,
        CropFlip(centre.top, centre.left, True),
        CropFlip(*tl, False),
        CropFlip(*br, True),
        CropFlip(*tr, False),
        CropFlip(*bl, True),
        CropFlip(*tl, True),
        CropFlip(*br, False),
        CropFlip(*tr, True),
        CropFlip(*bl, False),
    ]
    return crops[:n]


def apply_crop_flip(frames: np.ndarray, cf: CropFlip, size: int) -> np.ndarray:
    """Crop (and maybe mirror) every frame of a (T, H, W, 3) clip the same way.

    Returns a C-contiguous (T, size, size, 3) uint8 array (a copy), ready for
    `torch.from_numpy`.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    height, width = frames.shape[1:3]
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if cf.top < 0 or cf.left < 0 or cf.top + size > height or cf.left + size > width:
        raise ValueError(
            f"crop {size}x{size} at (top={cf.top}, left={cf.left}) does not fit in "
            f"frames of {width}x{height}"
        )
    out = frames[:, cf.top : cf.top + size, cf.left : cf.left + size]
    if cf.flip:
        out = out[:, :, ::-1]
    return np.array(out, dtype=np.uint8, order="C")  # always a copy, never a view


def short_side_for(input_size: int) -> int:
    """paper-facts §3: frames resized to 200, then cropped (170 in the paper, 178 for multires);
    smaller --input-size values keep the 200:178 ratio so quick runs see the same geometry."""
    return 200 if input_size >= 170 else round(input_size * 200 / 178)
