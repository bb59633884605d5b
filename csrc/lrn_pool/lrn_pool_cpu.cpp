// CPU kernel of the fused LRN + 2x2/2 max pool (see lrn_pool.h for the formula and the bound).
//
// One call writes a range of output rows (n, t, ho). Each row is cut into tiles of kTileOut
// output columns; a tile's 2 x 2*kTileOut input pixels are loaded once, for every channel, into
// a small [channel][pixel] buffer, so the channel-window sums and the pooling run over
// contiguous memory whatever the input layout. The window of an output that overhangs the
// right or bottom edge reads a clamped (repeated) pixel, which leaves the max unchanged.
// The backward (lrn_pool_backward_rows) walks the same rows and tiles and writes both input rows
// of each output row.
//
// The arithmetic follows PyTorch's reference order (sum of squares in increasing channel order,
// divided by size, times alpha, plus k, to the power beta; sqrt when beta is 0.5, as torch.pow
// does), so fp32 results agree with nn.LocalResponseNorm to a few ulp.
#include "lrn_pool/lrn_pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace sportsfusion {

// ---- the kernel ------------------------------------------------------------------------------

namespace {

template <typename T>
struct Acc {  // the compute type: fp64 for double, fp32 otherwise
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

inline float load(float v) { return v; }
inline double load(double v) { return v; }
inline float load(fp16 v) { return fp16_to_float(v); }
inline float load(bf16 v) { return bf16_to_float(v); }

template <typename T>
T store(typename Acc<T>::type v);
template <>
float store<float>(float v) { return v; }
template <>
double store<double>(double v) { return v; }
template <>
fp16 store<fp16>(float v) { return float_to_fp16(v); }  // any value: NaN, inf, subnormals
template <>
bf16 store<bf16>(float v) { return float_to_bf16(v); }

constexpr int64_t kTileOut = 8;             // output columns per tile
constexpr int64_t kTileIn = 2 * kTileOut;   // input columns per tile row
constexpr int64_t kPixels = 2 * kTileIn;    // pixels per tile: 2 rows x kTileIn columns

// norm = v / sqrt(sum / size * alpha + k) over a tile's pixels: the paper's beta = 0.5. GCC does
// not vectorise std::sqrt while it must set errno for negative inputs (the default), so on x86
// the float case uses SSE's sqrt, also correctly rounded: the same bits, 2x faster overall.
template <typename A>
void normalise_sqrt(const A* v, const A* sum, A* norm, A size, A alpha, A k) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<A, float>) {
    static_assert(kPixels % 4 == 0, "the SSE loop has no tail");
    const __m128 size4 = _mm_set1_ps(size), alpha4 = _mm_set1_ps(alpha), k4 = _mm_set1_ps(k);
    for (int64_t q = 0; q < kPixels; q += 4) {
      const __m128 scaled = _mm_mul_ps(_mm_div_ps(_mm_loadu_ps(sum + q), size4), alpha4);
      const __m128 divisor = _mm_add_ps(scaled, k4);
      _mm_storeu_ps(norm + q, _mm_div_ps(_mm_loadu_ps(v + q), _mm_sqrt_ps(divisor)));
    }
    return;
  }
#endif
  for (int64_t q = 0; q < kPixels; ++q) norm[q] = v[q] / std::sqrt(sum[q] / size * alpha + k);
}

// A tile's pixels for every channel into value[c][pixel] and their squares into square, read in
// the input's contiguous order (channels innermost for channels-last). offset: each pixel's
// element offset at channel 0.
template <typename T, typename A>
void load_tile(const T* x_row, const int64_t* offset, int64_t C, int64_t c_stride, A* value,
               A* square) {
  if (c_stride == 1) {
    for (int64_t q = 0; q < kPixels; ++q)
      for (int64_t c = 0; c < C; ++c) value[c * kPixels + q] = load(x_row[offset[q] + c]);
  } else {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t q = 0; q < kPixels; ++q)
        value[c * kPixels + q] = load(x_row[offset[q] + c * c_stride]);
  }
  for (int64_t i = 0; i < C * kPixels; ++i) square[i] = value[i] * value[i];
}

