"""The models' first stage: uint8 clips as decoders produce them -> normalised network input.

    clip_to_input(clips, *, dtype, channels_last)  (B, T, H, W, 3) uint8 -> (B, 3, T, H, W)
    fovea_context(clips, *, dtype, channels_last)  (B, T, H, W, 3) uint8 -> fovea, context,
                                                   each (B, 3, T, H//2, W//2)
    dtype: float32 (default), bfloat16 or float16; channels_last=True gives
    torch.channels_last_3d outputs (what cuDNN's channels-last convolutions read), else contiguous.

Normalisation is the paper's: subtract the constant 117 from raw pixels (paper-facts §3), then
scale by 1/64 (our convention: keeps inputs within about [-2, 2] so default initialisation
holds). The fovea is the centre H/2 x W/2 region at full resolution; the context is the whole frame
downsampled 2x by 2x2 averaging (paper-facts §1: 178 -> 89 for both streams). Every value is a
multiple of 2^-8, exact in fp32 and fp16; bf16 is the fp32 value rounded to nearest even. So all
paths agree bit for bit, in every dtype.

Memory traffic: the reference reads the clip once per stream and writes float copies at each step
(cast, subtract, permute, crop, pool). The fused paths (native C++/CUDA in csrc/fovea_context/,
Triton in sportsfusion.kernels.fovea_context) read each byte once and write each output once:
B*T*H*W*3 bytes in, B*T*(H//2)*(W//2)*3*2*s bytes out (s = 4 for fp32, 2 for bf16/fp16); the full
frame B*T*H*W*3*(1 + s).

Paths (ops/_backends.py picks): on CUDA native, then Triton, then the reference; on the CPU
native (33x the reference at 32x10x178x178 on 2 cores), then the reference (what ONNX export
traces), Triton only when forced (interpreted). Input
checks happen here, once, as one-line ValueErrors naming the argument; called directly,
torch.ops.sportsfusion.* raise one-line ValueErrors too (RuntimeError from ATen's check when
outputs overlap each other, the clips or themselves). Non-contiguous clips: the
native op reads clips whose pixels are packed within rows (any batch, frame and row strides, so
slices in B, T, H cost nothing) in place, and copies any other layout with .contiguous() first;
the Triton path always passes clips.contiguous() (a copy only when they are not).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from sportsfusion.ops import _backends
from sportsfusion.ops._backends import candidates, choose

PIXEL_MEAN = 117.0  # paper-facts §3: "subtract the constant 117" (about the mean of all pixels)
PIXEL_SCALE = 1.0 / 64.0  # our convention
DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # what the first convolutions read


def _check_clips(clips: torch.Tensor) -> None:
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[-1] != 3:
        raise ValueError(
            "clips: expected a uint8 tensor (B, T, H, W, 3), "
            f"got {clips.dtype} {tuple(clips.shape)}"
        )


def _check_format(dtype: torch.dtype, channels_last: bool) -> None:
    if dtype not in DTYPES:
        raise ValueError(
            f"dtype: expected torch.float32, torch.bfloat16 or torch.float16, got {dtype}"
        )
    if not isinstance(channels_last, bool):
        raise ValueError(f"channels_last: expected True or False, got {channels_last!r}")


def _check_out(name: str, out: torch.Tensor, shape: tuple, clips: torch.Tensor) -> None:
    if out.dtype not in DTYPES or tuple(out.shape) != tuple(shape):
        raise ValueError(
            f"{name}: expected a float32/bfloat16/float16 tensor {tuple(shape)}, "
            f"got {out.dtype} {tuple(out.shape)}"
        )
    if out.device != clips.device:
        raise ValueError(
            f"{name}: expected a tensor on clips' device {clips.device}, got {out.device}"
        )


def fovea_geometry(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, fovea_h, fovea_w): the centre crop the fovea stream sees."""
    fh, fw = height // 2, width // 2
    return (height - fh) // 2, (width - fw) // 2, fh, fw


def _empty(clips: torch.Tensor, size: tuple, dtype: torch.dtype, channels_last: bool):
    """An uninitialised (B, 3, T, *size) output: what the functional native ops allocate."""
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    b, t = clips.shape[:2]
    return torch.empty((b, 3, t, *size), dtype=dtype, device=clips.device, memory_format=fmt)


