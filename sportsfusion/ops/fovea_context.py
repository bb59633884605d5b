"""The models' first stage: uint8 clips as decoders produce them -> normalised network input.

    clip_to_input(clips)  (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float32            full frame
    fovea_context(clips)  (B, T, H, W, 3) uint8 -> fovea, context, each (B, 3, T, H/2, W/2)

Normalisation is the paper's: subtract the constant 117 from raw pixels (paper-facts §3), then
scale by 1/64 (our convention: keeps inputs within about [-2, 2] so default initialisation
holds). The fovea is the centre H/2 x W/2 region at full resolution; the context is the whole frame
downsampled 2x by 2x2 averaging (paper-facts §1: 178 -> 89 for both streams).

Memory traffic of the reference: it reads the clip once per stream and writes float copies at each
step (cast, subtract, permute, pool); a fused kernel (issue 4) reads each byte once and writes each
output once: B*T*H*W*3 bytes in, B*T*(H/2)*(W/2)*3*2*4 bytes out in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sportsfusion.ops._backends import choose

PIXEL_MEAN = 117.0  # paper-facts §3: "subtract the constant 117" (about the mean of all pixels)
PIXEL_SCALE = 1.0 / 64.0  # our convention


def _check_clips(clips: torch.Tensor) -> None:
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[-1] != 3:
        raise ValueError(
            "clips: expected a uint8 tensor (B, T, H, W, 3), "
            f"got {clips.dtype} {tuple(clips.shape)}"
        )


def fovea_geometry(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, fovea_h, fovea_w): the centre crop the fovea stream sees."""
    fh, fw = height // 2, width // 2
    return (height - fh) // 2, (width - fw) // 2, fh, fw


def clip_to_input_reference(clips: torch.Tensor) -> torch.Tensor:
    x = clips.permute(0, 4, 1, 2, 3).float()  # (B, 3, T, H, W)
    return (x - PIXEL_MEAN) * PIXEL_SCALE


def fovea_context_reference(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, t, h, w, _ = clips.shape
    x = clip_to_input_reference(clips)  # (B, 3, T, H, W)
    top, left, fh, fw = fovea_geometry(h, w)
    fovea = x[..., top : top + fh, left : left + fw].contiguous()
    # 2x2 averaging per frame; avg_pool3d with a temporal extent of 1 keeps frames apart.
    context = F.avg_pool3d(x[..., : 2 * fh, : 2 * fw], kernel_size=(1, 2, 2))
    return fovea, context


def clip_to_input(clips: torch.Tensor, *, impl: str | None = None) -> torch.Tensor:
    """Full-frame models' first stage: (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float32."""
    _check_clips(clips)
    _, fn = choose("clip_to_input", clips.device.type, {"reference": clip_to_input_reference}, impl)
    return fn(clips)


def fovea_context(
    clips: torch.Tensor, *, impl: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multiresolution models' first stage: (B, T, H, W, 3) uint8 -> (fovea, context)."""
    _check_clips(clips)
    _, fn = choose("fovea_context", clips.device.type, {"reference": fovea_context_reference}, impl)
    return fn(clips)
