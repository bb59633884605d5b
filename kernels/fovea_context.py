"""Triton kernels for the models' first stage: uint8 clips -> normalised fovea/context or frame.

    fovea_context_out(clips, fovea, context)  clips (B, T, H, W, 3) uint8 contiguous
                                              fovea, context (B, 3, T, H//2, W//2), written in place
    clip_to_input_out(clips, out)             out (B, 3, T, H, W), written in place

Outputs may have any strides (contiguous NCTHW or torch.channels_last_3d) and dtype float32,
bfloat16 or float16. Each value is (u8 - 117) / 64; the fovea is the centre H//2 x W//2 crop and
the context the 2x2 mean over rows/cols [0, 2*(H//2)) x [0, 2*(W//2)), exactly as
sportsfusion.ops.fovea_context's reference. In fp32 every value is a multiple of 2^-8, so the
kernels equal the reference bit for bit; bf16/fp16 are the fp32 value rounded to nearest.

Bandwidth bound (one launch each, every input byte read once, every output written once), with
fh, fw = H//2, W//2 and s the output element size (4 for fp32):
    fovea_context_out  reads B*T*2fh*2fw*3 bytes (<= the clip), writes B*T*fh*fw*3*2*s bytes
    clip_to_input_out  reads B*T*H*W*3 bytes,                   writes B*T*H*W*3*s bytes
so in fp32 the fused op moves 3x the clip's bytes (full frame: 5x), against the reference's
separate cast, subtract, permute, crop and pool copies.

Access widths on sm_90 (python -m sportsfusion.ops.aot): into a dense channels-last output
clip_to_input is one flat elementwise stream with 16-byte loads and stores. The tiled kernels
(fovea_context, and clip_to_input into other layouts) load single bytes and store single
elements: a 178-wide frame's rows (534 bytes) have no alignment the compiler can prove, so it
cannot vectorise them. The CUDA extension's kernel aligns by hand and is the one `auto` runs first.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from sportsfusion.kernels import autotune_configs, device_guard

# constexpr: compiled kernels may read only constexpr globals (the interpreter does not check).
PIXEL_MEAN = tl.constexpr(117.0)  # paper-facts §3, as in sportsfusion/ops/fovea_context.py
PIXEL_SCALE = tl.constexpr(1.0 / 64.0)  # a power of two: normalised uint8 values are exact in fp32
OUT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _configs() -> list[triton.Config]:
    """BLOCK_H x BLOCK_W output positions per program. Under the interpreter one large tile keeps
    the number of (slow, Python-level) programs down and skips autotuning; on the GPU a few
    shapes, since an 89-wide frame wastes different amounts of each tile."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return [triton.Config({"BLOCK_H": 32, "BLOCK_W": 32}, num_warps=1)]
    configs = [
        triton.Config({"BLOCK_H": bh, "BLOCK_W": bw}, num_warps=nw)
        for bh, bw, nw in ((8, 32, 4), (16, 16, 4), (4, 64, 4), (16, 32, 8))
    ]
    return autotune_configs(configs, quick=(0, 3))  # SPORTSFUSION_AUTOTUNE=quick: two tiles


@triton.jit
def _to_output(x, ptr):
    """fp32 -> ptr's element type, rounded to nearest even. The context has up to 10 significant
    bits, so bf16 rounds it (fp16 and the fovea are exact). The GPU's fp32->bf16 is RTNE but the
    interpreter truncates, so round by hand on the bits: both paths then give the same answer."""
    if ptr.dtype.element_ty == tl.bfloat16:
        bits = x.to(tl.int32, bitcast=True)  # finite values only: no NaN/inf can occur here
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & -65536  # keep the top 16 bits, RTNE
        x = bits.to(tl.float32, bitcast=True)  # now exact in bf16, so the cast cannot round
    return x.to(ptr.dtype.element_ty)


