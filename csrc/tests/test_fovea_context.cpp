// The fused first stage's kernels (csrc/fovea_context/) against a naive loop in double precision,
// without PyTorch or a GPU: the CPU kernel, and the CUDA kernel's block code (load_tile /
// store_tile, fovea_context.h) run block by block and thread by thread on the CPU, so its tiling,
// alignment and index arithmetic are checked here too.
//
// Random clips with odd and prime sizes, padded rows and frames and a misaligned base pointer;
// outputs in four layouts, pre-filled with NaN bytes, compared bit for bit (the rounding to bf16 /
// fp16 is recomputed independently with frexp + nearbyint); the bytes outside each output view
// must still be NaN afterwards. Exit code 1 on any mismatch.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fovea_context/fovea_context.h"

using namespace sportsfusion;

namespace {

int failures = 0;

void fail(const std::string& what) {
  if (++failures <= 20) std::fprintf(stderr, "FAIL %s\n", what.c_str());
}

// Round v (a normal number or 0) to `mant` mantissa bits, nearest even: the 16-bit pattern.
uint16_t naive_bits16(double v, int mant, int bias) {
  if (v == 0) return 0;
  int e;
  const double f = 2 * std::frexp(std::fabs(v), &e);  // |v| = f * 2^(e-1), f in [1, 2)
  double q = std::nearbyint((f - 1) * std::ldexp(1.0, mant));
  if (q == std::ldexp(1.0, mant)) q = 0, e += 1;
  return uint16_t((v < 0 ? 0x8000 : 0) | ((e - 1 + bias) << mant) | int(q));
}
uint32_t expected_bits(double v, float*) {
  const float f = float(v);  // exact: every value is a multiple of 2^-8
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
uint32_t expected_bits(double v, bf16*) { return naive_bits16(v, 7, 127); }
uint32_t expected_bits(double v, fp16*) { return naive_bits16(v, 10, 15); }
template <typename T>
uint32_t bits_of(const T& x) {
  uint32_t u = 0;
  std::memcpy(&u, &x, sizeof(T));
  return u;
}

struct Shape {
  int64_t b, t, h, w;
};

// Clips in a byte buffer with padded rows/frames/clips and a misaligned start.
struct Clips {
  std::vector<uint8_t> bytes;
  ClipView view;
  double pixel(int64_t unit, int64_t y, int64_t x, int c) const {
    return (double(view.row(unit, y)[3 * x + c]) - 117.0) / 64.0;
  }
};

Clips make_clips(const Shape& s, int skew, std::mt19937& rng) {
  const int64_t sh = 3 * s.w + (s.w % 2 ? 5 : 0), st = s.h * sh + 7, sb = s.t * st + 3;
  Clips c;
  // Ends at the last pixel: an over-read shows under -fsanitize=address.
  c.bytes.resize(size_t(skew + (s.b - 1) * sb + (s.t - 1) * st + (s.h - 1) * sh + 3 * s.w));
  for (auto& v : c.bytes) v = uint8_t(rng());
  c.view = ClipView{c.bytes.data() + skew, s.b, s.t, s.h, s.w, sb, st, sh};
  return c;
}

enum class Layout { ncthw, channels_last, sliced, pixel_padded };
const char* name(Layout l) {
  const char* names[] = {"ncthw", "channels_last", "sliced", "pixel_padded"};
  return names[int(l)];
}

// A NaN-filled buffer and a (B, 3, T, h, w) view into it.
template <typename T>
struct Output {
  std::vector<T> buffer;
  OutputView<T> view;
  int64_t offset = 0;
  std::vector<bool> in_view;

  Output(Layout layout, int64_t b, int64_t t, int64_t h, int64_t w) {
    int64_t st[5], size;
    switch (layout) {
      case Layout::ncthw: st[4] = 1, st[3] = w, st[2] = h * w, st[1] = t * h * w, st[0] = 3 * st[1];
        size = b * st[0]; break;
      case Layout::channels_last: st[1] = 1, st[4] = 3, st[3] = 3 * w, st[2] = 3 * w * h,
        st[0] = t * st[2], size = b * st[0]; break;
      case Layout::sliced:  // channels 1..3 of 4, rows padded by 3: no stride is dense
        st[4] = 1, st[3] = w + 3, st[2] = h * (w + 3), st[1] = t * st[2], st[0] = 4 * st[1];
        offset = st[1], size = b * st[0]; break;
      default:  // (B, T, h, w, 4): channels innermost but pixels 4 apart
        st[1] = 1, st[4] = 4, st[3] = 4 * w, st[2] = 4 * w * h, st[0] = t * st[2];
        size = b * st[0];
    }
    buffer.resize(size_t(size + 1));
    std::memset(static_cast<void*>(buffer.data()), 0xff, buffer.size() * sizeof(T));  // NaN
    view.data = buffer.data() + offset;
    std::memcpy(view.stride, st, sizeof st);
    in_view.assign(buffer.size(), false);
  }
  T& at(int64_t bi, int64_t c, int64_t ti, int64_t y, int64_t x) {
    const int64_t i = offset + bi * view.stride[0] + c * view.stride[1] + ti * view.stride[2] +
                      y * view.stride[3] + x * view.stride[4];
    in_view[size_t(i)] = true;
    return buffer[size_t(i)];
  }
};

template <typename T, typename Want>
void check(Output<T>& out, const Shape& s, int64_t h, int64_t w, Want want,
           const std::string& what) {
  for (int64_t b = 0; b < s.b; ++b)
    for (int c = 0; c < 3; ++c)
      for (int64_t t = 0; t < s.t; ++t)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) {
            const uint32_t got = bits_of(out.at(b, c, t, y, x));
            const uint32_t expect = expected_bits(want(b * s.t + t, y, x, c), (T*)nullptr);
            if (got != expect) {
              fail(what + " at (" + std::to_string(b) + "," + std::to_string(c) + "," +
                   std::to_string(t) + "," + std::to_string(y) + "," + std::to_string(x) +
                   "): got " + std::to_string(got) + ", want " + std::to_string(expect));
              return;
            }
          }
  const uint32_t poison = sizeof(T) == 4 ? 0xffffffffu : 0xffffu;
  for (size_t i = 0; i < out.buffer.size(); ++i)
    if (!out.in_view[i] && bits_of(out.buffer[i]) != poison) {
      fail(what + ": wrote outside the output view at " + std::to_string(i));
      return;
    }
}

// The CUDA kernel's loop, one block after another, its threads one after another per phase.
template <typename T>
void emulate_cuda(const FusedJob<T>& job) {
  std::vector<uint8_t> smem(size_t(job.grid.shared_bytes()));
  for (int64_t index = 0; index < job.grid.tiles(); ++index) {
    const Tile tile = tile_at(job.grid, index);
    std::memset(smem.data(), 0xa5, smem.size());  // a byte never loaded shows up as a wrong value
    for (int thread = 0; thread < kLanes * kWarps; ++thread)
      load_tile(job, tile, smem.data(), thread, kLanes * kWarps);
    for (int warp = 0; warp < kWarps; ++warp)
      for (int lane = 0; lane < kLanes; ++lane)
        store_tile(job, tile, smem.data(), lane, kLanes, warp, kWarps);
  }
}

template <typename T>
void run(const Shape& s, Layout layout, bool cuda, std::mt19937& rng, const char* type) {
  const Clips clips = make_clips(s, int(rng() % 16), rng);
  const Crop crop = fovea_crop(s.h, s.w);
  const std::string what = std::string(cuda ? "cuda-emulated " : "cpu ") + type + " " +
                           name(layout) + " " + std::to_string(s.b) + "x" + std::to_string(s.t) +
                           "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
  Output<T> fovea(layout, s.b, s.t, crop.height, crop.width);
  Output<T> context(layout, s.b, s.t, crop.height, crop.width);
  Output<T> full(layout, s.b, s.t, s.h, s.w);
  if (cuda) {
    emulate_cuda(fovea_context_job(clips.view, fovea.view, context.view));
    emulate_cuda(clip_to_input_job(clips.view, full.view));
  } else {  // in two ranges of frames, as at::parallel_for splits them
    const int64_t units = s.b * s.t, split = units / 2;
    fovea_context_cpu(clips.view, fovea.view, context.view, split, units);
    fovea_context_cpu(clips.view, fovea.view, context.view, 0, split);
    clip_to_input_cpu(clips.view, full.view, 0, units);
  }
  check(fovea, s, crop.height, crop.width,
        [&](int64_t u, int64_t y, int64_t x, int c) {
          return clips.pixel(u, crop.top + y, crop.left + x, c);
        },
        what + " fovea");
  check(context, s, crop.height, crop.width,
        [&](int64_t u, int64_t y, int64_t x, int c) {
          return (clips.pixel(u, 2 * y, 2 * x, c) + clips.pixel(u, 2 * y, 2 * x + 1, c) +
                  clips.pixel(u, 2 * y + 1, 2 * x, c) + clips.pixel(u, 2 * y + 1, 2 * x + 1, c)) /
                 4;
        },
        what + " context");
  check(full, s, s.h, s.w,
        [&](int64_t u, int64_t y, int64_t x, int c) { return clips.pixel(u, y, x, c); },
        what + " clip_to_input");
}

}  // namespace