template <typename T>
void lrn_pool_rows(const T* x, T* out, const LrnPoolGeometry& g, const LrnParams& p,
                   int64_t row_begin, int64_t row_end) {
  using acc_t = typename Acc<T>::type;
  const int64_t C = g.c, ho_n = g.ho(), wo_n = g.wo();
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;  // PyTorch's channel window
  const acc_t size = acc_t(p.size), alpha = acc_t(p.alpha), beta = acc_t(p.beta), k = acc_t(p.k);
  const bool beta_half = p.beta == 0.5;

  std::vector<acc_t> value(C * kPixels), square(C * kPixels);  // [c][pixel]
  acc_t pooled[kTileOut];
  int64_t offset[kPixels];  // input element offset of each tile pixel, channel 0

  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t ho = row % ho_n, nt = row / ho_n, ti = nt % g.t, n = nt / g.t;
    const int64_t h0 = 2 * ho, h1 = std::min(2 * ho + 1, g.h - 1);
    const T* x_row = x + n * g.x_stride[0] + ti * g.x_stride[2];
    T* out_row = out + n * g.out_stride[0] + ti * g.out_stride[2] + ho * g.out_stride[3];

    for (int64_t wo0 = 0; wo0 < wo_n; wo0 += kTileOut) {
      const int64_t tile = std::min(kTileOut, wo_n - wo0);
      for (int64_t j = 0; j < kTileIn; ++j) {
        const int64_t w = std::min(2 * wo0 + j, g.w - 1);  // clamped: repeats the edge pixel
        offset[j] = h0 * g.x_stride[3] + w * g.x_stride[4];
        offset[kTileIn + j] = h1 * g.x_stride[3] + w * g.x_stride[4];
      }
      load_tile(x_row, offset, C, g.x_stride[1], value.data(), square.data());

      for (int64_t c = 0; c < C; ++c) {
        const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min(C - 1, c + after);
        // Pixels innermost, so that these loops vectorise.
        acc_t sum[kPixels], norm[kPixels];
        for (int64_t q = 0; q < kPixels; ++q) sum[q] = 0;
        for (int64_t cc = lo; cc <= hi; ++cc) {
          const acc_t* sq = &square[cc * kPixels];
          for (int64_t q = 0; q < kPixels; ++q) sum[q] += sq[q];
        }
        const acc_t* v = &value[c * kPixels];
        if (beta_half) {
          normalise_sqrt(v, sum, norm, size, alpha, k);
        } else {
          for (int64_t q = 0; q < kPixels; ++q)
            norm[q] = v[q] / std::pow(sum[q] / size * alpha + k, beta);
        }
        for (int64_t o = 0; o < tile; ++o) {
          // max over the 2x2 window, NaN winning as in PyTorch's max pooling
          acc_t m = -std::numeric_limits<acc_t>::infinity();
          for (int64_t q : {2 * o, 2 * o + 1, kTileIn + 2 * o, kTileIn + 2 * o + 1}) {
            if (norm[q] > m || std::isnan(norm[q])) m = norm[q];
          }
          pooled[o] = m;
        }
        T* out_c = out_row + c * g.out_stride[1] + wo0 * g.out_stride[4];
        for (int64_t o = 0; o < tile; ++o) out_c[o * g.out_stride[4]] = store<T>(pooled[o]);
      }
    }
  }
}

// The backward's d^beta over a tile's pixels: sqrt for the paper's beta = 0.5 (SSE for float,
// as in normalise_sqrt), so that b = a / scale has the forward's bits and the same argmax.
template <typename A>
void pow_beta(const A* divisor, A* scale, A beta, bool beta_half) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<A, float>) {
    if (beta_half) {
      for (int64_t q = 0; q < kPixels; q += 4)
        _mm_storeu_ps(scale + q, _mm_sqrt_ps(_mm_loadu_ps(divisor + q)));
      return;
    }
  }
#endif
  for (int64_t q = 0; q < kPixels; ++q)
    scale[q] = beta_half ? std::sqrt(divisor[q]) : std::pow(divisor[q], beta);
}

