// CPU kernels of the fused first stage (fovea_context.h): one frame (unit) at a time, so the
// wrapper's at::parallel_for splits clips and frames over threads. Within a frame the context's
// row pair and the fovea rows it contains are done together while those input rows are in L1,
// so each input byte comes from memory once.
//
// The row loops are written for the auto-vectoriser: the output layout picks one of three loops
// (channels_last_3d: a contiguous run of 3*n elements; contiguous NCTHW: three unit-stride runs,
// one per channel; anything else: a plain strided loop), and __restrict__ tells it that the uint8
// input (a char type, which may alias anything) is not written through the output pointer.
#include "fovea_context/fovea_context.h"

// x86-64's baseline (SSE2) has no byte shuffle, so the de-interleaving loops run ~3x slower than
// with AVX2: the kernels are compiled twice and the loader picks (ifunc), whatever the build
// flags; the row helpers are forced inline so that they are compiled into each clone.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define SPORTSFUSION_CLONES __attribute__((target_clones("avx2", "default")))
#define SPORTSFUSION_INLINE __attribute__((always_inline)) inline
#else
#define SPORTSFUSION_CLONES
#define SPORTSFUSION_INLINE inline
#endif

namespace sportsfusion {
namespace {

// Out row of n pixels <- one input row's n pixels (3n bytes).
template <typename T>
SPORTSFUSION_INLINE void normalise_row(const uint8_t* __restrict__ src, int64_t n,
                                       T* __restrict__ out, int64_t stride_c, int64_t stride_x) {
  if (stride_c == 1 && stride_x == 3) {
    for (int64_t i = 0; i < 3 * n; ++i) store(out + i, normalise(src[i]));
  } else if (stride_x == 1) {
    for (int64_t c = 0; c < 3; ++c) {
      T* __restrict__ plane = out + c * stride_c;
      for (int64_t x = 0; x < n; ++x) store(plane + x, normalise(src[3 * x + c]));
    }
  } else {
    for (int64_t c = 0; c < 3; ++c) {
      T* __restrict__ plane = out + c * stride_c;
      for (int64_t x = 0; x < n; ++x) store(plane + x * stride_x, normalise(src[3 * x + c]));
    }
  }
}

// Out row of n pixels <- the 2x2 means of input rows a and b over pixels [0, 2n). In chunks of
// kChunk output pixels: vertical sums split by channel, then pairs of neighbours, one channel per
// loop; GCC cannot vectorise the direct form's stride-6 load groups.
constexpr int64_t kChunk = 128;

template <typename T>
SPORTSFUSION_INLINE void context_row(const uint8_t* __restrict__ a, const uint8_t* __restrict__ b,
                                     int64_t n, T* __restrict__ out, int64_t stride_c,
                                     int64_t stride_x) {
  int16_t sums[3][2 * kChunk];  // per channel, the vertical sums of 2*kChunk pixels
  for (int64_t x0 = 0; x0 < n; x0 += kChunk) {
    const int64_t m = n - x0 < kChunk ? n - x0 : kChunk;
    const uint8_t* __restrict__ ra = a + 6 * x0;
    const uint8_t* __restrict__ rb = b + 6 * x0;
    for (int c = 0; c < 3; ++c) {
      int16_t* __restrict__ s = sums[c];
      for (int64_t p = 0; p < 2 * m; ++p) s[p] = int16_t(ra[3 * p + c] + rb[3 * p + c]);
    }
    for (int c = 0; c < 3; ++c) {
      const int16_t* __restrict__ s = sums[c];
      T* __restrict__ o = out + x0 * stride_x + c * stride_c;
      auto mean = [&](int64_t x) { return normalise_sum4(s[2 * x] + s[2 * x + 1]); };
      if (stride_c == 1 && stride_x == 3) {  // a constant stride vectorises as strided stores
        for (int64_t x = 0; x < m; ++x) store(o + 3 * x, mean(x));
      } else if (stride_x == 1) {
        for (int64_t x = 0; x < m; ++x) store(o + x, mean(x));
      } else {
        for (int64_t x = 0; x < m; ++x) store(o + x * stride_x, mean(x));
      }
    }
  }
}

}  // namespace

template <typename T>
SPORTSFUSION_CLONES void fovea_context_cpu(const ClipView& clips, const OutputView<T>& fovea,
                                           const OutputView<T>& context, int64_t begin,
                                           int64_t end) {
  const Crop crop = fovea_crop(clips.height, clips.width);
  const int64_t frames = clips.frames, n = crop.width;
  for (int64_t unit = begin; unit < end; ++unit) {
    for (int64_t y = 0; y < crop.height; ++y) {
      const uint8_t* a = clips.row(unit, 2 * y);
      const uint8_t* b = clips.row(unit, 2 * y + 1);
      context_row(a, b, n, context.at(unit, frames, 0, y, 0), context.stride[1],
                  context.stride[4]);
      // The fovea rows among 2y, 2y + 1 (the fovea lies inside the context's rows).
      for (int64_t r = 2 * y; r < 2 * y + 2; ++r) {
        const int64_t fy = r - crop.top;
        if (fy < 0 || fy >= crop.height) continue;
        normalise_row((r == 2 * y ? a : b) + 3 * crop.left, n, fovea.at(unit, frames, 0, fy, 0),
                      fovea.stride[1], fovea.stride[4]);
      }
    }
  }
}

template <typename T>
SPORTSFUSION_CLONES void clip_to_input_cpu(const ClipView& clips, const OutputView<T>& out,
                                           int64_t begin, int64_t end) {
  for (int64_t unit = begin; unit < end; ++unit)
    for (int64_t y = 0; y < clips.height; ++y)
      normalise_row(clips.row(unit, y), clips.width, out.at(unit, clips.frames, 0, y, 0),
                    out.stride[1], out.stride[4]);
}

#define SPORTSFUSION_INSTANTIATE(T)                                                            \
  template void fovea_context_cpu<T>(const ClipView&, const OutputView<T>&,                    \
                                     const OutputView<T>&, int64_t, int64_t);                  \
  template void clip_to_input_cpu<T>(const ClipView&, const OutputView<T>&, int64_t, int64_t);
SPORTSFUSION_INSTANTIATE(float)
SPORTSFUSION_INSTANTIATE(bf16)
SPORTSFUSION_INSTANTIATE(fp16)
#undef SPORTSFUSION_INSTANTIATE

}  // namespace sportsfusion
