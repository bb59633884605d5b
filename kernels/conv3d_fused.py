"""Triton implicit-GEMM 3D convolution with bias and ReLU fused into its epilogue.

    pack_weight(weight)                                weight (COUT, CIN, KT, KH, KW) -> (K, COUT)
    conv3d_fused_packed(x, w_packed, bias, kernel, stride, padding, relu, tf32) -> y
        x  (N, CIN, T, H, W), any strides (torch.channels_last_3d reads fastest)
        y  (N, COUT, TO, HO, WO), torch.channels_last_3d, same dtype as x

The convolution is one GEMM, computed without materialising im2col:
    M = N*TO*HO*WO output positions (rows), COUT output channels (columns),
    K = KT*KH*KW*CIN, ordered (kt, kh, kw, cin), so consecutive k of one tap are consecutive
    channels of one input position: contiguous memory in channels-last input.
Work: 2*M*COUT*K FLOPs. Operands in bf16/fp16 (or fp32, fp64 under the interpreter), fp32
accumulation; the epilogue adds the bias in fp32, applies ReLU, casts once and writes each output
once, so the fused op saves the reference's separate bias-add and ReLU passes (PyTorch adds a
cuDNN convolution's bias on its own; each pass reads and writes the output: 4 bytes/element
in bf16).

Two K loops, picked by a constexpr:
  - taps (CIN >= 16): one loop over (tap, channel block); every row of an A tile is one input
    position, so its bounds mask is a (BLOCK_M,) vector computed once per tap;
  - flat (CIN < 16, i.e. conv1 with RGB input): K runs straight through in BLOCK_K steps and each
    k is split into (kt, kh, kw, cin) with constexpr divisors. Padding CIN=3 to a 16-wide block
    per tap would multiply conv1's MMA work by 16/3; this wastes at most one partial block.
    The op pads RGB to 4 channels first (pad_thin_channels: 4/3 of conv1's MMA work and one copy
    of its input) and passes ROW_ALIGN, so the compiler knows each tap's 4 channels are one
    aligned 8-byte pixel: on sm_90 conv1's input then loads as 8-byte cp.async into the pipeline
    instead of synchronous 2-byte gathers, with fewer registers (128x128x64/8 warps: 167, was
    231) and spills only in the 256x128x64 tile (48 bytes, was 424). Compiled, not yet timed:
    python -m sportsfusion.ops.aot shows it; a GPU benchmark must confirm it pays.
Offsets are int32: the launcher splits the batch so one launch never spans 2^31 elements.

LRN is not fused: it needs all COUT channels of a position in one tile (BLOCK_N >= COUT = 96..384)
plus a cross-lane window, which fixes BLOCK_N and raises register pressure for every layer it
touches, and it is followed by max pooling, which a separate LRN + pool kernel fuses with it
anyway. Whether fusing LRN here pays is left to GPU measurements.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from sportsfusion.kernels import autotune_configs, device_guard

DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)
INT32_SPAN = 2**31 - 1
FLAT_K_BELOW = 16  # tl.dot needs K blocks of >= 16; thinner channel counts run the flat K loop
THIN_CHANNEL_ALIGN = 4  # thin inputs are padded to 4 channels: 8-byte pixels in bf16/fp16
SHARED_BYTES = 200 * 1024  # pipeline buffers per program; H100 offers 227 KiB (A100 163 KiB)


def _cuda_configs() -> list[triton.Config]:
    """Tiles (BLOCK_M positions x BLOCK_N channels x BLOCK_K reduction) for the GPU: a set around
    the Hopper sweet spot 128x128x64, narrow BLOCK_N for COUT=96 (3 x 32 wastes nothing) and small
    tiles for multiresolution conv3-5 (M = 1568 at batch 32 fills few SMs)."""
    shapes = (
        (128, 128, 64, 8, 3),
        (128, 128, 32, 4, 4),
        (128, 64, 64, 4, 4),
        (64, 128, 64, 4, 4),
        (128, 32, 64, 4, 4),
        (64, 64, 64, 4, 4),
        (64, 64, 32, 4, 5),
        (64, 32, 64, 4, 4),
        (64, 32, 32, 4, 4),
        (256, 128, 64, 8, 3),
        (256, 64, 64, 8, 3),
        (128, 128, 128, 8, 3),
    )
    return [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=nw, num_stages=ns)
        for bm, bn, bk, nw, ns in shapes
    ]


# SPORTSFUSION_AUTOTUNE=quick: the Hopper sweet spot, a half-width tile (COUT = 96, 384) and the
# small pipelined tile for the multiresolution layers' few output rows.
QUICK_CONFIGS = (0, 2, 6)


def _configs() -> list[triton.Config]:
    """Under the interpreter one config (no autotuning; large blocks mean fewer Python-level
    iterations, and >= 16 everywhere keeps the tl.dot shape rules of the GPU)."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}, num_warps=1)]
    return autotune_configs(_cuda_configs(), QUICK_CONFIGS)


