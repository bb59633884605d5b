// The models' first stage in one pass: uint8 clips (B, T, H, W, 3), as decoders produce them, ->
// the normalised network input (B, 3, T, h, w) in the layout and dtype the first convolution reads.
//
//   value    = (u8 - 117) / 64                    (sportsfusion/ops/fovea_context.py)
//   fovea    = the centre (H/2) x (W/2) crop, top = (H - H/2) / 2, left = (W - W/2) / 2
//   context  = the 2x2 mean over rows/cols [0, 2*(H/2)) x [0, 2*(W/2))
//   full     = every pixel (clip_to_input)
//
// Fovea and full-frame values are k/64 and context values k/256 with |k| <= 552: exact in fp32
// and fp16, so the kernels equal the PyTorch reference bit for bit there; bf16 is the same fp32
// value rounded to nearest even, as the reference's .to(bfloat16).
//
// Bandwidth bound: each input byte is read once and each output written once. fovea_context
// reads B*T*2fh*2fw*3 bytes (the clip, less an odd last row/column) and writes B*T*fh*fw*3*2*s
// (s = 4 for fp32, 2 for bf16/fp16); clip_to_input reads B*T*H*W*3 and writes B*T*H*W*3*s. The
// unfused reference writes and reads a float copy of the clip at each of cast, subtract, permute,
// crop and pool.
//
// Torch-free (raw pointers and strides), so the CPU kernel and the CUDA kernel's tiling are built
// and tested without PyTorch (csrc/tests/test_fovea_context.cpp); fovea_context_torch*.cpp adapt
// at::Tensor to these calls.
#pragma once

#include <cstdint>
#include <cstring>

#include "half16.h"  // bf16, fp16, their fast stores, SPORTSFUSION_HD

namespace sportsfusion {

constexpr float kPixelMean = 117.0f;      // paper-facts §3
constexpr float kPixelScale = 1.0f / 64;  // a power of two: normalised values stay exact

// Signed int arguments: x86 has no vector unsigned-to-float conversion.
SPORTSFUSION_HD float normalise(int u8) { return (float(u8) - kPixelMean) * kPixelScale; }
// The mean of four normalised pixels from their raw sum: (s - 4*117) / 256, exact in fp32.
SPORTSFUSION_HD float normalise_sum4(int sum) {
  return (float(sum) - 4 * kPixelMean) * (kPixelScale / 4);
}

// The kernels' one store per output type. The 16-bit ones are half16.h's branch-free stores, so
// that the same code vectorises on the CPU and runs in the CUDA kernel; their preconditions hold
// here: every value (k/64 or k/256, above) is 0 or in [2^-8, 552/256] in magnitude, so they round
// to nearest even exactly as float_to_bf16 / float_to_fp16.
SPORTSFUSION_HD void store(float* out, float v) { *out = v; }
SPORTSFUSION_HD void store(bf16* out, float v) { store_finite(out, v); }
SPORTSFUSION_HD void store(fp16* out, float v) { store_normal(out, v); }

// uint8 clips (B, T, H, W, 3) whose pixels are packed within each row (channel stride 1, pixel
// stride 3); batch, frame and row strides (bytes) are free, so slices in B, T, H need no copy.
struct ClipView {
  const uint8_t* data;
  int64_t batch, frames, height, width;
  int64_t stride_b, stride_t, stride_h;

  SPORTSFUSION_HD int64_t units() const { return batch * frames; }  // one unit = one frame
  SPORTSFUSION_HD const uint8_t* row(int64_t unit, int64_t y) const {
    return data + (unit / frames) * stride_b + (unit % frames) * stride_t + y * stride_h;
  }
};

// An output (B, 3, T, h, w) with element strides in that order: contiguous, channels_last_3d or
// any other layout.
template <typename T>
struct OutputView {
  T* data;
  int64_t stride[5];