# ---- Reference: plain PyTorch, exportable to ONNX (the layout change below exports as nothing).


def _as_input(x: torch.Tensor, dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
    # Computed in fp32, rounded once. .contiguous, not .to(memory_format=): .to leaves a
    # non-dense slice (the fovea) as it is when its strides already follow the format's order.
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.to(dtype).contiguous(memory_format=fmt)


def clip_to_input_reference(
    clips: torch.Tensor, dtype: torch.dtype = torch.float32, channels_last: bool = False
) -> torch.Tensor:
    x = clips.permute(0, 4, 1, 2, 3).float()  # (B, 3, T, H, W)
    return _as_input((x - PIXEL_MEAN) * PIXEL_SCALE, dtype, channels_last)


def fovea_context_reference(
    clips: torch.Tensor, dtype: torch.dtype = torch.float32, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    b, t, h, w, _ = clips.shape
    x = (clips.permute(0, 4, 1, 2, 3).float() - PIXEL_MEAN) * PIXEL_SCALE  # (B, 3, T, H, W)
    top, left, fh, fw = fovea_geometry(h, w)
    fovea = x[..., top : top + fh, left : left + fw]
    if fh == 0 or fw == 0:  # frames under 2x2 have no fovea; avg_pool3d rejects empty input
        context = x[..., :fh, :fw]
    else:  # 2x2 averaging per frame; avg_pool3d with a temporal extent of 1 keeps frames apart
        context = F.avg_pool3d(x[..., : 2 * fh, : 2 * fw], kernel_size=(1, 2, 2))
    return _as_input(fovea, dtype, channels_last), _as_input(context, dtype, channels_last)


def _clip_to_input_reference_into(clips, out) -> None:
    out.copy_(clip_to_input_reference(clips))


def _fovea_context_reference_into(clips, fovea, context) -> None:
    for out, value in zip((fovea, context), fovea_context_reference(clips)):
        out.copy_(value)


# ---- Native: torch.ops.sportsfusion.* (csrc/fovea_context/), with fake kernels for tracing.


def _register_fakes() -> None:
    """Shape-only twins of the native ops, so torch.compile and export trace through them."""

    def check(name, out, clips, size):
        b, t = clips.shape[:2]
        torch._check_value(out.dtype in DTYPES, lambda: f"{name}: expected float32/bf16/fp16")
        torch._check_value(out.dim() == 5, lambda: f"{name}: expected (B, 3, T, h, w)")
        for got, want in zip(out.shape, (b, 3, t, *size)):
            torch._check_value(got == want, lambda: f"{name}: expected {(b, 3, t, *size)}")
        torch._check_value(out.device == clips.device, lambda: f"{name}: expected clips' device")

    def halves(clips):
        _check_clips(clips)
        return clips.shape[2] // 2, clips.shape[3] // 2

    @torch.library.register_fake("sportsfusion::fovea_context")
    def _(clips, dtype, channels_last):
        size = halves(clips)
        return _empty(clips, size, dtype, channels_last), _empty(clips, size, dtype, channels_last)

    @torch.library.register_fake("sportsfusion::fovea_context_out")
    def _(clips, fovea, context):
        size = halves(clips)
        check("fovea", fovea, clips, size)
        check("context", context, clips, size)

    @torch.library.register_fake("sportsfusion::clip_to_input")
    def _(clips, dtype, channels_last):
        _check_clips(clips)
        return _empty(clips, clips.shape[2:4], dtype, channels_last)

    @torch.library.register_fake("sportsfusion::clip_to_input_out")
    def _(clips, out):
        _check_clips(clips)
        check("out", out, clips, clips.shape[2:4])


if _backends.native_module() is not None:
    _register_fakes()


# ---- Triton: sportsfusion.kernels.fovea_context, imported only where Triton runs.


def _triton_clip_to_input_into(clips, out) -> None:
    from sportsfusion.kernels.fovea_context import clip_to_input_out

    clip_to_input_out(clips.contiguous(), out)


def _triton_fovea_context_into(clips, fovea, context) -> None:
    from sportsfusion.kernels.fovea_context import fovea_context_out

    fovea_context_out(clips.contiguous(), fovea, context)


def _triton_clip_to_input(clips, dtype, channels_last):
    out = _empty(clips, clips.shape[2:4], dtype, channels_last)
    _triton_clip_to_input_into(clips, out)
    return out


def _triton_fovea_context(clips, dtype, channels_last):
    size = (clips.shape[2] // 2, clips.shape[3] // 2)
    fovea, context = (_empty(clips, size, dtype, channels_last) for _ in range(2))
    _triton_fovea_context_into(clips, fovea, context)
    return fovea, context


def compile_cases(dtype: torch.dtype, batch: int = 64, frames: int = 10) -> dict:
    """What `python -m sportsfusion.ops.aot` compiles for sm_90: the stem kernels through this
    op's Triton path at the paper's 178x178 frames, channels-last outputs (what the models ask
    for on CUDA), on empty CPU tensors."""
    clips = torch.empty((batch, frames, 178, 178, 3), dtype=torch.uint8)
    return {
        "fovea_context": lambda: _triton_fovea_context(clips, dtype, True),
        "clip_to_input": lambda: _triton_clip_to_input(clips, dtype, True),
    }


# ---- The dispatcher.


def _candidates(device_type: str, reference, native: str, triton) -> dict:
    """This op's paths for `device_type` (ops/_backends.py orders them); `native` names the
    torch.ops.sportsfusion op, looked up when it runs (it exists only where _C is built)."""
    return candidates(device_type, reference, native=partial(_native, native), triton=triton)


def _native(name: str, *args):
    return getattr(torch.ops.sportsfusion, name)(*args)


def clip_to_input(
    clips: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    impl: str | None = None,
) -> torch.Tensor:
    """Full-frame models' first stage: (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) in `dtype`."""
    _check_clips(clips)
    _check_format(dtype, channels_last)
    device = clips.device.type
    candidates = _candidates(
        device, clip_to_input_reference, "clip_to_input", _triton_clip_to_input
    )
    _, fn = choose("clip_to_input", device, candidates, impl)
    return fn(clips, dtype, channels_last)


def fovea_context(
    clips: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multiresolution models' first stage: (B, T, H, W, 3) uint8 -> (fovea, context)."""
    _check_clips(clips)
    _check_format(dtype, channels_last)
    device = clips.device.type
    candidates = _candidates(
        device, fovea_context_reference, "fovea_context", _triton_fovea_context
    )
    _, fn = choose("fovea_context", device, candidates, impl)
    return fn(clips, dtype, channels_last)


def clip_to_input_into(clips: torch.Tensor, out: torch.Tensor, *, impl: str | None = None) -> None:
    """clip_to_input written into `out` (B, 3, T, H, W): any strides, float32/bf16/fp16."""
    _check_clips(clips)
    b, t, h, w, _ = clips.shape
    _check_out("out", out, (b, 3, t, h, w), clips)
    device = clips.device.type
    candidates = _candidates(
        device, _clip_to_input_reference_into, "clip_to_input_out", _triton_clip_to_input_into
    )
    _, fn = choose("clip_to_input", device, candidates, impl)
    fn(clips, out)


def fovea_context_into(
    clips: torch.Tensor, fovea: torch.Tensor, context: torch.Tensor, *, impl: str | None = None
) -> None:
    """fovea_context written into `fovea` and `context`: any strides, one float dtype."""
    _check_clips(clips)
    b, t, h, w, _ = clips.shape
    _check_out("fovea", fovea, (b, 3, t, h // 2, w // 2), clips)
    _check_out("context", context, (b, 3, t, h // 2, w // 2), clips)
    if fovea.dtype != context.dtype:
        raise ValueError(f"context: expected fovea's dtype {fovea.dtype}, got {context.dtype}")
    device = clips.device.type
    candidates = _candidates(
        device, _fovea_context_reference_into, "fovea_context_out", _triton_fovea_context_into
    )
    _, fn = choose("fovea_context", device, candidates, impl)
    fn(clips, fovea, context)