int main() {
  // Every value the ops can produce (a pixel, and the mean of four from their sum), through the
  // kernels' 16-bit stores (half16.h's fast ones), against the naive rounding and half16.h's
  // general conversions.
  const auto check16 = [](float v, double want, const std::string& what) {
    bf16 b;
    fp16 h;
    store(&b, v);
    store(&h, v);
    if (b.bits != naive_bits16(want, 7, 127) || b.bits != float_to_bf16(v).bits)
      fail("bf16 of " + what);
    if (h.bits != naive_bits16(want, 10, 15) || h.bits != float_to_fp16(v).bits)
      fail("fp16 of " + what);
  };
  for (int u8 = 0; u8 <= 255; ++u8)
    check16(normalise(u8), (u8 - 117) / 64.0, "pixel " + std::to_string(u8));
  for (int k = 0; k <= 4 * 255; ++k)
    check16(normalise_sum4(k), (k - 468) / 256.0, "sum " + std::to_string(k));
  // The fast 16-bit stores on any value in their domain (finite; fp16: 0 or 2^-14 <= |v| <=
  // 65504; csrc/tests/test_half16.cpp sweeps every float of it against the general conversions).
  std::mt19937 rng(1234);
  for (int i = 0; i < 200000; ++i) {
    const double v = std::ldexp(1.0 + double(rng() % 8388608) / 8388608, int(rng() % 30) - 14) *
                     (rng() % 2 ? -1 : 1);
    if (std::fabs(v) > 65504) continue;
    bf16 b;
    fp16 h;
    store_finite(&b, float(v));
    store_normal(&h, float(v));
    if (b.bits != naive_bits16(float(v), 7, 127)) fail("bf16 of " + std::to_string(v));
    if (h.bits != naive_bits16(float(v), 10, 15)) fail("fp16 of " + std::to_string(v));
  }
  // Batch 1 and one frame, the paper's 178, odd and prime sizes, frames too small for a fovea
  // (H = 1), several row tiles (many thin rows), column tiles (W > 2 * kTileMaxCols), and 170
  // columns, whose shared rows fit 15 to a tile (rounded down to 14 so no 2x2 window is split).
  const Shape shapes[] = {{1, 1, 178, 178}, {2, 3, 31, 47},  {1, 2, 2, 2},    {2, 1, 3, 3},
                          {1, 2, 1, 5},     {1, 2, 7, 130},  {1, 1, 40, 601}, {2, 1, 333, 9},
                          {1, 2, 61, 171}};
  for (const Shape& s : shapes)
    for (Layout layout : {Layout::ncthw, Layout::channels_last, Layout::sliced,
                          Layout::pixel_padded})
      for (bool cuda : {false, true}) {
        run<float>(s, layout, cuda, rng, "fp32");
        run<bf16>(s, layout, cuda, rng, "bf16");
        run<fp16>(s, layout, cuda, rng, "fp16");
      }
  if (failures) {
    std::fprintf(stderr, "test_fovea_context: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_fovea_context: all cases passed\n");
  return 0;
}