// The argmax compares b in x's dtype: PyTorch pools the rounded tensor, so for the 16-bit types
// values that round alike tie, and the first index wins.
template <typename T>
typename Acc<T>::type pool_key(typename Acc<T>::type b) {
  return load(store<T>(b));
}

// Backward, tile by tile as the forward: load a tile's pixels for every channel into
// [channel][pixel] buffers, recompute d and scale = d^beta with the forward's arithmetic, route
// each window's grad_out to its argmax (grad_b), then t = grad_b * a / (scale * d) per channel
// and grad_a[j] = grad_b[j] / scale[j] - coef * a[j] * (sum of t over the channels whose window
// holds j), pixels innermost so that the loops vectorise. Clamped pixels of an overhanging
// window are computed but neither compete for the argmax nor get written.
template <typename T>
void lrn_pool_backward_rows(const T* grad_out, const T* x, T* grad_x, const LrnPoolGeometry& g,
                            const int64_t gx_stride[5], const LrnParams& p, int64_t row_begin,
                            int64_t row_end) {
  using acc_t = typename Acc<T>::type;
  const int64_t C = g.c, ho_n = g.ho(), wo_n = g.wo();
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  const acc_t size = acc_t(p.size), alpha = acc_t(p.alpha), beta = acc_t(p.beta), k = acc_t(p.k);
  const acc_t coef = acc_t(2 * p.alpha * p.beta / double(p.size));
  const bool beta_half = p.beta == 0.5;
  const bool gx_channels_last = gx_stride[1] == 1;
  const int64_t* os = g.out_stride;  // grad_out's strides

  // [c][pixel] each; `t` holds the squares until every divisor is known.
  std::vector<acc_t> value(C * kPixels), divisor(C * kPixels), scale(C * kPixels);
  std::vector<acc_t> grad_b(C * kPixels), t(C * kPixels), grad_a(C * kPixels);
  int64_t offset[kPixels], gx_offset[kPixels];  // element offsets of each pixel, channel 0
  bool valid[kPixels];

  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t ho = row % ho_n, nt = row / ho_n, ti = nt % g.t, n = nt / g.t;
    const int64_t h0 = 2 * ho, h1 = std::min(2 * ho + 1, g.h - 1);
    const bool h1_valid = 2 * ho + 1 < g.h;
    const T* x_row = x + n * g.x_stride[0] + ti * g.x_stride[2];
    const T* go_row = grad_out + n * os[0] + ti * os[2] + ho * os[3];
    T* gx_row = grad_x + n * gx_stride[0] + ti * gx_stride[2];

    for (int64_t wo0 = 0; wo0 < wo_n; wo0 += kTileOut) {
      const int64_t tile = std::min(kTileOut, wo_n - wo0);
      for (int64_t j = 0; j < kTileIn; ++j) {
        const bool w_valid = 2 * wo0 + j < g.w;
        const int64_t w = std::min(2 * wo0 + j, g.w - 1);  // clamped: repeats the edge pixel
        offset[j] = h0 * g.x_stride[3] + w * g.x_stride[4];
        offset[kTileIn + j] = h1 * g.x_stride[3] + w * g.x_stride[4];
        gx_offset[j] = h0 * gx_stride[3] + w * gx_stride[4];
        gx_offset[kTileIn + j] = h1 * gx_stride[3] + w * gx_stride[4];
        valid[j] = w_valid;
        valid[kTileIn + j] = w_valid && h1_valid;
      }
      load_tile(x_row, offset, C, g.x_stride[1], value.data(), t.data());

      for (int64_t c = 0; c < C; ++c) {
        const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min(C - 1, c + after);
        acc_t sum[kPixels];
        for (int64_t q = 0; q < kPixels; ++q) sum[q] = 0;
        for (int64_t cc = lo; cc <= hi; ++cc) {
          const acc_t* sq = &t[cc * kPixels];
          for (int64_t q = 0; q < kPixels; ++q) sum[q] += sq[q];
        }
        acc_t* d = &divisor[c * kPixels];
        for (int64_t q = 0; q < kPixels; ++q) d[q] = sum[q] / size * alpha + k;
        pow_beta(d, &scale[c * kPixels], beta, beta_half);
      }

      for (int64_t c = 0; c < C; ++c) {
        const acc_t* v = &value[c * kPixels];
        const acc_t* sc = &scale[c * kPixels];
        acc_t* gb = &grad_b[c * kPixels];
        for (int64_t q = 0; q < kPixels; ++q) gb[q] = 0;
        for (int64_t o = 0; o < tile; ++o) {
          // PyTorch's max pooling: strictly greater, or NaN, replaces; so ties keep the first
          int64_t best = 2 * o;  // always valid
          acc_t m = -std::numeric_limits<acc_t>::infinity();
          for (int64_t q : {2 * o, 2 * o + 1, kTileIn + 2 * o, kTileIn + 2 * o + 1}) {
            if (!valid[q]) continue;
            const acc_t key = pool_key<T>(v[q] / sc[q]);
            if (key > m || std::isnan(key)) m = key, best = q;
          }
          gb[best] = load(go_row[c * os[1] + (wo0 + o) * os[4]]);
        }
        const acc_t* d = &divisor[c * kPixels];
        acc_t* tc = &t[c * kPixels];
        for (int64_t q = 0; q < kPixels; ++q) tc[q] = gb[q] * v[q] / (sc[q] * d[q]);
      }

      for (int64_t j = 0; j < C; ++j) {
        const int64_t lo = std::max<int64_t>(0, j - after), hi = std::min(C - 1, j + before);
        acc_t sum[kPixels];
        for (int64_t q = 0; q < kPixels; ++q) sum[q] = 0;
        for (int64_t c = lo; c <= hi; ++c) {
          const acc_t* tc = &t[c * kPixels];
          for (int64_t q = 0; q < kPixels; ++q) sum[q] += tc[q];
        }
        const acc_t *v = &value[j * kPixels], *sc = &scale[j * kPixels], *gb = &grad_b[j * kPixels];
        acc_t* ga = &grad_a[j * kPixels];
        for (int64_t q = 0; q < kPixels; ++q) ga[q] = gb[q] / sc[q] - coef * v[q] * sum[q];
      }

      if (gx_channels_last) {
        for (int64_t q = 0; q < kPixels; ++q) {
          if (!valid[q]) continue;
          T* gx = gx_row + gx_offset[q];
          for (int64_t c = 0; c < C; ++c) gx[c] = store<T>(grad_a[c * kPixels + q]);
        }
      } else {
        for (int64_t c = 0; c < C; ++c)
          for (int64_t q = 0; q < kPixels; ++q)
            if (valid[q])
              gx_row[gx_offset[q] + c * gx_stride[1]] = store<T>(grad_a[c * kPixels + q]);
      }
    }
  }
}

}  // namespace