  SPORTSFUSION_HD T* frame(int64_t unit, int64_t frames) const {  // element (b, 0, t, 0, 0)
    return data + (unit / frames) * stride[0] + (unit % frames) * stride[2];
  }
  SPORTSFUSION_HD T* at(int64_t unit, int64_t frames, int64_t c, int64_t y, int64_t x) const {
    return frame(unit, frames) + c * stride[1] + y * stride[3] + x * stride[4];
  }
};

// The torch wrappers describe an output once, untyped, then type it for the kernel they call.
template <typename T>
OutputView<T> typed(const OutputView<void>& v) {
  OutputView<T> out{static_cast<T*>(v.data), {}};
  for (int i = 0; i < 5; ++i) out.stride[i] = v.stride[i];
  return out;
}

// Where a crop sits in the frame: the fovea, or the whole frame for clip_to_input.
struct Crop {
  int64_t top, left, height, width;
};
SPORTSFUSION_HD Crop fovea_crop(int64_t height, int64_t width) {
  const int64_t fh = height / 2, fw = width / 2;
  return Crop{(height - fh) / 2, (width - fw) / 2, fh, fw};
}

// CPU kernels: write every output element of the frames (units) [begin, end), unit = b * T + t.
template <typename T>
void fovea_context_cpu(const ClipView& clips, const OutputView<T>& fovea,
                       const OutputView<T>& context, int64_t begin, int64_t end);
template <typename T>
void clip_to_input_cpu(const ClipView& clips, const OutputView<T>& out, int64_t begin,
                       int64_t end);

// ---- The CUDA kernel's tiling, here so that csrc/tests/test_fovea_context.cpp can run the very
// same block code on the CPU (no GPU needed to test the index logic). A block takes a tile of
// rows x columns of one frame, copies its bytes to shared memory with 16-byte loads (the rows'
// unaligned ends byte by byte), then writes the crop and the context elements that tile covers,
// consecutive threads along the output's smallest stride, so the stores coalesce in either layout.

constexpr int kTileBytes = 8192;  // input bytes per block: 6 resident blocks per SM keep up to
                                  // 48 KB per SM in flight, several times what HBM needs
constexpr int kTileMaxCols = 256;
constexpr int kLanes = 32, kWarps = 8;  // the block: 256 threads, a warp's lanes along a line

struct TileGrid {
  int64_t units;
  int rows, cols;  // the region tiled, [0, rows) x [0, cols) pixels of every frame
  int tile_rows, tile_cols, tiles_y, tiles_x;
  int pitch;  // shared-memory bytes per tile row: a multiple of 16, room for 15 bytes of skew

  SPORTSFUSION_HD int64_t tiles() const { return units * tiles_y * tiles_x; }
  int shared_bytes() const { return tile_rows * pitch; }
};

// `pairs`: the context's 2x2 windows must not straddle tiles, so tiles start on even rows/cols.
inline TileGrid make_tile_grid(int64_t units, int64_t rows, int64_t cols, bool pairs) {
  TileGrid g{units, int(rows), int(cols), 1, 1, 0, 0, 16};
  if (units == 0 || rows == 0 || cols == 0) return g;  // nothing to launch
  g.tile_cols = int(cols < kTileMaxCols ? cols : kTileMaxCols);
  g.pitch = (3 * g.tile_cols + 15 + 15) / 16 * 16;
  const int step = pairs ? 2 : 1;
  const int fit = kTileBytes / g.pitch / step * step;
  g.tile_rows = int(rows < fit ? rows : (fit < step ? step : fit));
  g.tiles_y = int((rows + g.tile_rows - 1) / g.tile_rows);
  g.tiles_x = int((cols + g.tile_cols - 1) / g.tile_cols);
  return g;
}

template <typename T>
struct FusedJob {  // one launch: a crop (fovea or full frame), optionally the context
  ClipView clips;
  OutputView<T> crop;
  Crop crop_at;
  OutputView<T> context;
  bool with_context;
  TileGrid grid;
};

struct Tile {
  int64_t unit;
  int r0, r1, c0, c1;  // rows [r0, r1), columns [c0, c1) of the frame
};

SPORTSFUSION_HD int imin(int a, int b) { return a < b ? a : b; }
SPORTSFUSION_HD int imax(int a, int b) { return a > b ? a : b; }

SPORTSFUSION_HD Tile tile_at(const TileGrid& g, int64_t index) {
  const int64_t per_unit = int64_t(g.tiles_y) * g.tiles_x;
  const int64_t unit = index / per_unit;
  const int rest = int(index - unit * per_unit), ty = rest / g.tiles_x, tx = rest % g.tiles_x;
  const int r0 = ty * g.tile_rows, c0 = tx * g.tile_cols;
  return Tile{unit, r0, imin(g.rows, r0 + g.tile_rows), c0, imin(g.cols, c0 + g.tile_cols)};
}

// The tile's input rows: shared-memory row i holds the 16-byte-aligned span around the input
// row's bytes [3*c0, 3*c1), which start `skew(i)` bytes in.
struct TileRows {
  const uint8_t* first;  // byte 3*c0 of input row r0
  int64_t stride;        // bytes from row to row
  int pitch;