@triton.autotune(configs=_configs(), key=["H", "W"])
@triton.jit
def _fovea_context_kernel(
    clips_ptr,  # uint8 (B*T, H, W, 3) contiguous
    fovea_ptr,  # (B, 3, T, FH, FW), strides below
    context_ptr,  # (B, 3, T, FH, FW), strides below
    T,  # frames per clip: splits the flat frame index into (b, t)
    H,
    W,
    FH,  # H // 2
    FW,  # W // 2
    TOP,  # fovea crop origin: (H - FH) // 2
    LEFT,  # (W - FW) // 2
    f_sb,
    f_sc,
    f_st,
    f_sh,
    f_sw,
    c_sb,
    c_sc,
    c_st,
    c_sh,
    c_sw,
    BLOCK_H: tl.constexpr,  # context rows per program (reads 2 * BLOCK_H input rows)
    BLOCK_W: tl.constexpr,  # context columns per program
):
    # Frames on axis 0 (up to 2^31 programs), tiles of one frame on axis 1 (<= 65535 is plenty).
    frame = tl.program_id(0).to(tl.int64)  # b * T + t; int64 since a batch may pass 2 GiB
    tile = tl.program_id(1)
    tiles_w = tl.cdiv(FW, BLOCK_W)
    b = frame // T
    t = frame % T

    # One program reads the 2 BLOCK_H x 2 BLOCK_W input pixels behind its context tile, channel
    # padded to 4 (a power of two; the 4th lane is masked, so no byte is read twice).
    rows = (tile // tiles_w) * (2 * BLOCK_H) + tl.arange(0, 2 * BLOCK_H)
    cols = (tile % tiles_w) * (2 * BLOCK_W) + tl.arange(0, 2 * BLOCK_W)
    r = rows[:, None, None]
    c = cols[None, :, None]
    k = tl.arange(0, 4).to(tl.int64)[None, None, :]  # int64: k * channel stride may pass 2^31
    in_frame = (r < 2 * FH) & (c < 2 * FW) & (k < 3)
    pixels = tl.load(clips_ptr + frame * H * W * 3 + (r * W + c) * 3 + k, mask=in_frame, other=0)
    x = (pixels.to(tl.float32) - PIXEL_MEAN) * PIXEL_SCALE  # (2 BLOCK_H, 2 BLOCK_W, 4)

    # Fovea from the same registers: the crop [TOP, TOP+FH) x [LEFT, LEFT+FW) lies inside
    # [0, 2FH) x [0, 2FW) for every H, W (TOP <= FH), so each fovea pixel is in exactly one
    # program's tile and the fovea costs no extra read; the price is a masked store, empty for
    # the programs whose tile misses the centre.
    fr = r - TOP
    fc = c - LEFT
    in_fovea = (fr >= 0) & (fr < FH) & (fc >= 0) & (fc < FW) & (k < 3)
    f_off = b * f_sb + k * f_sc + t * f_st + fr * f_sh + fc * f_sw
    tl.store(fovea_ptr + f_off, _to_output(x, fovea_ptr), mask=in_fovea)

    # Context: mean of each 2x2 block. Four exact fp32 values, so the sum order cannot matter.
    blocks = tl.reshape(x, (BLOCK_H, 2, BLOCK_W, 2, 4))
    context = tl.sum(tl.sum(blocks, axis=3), axis=1) * 0.25  # (BLOCK_H, BLOCK_W, 4)
    i = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    j = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    ci = i[:, None, None]
    cj = j[None, :, None]
    c_off = b * c_sb + k * c_sc + t * c_st + ci * c_sh + cj * c_sw
    in_context = (ci < FH) & (cj < FW) & (k < 3)
    tl.store(context_ptr + c_off, _to_output(context, context_ptr), mask=in_context)


@triton.autotune(configs=_configs(), key=["H", "W"])
@triton.jit
def _clip_to_input_kernel(
    clips_ptr,  # uint8 (B*T, H, W, 3) contiguous
    out_ptr,  # (B, 3, T, H, W), strides below
    T,
    H,
    W,
    o_sb,
    o_sc,
    o_st,
    o_sh,
    o_sw,
    BLOCK_H: tl.constexpr,  # input rows per program
    BLOCK_W: tl.constexpr,  # input columns per program
):
    frame = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    tiles_w = tl.cdiv(W, BLOCK_W)
    b = frame // T
    t = frame % T
    rows = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    r = rows[:, None, None]
    c = cols[None, :, None]
    k = tl.arange(0, 4).to(tl.int64)[None, None, :]  # channel padded to 4, the 4th lane masked
    mask = (r < H) & (c < W) & (k < 3)
    pixels = tl.load(clips_ptr + frame * H * W * 3 + (r * W + c) * 3 + k, mask=mask, other=0)
    x = (pixels.to(tl.float32) - PIXEL_MEAN) * PIXEL_SCALE
    o_off = b * o_sb + k * o_sc + t * o_st + r * o_sh + c * o_sw
    tl.store(out_ptr + o_off, _to_output(x, out_ptr), mask=mask)


# Elements per program of the flat kernel: 128 threads x 16 (one 16-byte load of uint8 each).
FLAT_BLOCK = 2048


@triton.jit
def _clip_to_input_flat_kernel(
    clips_ptr,  # uint8, N elements in (B, T, H, W, 3) order
    out_ptr,  # N elements in the same order: a dense channels-last (B, 3, T, H, W) tensor
    N,
    BLOCK: tl.constexpr,
):
    # With a channels-last output the op is elementwise over one flat range, so loads and stores
    # are contiguous and aligned per program: full blocks take no mask, which lets the compiler
    # emit 16-byte vector accesses (a mask of unknown alignment would make every access scalar).
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    if start + BLOCK <= N:
        pixels = tl.load(clips_ptr + offs)
        x = (pixels.to(tl.float32) - PIXEL_MEAN) * PIXEL_SCALE
        tl.store(out_ptr + offs, _to_output(x, out_ptr))
    else:
        mask = offs < N
        pixels = tl.load(clips_ptr + offs, mask=mask, other=0)
        x = (pixels.to(tl.float32) - PIXEL_MEAN) * PIXEL_SCALE
        tl.store(out_ptr + offs, _to_output(x, out_ptr), mask=mask)


def _check_clips(clips: torch.Tensor) -> None:
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[-1] != 3:
        raise ValueError(
            f"clips: expected a uint8 tensor (B, T, H, W, 3), got {clips.dtype} "
            f"{tuple(clips.shape)}"
        )
    if not clips.is_contiguous():
        raise ValueError(f"clips: expected a contiguous tensor, got strides {clips.stride()}")


def _check_out(name: str, out: torch.Tensor, clips: torch.Tensor, shape: tuple) -> None:
    if out.dtype not in OUT_DTYPES or tuple(out.shape) != shape:
        raise ValueError(
            f"{name}: expected a float32/bfloat16/float16 tensor {shape}, "
            f"got {out.dtype} {tuple(out.shape)}"
        )
    if out.device != clips.device:
        raise ValueError(
            f"{name}: expected a tensor on clips' device {clips.device}, got {out.device}"
        )


@torch.library.triton_op(
    "sportsfusion_triton::fovea_context_out", mutates_args=("fovea", "context")
)
def fovea_context_out(clips: torch.Tensor, fovea: torch.Tensor, context: torch.Tensor) -> None:
    """Write the normalised fovea and context of `clips` into `fovea` and `context` (one launch)."""
    _check_clips(clips)
    b, t, h, w, _ = clips.shape
    fh, fw = h // 2, w // 2
    _check_out("fovea", fovea, clips, (b, 3, t, fh, fw))
    _check_out("context", context, clips, (b, 3, t, fh, fw))
    if fovea.numel() == 0:
        return  # a zero-sized grid is not a valid launch

    def grid(meta):
        return (b * t, triton.cdiv(fh, meta["BLOCK_H"]) * triton.cdiv(fw, meta["BLOCK_W"]))

    # Under TRITON_INTERPRET=1 wrap_triton hands back the bare kernel (torch 2.13 knows the
    # interpreter): the op runs eagerly on CPU tensors, but fake tensors (torch.compile, opcheck's
    # faketensor test) cannot run it there; compiled for CUDA it is traced as usual.
    with device_guard(clips):
        torch.library.wrap_triton(_fovea_context_kernel)[grid](
            clips, fovea, context, t, h, w, fh, fw, (h - fh) // 2, (w - fw) // 2,
            *fovea.stride(), *context.stride(),
        )  # fmt: skip


@torch.library.triton_op("sportsfusion_triton::clip_to_input_out", mutates_args=("out",))
def clip_to_input_out(clips: torch.Tensor, out: torch.Tensor) -> None:
    """Write the normalised full frame of `clips` (B, T, H, W, 3) into `out` (B, 3, T, H, W)."""
    _check_clips(clips)
    b, t, h, w, _ = clips.shape
    _check_out("out", out, clips, (b, 3, t, h, w))
    if out.numel() == 0:
        return
    if out.is_contiguous(memory_format=torch.channels_last_3d):  # what CUDA models ask for
        n = out.numel()
        with device_guard(clips):
            torch.library.wrap_triton(_clip_to_input_flat_kernel)[(triton.cdiv(n, FLAT_BLOCK),)](
                clips, out, n, BLOCK=FLAT_BLOCK, num_warps=4
            )
        return

    def grid(meta):
        return (b * t, triton.cdiv(h, meta["BLOCK_H"]) * triton.cdiv(w, meta["BLOCK_W"]))

    with device_guard(clips):
        torch.library.wrap_triton(_clip_to_input_kernel)[grid](clips, out, t, h, w, *out.stride())