def _prune(configs, named_args, **kwargs):
    """Drop tiles wider than the layer (a channel block past next_pow2(CIN) in the taps loop, or a
    column block past next_pow2(COUT), only multiplies zeros) and pipelines that overflow shared
    memory (fp32 operands take twice bf16's). The autotuner passes positional arguments in
    named_args and keyword ones (our constexprs) in kwargs."""
    args = {**named_args, **kwargs}
    cin, cout = args["CIN"], args["COUT"]
    x = args.get("x_ptr")
    itemsize = x.element_size() if hasattr(x, "element_size") else 2
    kmax = max(16, triton.next_power_of_2(cin)) if cin >= FLAT_K_BELOW else 1 << 30
    nmax = max(16, triton.next_power_of_2(cout))

    def smem(c):
        return (
            c.num_stages
            * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"])
            * c.kwargs["BLOCK_K"]
            * itemsize
        )

    kept = [c for c in configs if c.kwargs["BLOCK_K"] <= kmax and c.kwargs["BLOCK_N"] <= nmax]
    kept = [c for c in kept if smem(c) <= SHARED_BYTES]
    return kept or [min(configs, key=smem)]


@triton.autotune(
    configs=_configs(),
    key=["M", "CIN", "COUT", "KT", "KH", "KW", "ST", "SH", "SW"],
    prune_configs_by={"early_config_prune": _prune},
)
@triton.jit
def _conv3d_fused_kernel(
    x_ptr,  # input (N, CIN, T, H, W), strides below
    w_ptr,  # packed weight (K, COUT) contiguous, K ordered (kt, kh, kw, cin)
    b_ptr,  # bias (COUT,), any float dtype; unused when HAS_BIAS is False
    y_ptr,  # output (N, COUT, TO, HO, WO), strides below
    M,  # N * TO * HO * WO
    T,
    H,
    W,
    TO,
    HO,
    WO,
    stride_xn,
    stride_xc,
    stride_xt,
    stride_xh,
    stride_xw,
    stride_yn,
    stride_yc,
    stride_yt,
    stride_yh,
    stride_yw,
    CIN: tl.constexpr,  # geometry is constexpr: divisions by it become multiply-shifts, and
    COUT: tl.constexpr,  # a network has only a handful of distinct layers to compile
    KT: tl.constexpr,
    KH: tl.constexpr,
    KW: tl.constexpr,
    ST: tl.constexpr,
    SH: tl.constexpr,
    SW: tl.constexpr,
    PT: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    FLAT_K: tl.constexpr,  # True: flat K loop (thin CIN); False: loop over taps x channel blocks
    ROW_ALIGN: tl.constexpr,  # every n/t/h/w stride is a multiple of this (flat K loop's hint)
    INPUT_PRECISION: tl.constexpr,  # "tf32" or "ieee" for fp32 operands (as cudnn.allow_tf32)
    ACC_FP64: tl.constexpr,  # fp64 operands accumulate in fp64 (gradcheck under the interpreter)
    DOT_FP32: tl.constexpr,  # upcast operands before tl.dot: the interpreter's bf16 dot is broken
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # Column tiles of one row block are adjacent programs: with COUT <= 384 there are at most a
    # few, so the gathered input rows are read from L2 after the first; the packed weights
    # (<= 3.5 MB in bf16) stay in L2 regardless, so no grouped ordering is needed.
    pid = tl.program_id(0)
    num_n = tl.cdiv(COUT, BLOCK_N)
    pid_m = pid // num_n
    pid_n = pid % num_n
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < COUT

    # Row m -> output position (n, to, ho, wo) -> corner of its receptive field (t0, h0, w0).
    wo = offs_m % WO
    rest = offs_m // WO
    ho = rest % HO
    rest = rest // HO
    to = rest % TO
    n = rest // TO
    t0 = to * ST - PT
    h0 = ho * SH - PH
    w0 = wo * SW - PW
    row_off = n * stride_xn + t0 * stride_xt + h0 * stride_xh + w0 * stride_xw
    if FLAT_K and ROW_ALIGN > 1:
        row_off = tl.multiple_of(row_off, ROW_ALIGN)
    x_rows = x_ptr + row_off
    PADDED: tl.constexpr = PT + PH + PW > 0  # an unpadded conv never reads outside its input

    if ACC_FP64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if FLAT_K:
        K: tl.constexpr = KT * KH * KW * CIN
        for k0 in range(0, K, BLOCK_K):
            k = k0 + offs_k
            mask_k = k < K
            c = k % CIN
            tap = k // CIN
            dw = tap % KW
            dh = (tap // KW) % KH
            dt = tap // (KW * KH)
            a_mask = mask_m[:, None] & mask_k[None, :]
            if PADDED:
                ti = t0[:, None] + dt[None, :]
                hi = h0[:, None] + dh[None, :]
                wi = w0[:, None] + dw[None, :]
                a_mask &= (ti >= 0) & (ti < T) & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            tap_off = dt * stride_xt + dh * stride_xh + dw * stride_xw
            if ROW_ALIGN > 1:
                # With CIN padded to ROW_ALIGN (pad_thin_channels), each tap is ROW_ALIGN
                # contiguous, aligned channels: the compiler can then load them as one vector
                # (8 bytes in bf16) and pipeline the loads with cp.async, which it cannot prove
                # for 3 channels (2-byte loads, synchronous).
                tap_off = tl.multiple_of(tap_off, ROW_ALIGN)
            k_off = tap_off + c * stride_xc
            a = tl.load(x_rows[:, None] + k_off[None, :], mask=a_mask, other=0.0)
            b_ptrs = w_ptr + k[:, None] * COUT + offs_n[None, :]
            b = tl.load(b_ptrs, mask=mask_k[:, None] & mask_n[None, :], other=0.0)
            if DOT_FP32:
                a, b = a.to(tl.float32), b.to(tl.float32)
            acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
    else:
        # One loop (not three nested ones) so the compiler software-pipelines all of K.
        NUM_CB: tl.constexpr = (CIN + BLOCK_K - 1) // BLOCK_K
        for i in range(0, KT * KH * KW * NUM_CB):
            tap = i // NUM_CB
            c = (i % NUM_CB) * BLOCK_K + offs_k
            mask_c = c < CIN
            dw = tap % KW
            dh = (tap // KW) % KH
            dt = tap // (KW * KH)
            row_ok = mask_m
            if PADDED:
                ti = t0 + dt
                hi = h0 + dh
                wi = w0 + dw
                row_ok &= (ti >= 0) & (ti < T) & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            a_ptrs = x_rows + dt * stride_xt + dh * stride_xh + dw * stride_xw
            a_ptrs = a_ptrs[:, None] + c[None, :] * stride_xc
            a = tl.load(a_ptrs, mask=row_ok[:, None] & mask_c[None, :], other=0.0)
            b_ptrs = w_ptr + (tap * CIN + c)[:, None] * COUT + offs_n[None, :]
            b = tl.load(b_ptrs, mask=mask_c[:, None] & mask_n[None, :], other=0.0)
            if DOT_FP32:
                a, b = a.to(tl.float32), b.to(tl.float32)
            acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    # Epilogue: bias in fp32, ReLU, one cast, one store per output element.
    if HAS_BIAS:
        bias = tl.load(b_ptr + offs_n, mask=mask_n, other=0.0).to(acc.dtype)
        acc += bias[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    y_rows = n * stride_yn + to * stride_yt + ho * stride_yh + wo * stride_yw
    y_ptrs = y_ptr + y_rows[:, None] + offs_n[None, :] * stride_yc
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


def pack_weight(weight: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(COUT, CIN, KT, KH, KW) -> (K, COUT) contiguous, K ordered (kt, kh, kw, cin): the kernel's
    B operand, read along COUT. One copy of the weight (<= 3.5 MB for slow fusion's conv3 in
    bf16), cheap beside the convolution; done per call so training sees every update."""
    cout = weight.shape[0]
    return weight.to(dtype or weight.dtype).permute(2, 3, 4, 1, 0).reshape(-1, cout).contiguous()


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def pad_thin_channels(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Thin inputs (CIN < FLAT_K_BELOW, i.e. conv1's RGB) padded with zero channels to a multiple
    of THIN_CHANNEL_ALIGN, for the kernel only (the result is the same convolution). A 3-channel
    bf16 pixel is 6 bytes, so the flat K loop gathers it in 2-byte loads that cannot be pipelined;
    a 4-channel pixel is one aligned 8-byte vector (python -m sportsfusion.ops.aot shows both).
    The price is one copy of the input and 4/3 of conv1's MMA work. Other inputs pass through."""
    cin = x.shape[1]
    pad = -cin % THIN_CHANNEL_ALIGN
    if cin >= FLAT_K_BELOW or pad == 0:
        return x, weight
    # constant_pad_nd keeps a channels-last input channels-last: one pass writes the padded copy
    # (torch.cat would pick NCDHW here and need a second copy).
    channel_pad = (0, 0) * (x.dim() - 2) + (0, pad)
    x = torch.nn.functional.pad(x.contiguous(memory_format=torch.channels_last_3d), channel_pad)
    weight = torch.nn.functional.pad(weight, channel_pad)
    return x.contiguous(memory_format=torch.channels_last_3d), weight


def _row_alignment(x: torch.Tensor) -> int:
    """Largest power of two (<= 16) dividing every n/t/h/w stride of x: a promise to the kernel
    that every pixel offset is a multiple of it (pointers' own alignment is Triton's to check)."""
    g = math.gcd(*x.stride()[:1], *x.stride()[2:])
    return min(g & -g, 16) if g else 1


def _span(t: torch.Tensor, skip_batch: bool) -> int:
    """Largest element offset inside one sample (skip_batch) or the whole tensor."""
    dims = range(1, t.dim()) if skip_batch else range(t.dim())
    return sum((t.shape[d] - 1) * abs(t.stride(d)) for d in dims)


def _batch_chunk(x: torch.Tensor, y: torch.Tensor) -> int:
    """Samples per launch such that every offset fits in int32 (the kernel's index type)."""
    chunk = x.shape[0]
    for t in (x, y):
        if _span(t, skip_batch=False) > INT32_SPAN:
            per_sample, step = _span(t, skip_batch=True), max(1, abs(t.stride(0)))
            if per_sample > INT32_SPAN:
                raise ValueError(f"conv3d_fused: one sample spans {per_sample} elements (> 2^31)")
            chunk = min(chunk, (INT32_SPAN - per_sample) // step + 1)
    return chunk


@torch.library.triton_op("sportsfusion_triton::conv3d_fused", mutates_args={})
def conv3d_fused_packed(
    x: torch.Tensor,
    w_packed: torch.Tensor,
    bias: torch.Tensor | None,
    kernel: list[int],
    stride: list[int],
    padding: list[int],
    relu: bool,
    tf32: bool,
) -> torch.Tensor:
    """relu?(conv3d(x, w) + bias) with a (K, COUT) packed weight (see `pack_weight`); returns a
    torch.channels_last_3d tensor in x's dtype. Callers check shapes (sportsfusion.ops does)."""
    if x.dtype not in DTYPES or x.dim() != 5:
        raise ValueError(
            f"x: expected a (N, C, T, H, W) float tensor, got {x.dtype} {tuple(x.shape)}"
        )
    n, cin, t, h, w = x.shape
    kt, kh, kw = kernel
    cout = w_packed.shape[1]
    if w_packed.shape[0] != kt * kh * kw * cin or w_packed.dtype != x.dtype:
        raise ValueError(
            f"w_packed: expected ({kt * kh * kw * cin}, COUT) {x.dtype}, "
            f"got {tuple(w_packed.shape)} {w_packed.dtype}"
        )
    to, ho, wo = (output_size(*a) for a in zip((t, h, w), kernel, stride, padding))
    y = torch.empty((n, cout, to, ho, wo), device=x.device, dtype=x.dtype)
    y = y.contiguous(memory_format=torch.channels_last_3d)  # (N, TO, HO, WO, COUT) in memory
    if y.numel() == 0:
        return y
    precision = "tf32" if tf32 and x.dtype == torch.float32 else "ieee"
    # triton-lang/triton#11584: the interpreter multiplies bf16 bit patterns in tl.dot. Products
    # of bf16 values are exact in fp32, so upcasting there computes what the GPU's MMA computes.
    dot_fp32 = x.dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET", "0") == "1"
    chunk = _batch_chunk(x, y)
    for start in range(0, n, chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        m = xs.shape[0] * to * ho * wo

        def grid(meta, m=m):
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(cout, meta["BLOCK_N"]),)

        with device_guard(x):
            torch.library.wrap_triton(_conv3d_fused_kernel)[grid](
                xs, w_packed, bias if bias is not None else w_packed, ys,
                m, t, h, w, to, ho, wo, *xs.stride(), *ys.stride(),
                CIN=cin, COUT=cout, KT=kt, KH=kh, KW=kw,
                ST=stride[0], SH=stride[1], SW=stride[2],
                PT=padding[0], PH=padding[1], PW=padding[2],
                HAS_BIAS=bias is not None, RELU=relu, FLAT_K=cin < FLAT_K_BELOW,
                ROW_ALIGN=_row_alignment(xs),
                INPUT_PRECISION=precision, ACC_FP64=x.dtype == torch.float64, DOT_FP32=dot_fp32,
            )  # fmt: skip
    return y