  SPORTSFUSION_HD const uint8_t* source(int i) const { return first + i * stride; }
  SPORTSFUSION_HD int skew(int i) const {  // the low 4 bits only need 32-bit arithmetic
    return int((uint32_t(reinterpret_cast<uintptr_t>(first)) + uint32_t(i) * uint32_t(stride)) &
               15u);
  }
  SPORTSFUSION_HD const uint8_t* shared(const uint8_t* smem, int i) const {
    return smem + i * pitch + skew(i);
  }
};

template <typename T>
SPORTSFUSION_HD TileRows rows_of(const FusedJob<T>& job, const Tile& t) {
  return TileRows{job.clips.row(t.unit, t.r0) + 3 * t.c0, job.clips.stride_h, job.grid.pitch};
}

template <typename T>
SPORTSFUSION_HD void load_tile(const FusedJob<T>& job, const Tile& t, uint8_t* smem, int thread,
                               int threads) {
  const TileRows rows = rows_of(job, t);
  const int chunks = job.grid.pitch / 16, len = 3 * (t.c1 - t.c0);
  for (int k = thread; k < (t.r1 - t.r0) * chunks; k += threads) {
    const int i = k / chunks, q = 16 * (k - i * chunks), skew = rows.skew(i);
    const uint8_t* src = rows.source(i);  // shared byte j is src[j - skew]
    uint8_t* dst = smem + i * job.grid.pitch;
    const int lo = imax(q, skew), hi = imin(q + 16, skew + len);  // in shared-row coordinates
    if (lo == q && hi == q + 16) {  // a whole aligned chunk inside the row: one 16-byte load
#if defined(__CUDA_ARCH__)
      *reinterpret_cast<uint4*>(dst + q) = __ldg(reinterpret_cast<const uint4*>(src + (q - skew)));
#else
      std::memcpy(dst + q, src + (q - skew), 16);
#endif
    } else {
      for (int j = lo; j < hi; ++j) dst[j] = src[j - skew];
    }
  }
}

// Lines of an output block of ny rows x nx columns x 3 channels: with the channel stride below the
// column stride (channels_last_3d) a line is one row's 3*nx elements, otherwise one channel of
// one row. `lane` walks along lines, `warp` across them.
template <typename T, typename Value>
SPORTSFUSION_HD void store_block(const OutputView<T>& out, T* frame, int ya, int ny, int xa, int nx,
                                 Value value, int lane, int lanes, int warp, int warps) {
  const bool interleaved = out.stride[1] < out.stride[4];
  const int lines = interleaved ? ny : 3 * ny, len = interleaved ? 3 * nx : nx;
  for (int line = warp; line < lines; line += warps) {
    const int c_line = interleaved ? 0 : line / ny, y = ya + (interleaved ? line : line % ny);
    T* row = frame + c_line * out.stride[1] + y * out.stride[3] + xa * out.stride[4];
    for (int j = lane; j < len; j += lanes) {
      const int x = interleaved ? j / 3 : j, c = interleaved ? j - 3 * x : c_line;
      store(row + x * out.stride[4] + (c - c_line) * out.stride[1], value(y, xa + x, c));
    }
  }
}

template <typename T>
SPORTSFUSION_HD void store_tile(const FusedJob<T>& job, const Tile& t, const uint8_t* smem,
                                int lane, int lanes, int warp, int warps) {
  const TileRows rows = rows_of(job, t);
  const Crop& crop = job.crop_at;
  // Crop rows/columns whose source pixel lies in this tile.
  const int ya = imax(0, t.r0 - int(crop.top)), yb = imin(int(crop.height), t.r1 - int(crop.top));
  const int xa = imax(0, t.c0 - int(crop.left)), xb = imin(int(crop.width), t.c1 - int(crop.left));
  if (ya < yb && xa < xb) {
    const int top = int(crop.top) - t.r0, left = int(crop.left) - t.c0;
    auto pixel = [&](int y, int x, int c) {
      return normalise(rows.shared(smem, top + y)[3 * (left + x) + c]);
    };
    store_block(job.crop, job.crop.frame(t.unit, job.clips.frames), ya, yb - ya, xa, xb - xa,
                pixel, lane, lanes, warp, warps);
  }
  if (job.with_context && t.r0 < t.r1 && t.c0 < t.c1) {  // tiles start on even rows and columns
    auto mean = [&](int y, int x, int c) {
      const uint8_t* a = rows.shared(smem, 2 * y - t.r0) + 3 * (2 * x - t.c0) + c;
      const uint8_t* b = rows.shared(smem, 2 * y + 1 - t.r0) + 3 * (2 * x - t.c0) + c;
      return normalise_sum4(a[0] + a[3] + b[0] + b[3]);
    };
    store_block(job.context, job.context.frame(t.unit, job.clips.frames), t.r0 / 2,
                (t.r1 - t.r0) / 2, t.c0 / 2, (t.c1 - t.c0) / 2, mean, lane, lanes, warp, warps);
  }
}

// Jobs for the two ops; the launchers below and the C++ test's emulation run them.
template <typename T>
FusedJob<T> fovea_context_job(const ClipView& clips, const OutputView<T>& fovea,
                              const OutputView<T>& context) {
  const Crop crop = fovea_crop(clips.height, clips.width);
  const TileGrid grid = make_tile_grid(clips.units(), 2 * crop.height, 2 * crop.width, true);
  return FusedJob<T>{clips, fovea, crop, context, true, grid};
}
template <typename T>
FusedJob<T> clip_to_input_job(const ClipView& clips, const OutputView<T>& out) {
  const Crop all{0, 0, clips.height, clips.width};
  const TileGrid grid = make_tile_grid(clips.units(), clips.height, clips.width, false);
  return FusedJob<T>{clips, out, all, out, false, grid};
}

}  // namespace sportsfusion

// CUDA launchers (fovea_context_cuda.cu): one launch on `stream`, returning its launch error.
#if defined(__CUDACC__) || defined(SPORTSFUSION_WITH_CUDA)
#include <cuda_runtime_api.h>

namespace sportsfusion {
template <typename T>
cudaError_t fovea_context_cuda(const ClipView& clips, const OutputView<T>& fovea,
                               const OutputView<T>& context, cudaStream_t stream);
template <typename T>
cudaError_t clip_to_input_cuda(const ClipView& clips, const OutputView<T>& out,
                               cudaStream_t stream);
}  // namespace sportsfusion
#endif