template <typename T>
void lrn_pool_cpu(const T* x, T* out, const LrnPoolGeometry& g, const LrnParams& p,
                  int64_t row_begin, int64_t row_end) {
  if (g.c <= 0 || g.w <= 0 || row_begin >= row_end) return;
  lrn_pool_rows(x, out, g, p, row_begin, row_end);
}

template <typename T>
void lrn_pool_backward_cpu(const T* grad_out, const T* x, T* grad_x, const LrnPoolGeometry& g,
                           const int64_t grad_x_stride[5], const LrnParams& p, int64_t row_begin,
                           int64_t row_end) {
  if (g.c <= 0 || g.w <= 0 || row_begin >= row_end) return;
  lrn_pool_backward_rows(grad_out, x, grad_x, g, grad_x_stride, p, row_begin, row_end);
}

#define SPORTSFUSION_INSTANTIATE(T)                                                              \
  template void lrn_pool_cpu<T>(const T*, T*, const LrnPoolGeometry&, const LrnParams&, int64_t, \
                                int64_t);                                                        \
  template void lrn_pool_backward_cpu<T>(const T*, const T*, T*, const LrnPoolGeometry&,         \
                                         const int64_t[5], const LrnParams&, int64_t, int64_t);
SPORTSFUSION_INSTANTIATE(float)
SPORTSFUSION_INSTANTIATE(double)
SPORTSFUSION_INSTANTIATE(fp16)
SPORTSFUSION_INSTANTIATE(bf16)
#undef SPORTSFUSION_INSTANTIATE

}  // namespace sportsfusion
