// CUDA kernel of the fused LRN + 2x2/2 max pool (see lrn_pool.h for the formula).
//
// One thread per output element. For its <= 4 pooled input pixels it sums the squares of the
// channel window, normalises the centre value and keeps the max, then stores once: no
// intermediate tensor ever reaches global memory.
//
// Thread order follows the input's contiguous dimension so that a warp's loads and stores
// coalesce: (n, t, ho, wo, c) with c fastest for channels-last inputs (the layout the CUDA models
// run in; a warp reads 32 consecutive channels of one pixel), (n, c, t, ho, wo) with wo fastest
// otherwise (a warp reads 64 consecutive w of one row). The channel window makes each input
// element be loaded by `size` neighbouring threads; those repeats hit L1, so DRAM traffic stays at
// the bound: every input byte read once, every output byte written once
//   bytes = N*C*T*H*W*sizeof(T) + N*C*T*ceil(H/2)*ceil(W/2)*sizeof(T)
// (slow fusion's conv1 at batch 32, bf16: 77 MB + 19 MB, about 30 us at an H100 SXM's 3.35 TB/s).
// Not yet measured: see benchmarks/bench_lrn_pool.py. The backward (lrn_pool_backward_kernel)
// runs one thread per input element instead; its bound is stated above it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "lrn_pool/lrn_pool.h"

namespace sportsfusion {
namespace {

template <typename T>
struct Traits {  // compute type and conversions; fp32 compute for the 16-bit types
  using acc = float;
  static __device__ float load(T v) { return v; }
  static __device__ T store(float v) { return v; }
};
template <>
struct Traits<double> {
  using acc = double;
  static __device__ double load(double v) { return v; }
  static __device__ double store(double v) { return v; }
};
template <>
struct Traits<__half> {
  using acc = float;
  static __device__ float load(__half v) { return __half2float(v); }
  static __device__ __half store(float v) { return __float2half_rn(v); }
};
template <>
struct Traits<__nv_bfloat16> {
  using acc = float;
  static __device__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

template <typename I>
__device__ __forceinline__ I imin(I a, I b) { return a < b ? a : b; }
template <typename I>
__device__ __forceinline__ I imax(I a, I b) { return a > b ? a : b; }

// Sizes and strides in the kernel's index type (int32 when every offset fits: cheaper division).
template <typename Index>
struct Shape {
  Index n, c, t, h, w, ho, wo;
  Index xs[5], os[5];  // element strides (n, c, t, h, w) of x and out
};

// Flat index -> (n, c, t, h, w) over sizes (C, T, H, W), in the order the layout stores them
// (channels innermost for channels-last), so consecutive threads touch consecutive addresses.
template <bool kChannelsLast, typename Index>
__device__ __forceinline__ void unravel(Index r, Index C, Index T, Index H, Index W, Index& n,
                                        Index& c, Index& t, Index& h, Index& w) {
  if (kChannelsLast) {
    c = r % C, r /= C, w = r % W, r /= W, h = r % H, r /= H, t = r % T, n = r / T;
  } else {
    w = r % W, r /= W, h = r % H, r /= H, t = r % T, r /= T, c = r % C, n = r / C;
  }
}

template <typename T, typename Index, bool kChannelsLast>
__global__ void __launch_bounds__(256)
    lrn_pool_kernel(const T* __restrict__ x,  // input, any strides
                    T* __restrict__ out,      // output, any strides (no overlap with x)
                    const Shape<Index> s,     // sizes and strides
                    const Index total,        // number of outputs
                    const int before, const int after,  // the channel window [c-before, c+after]
                    const typename Traits<T>::acc size, const typename Traits<T>::acc alpha,
                    const typename Traits<T>::acc beta, const typename Traits<T>::acc k,
                    const bool beta_half) {
  using acc_t = typename Traits<T>::acc;
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    Index n, c, t, ho, wo;
    unravel<kChannelsLast>(i, s.c, s.t, s.ho, s.wo, n, c, t, ho, wo);
    const T* x_nt = x + n * s.xs[0] + t * s.xs[2];
    const Index hs[2] = {2 * ho, imin(2 * ho + 1, s.h - 1)};  // clamped: repeats the edge pixel
    const Index ws[2] = {2 * wo, imin(2 * wo + 1, s.w - 1)};
    const Index lo = imax(Index(0), c - before), hi = imin(s.c - 1, c + after);
    acc_t m = -static_cast<acc_t>(INFINITY);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const T* px = x_nt + hs[q >> 1] * s.xs[3] + ws[q & 1] * s.xs[4];
      acc_t sum = 0;
      for (Index cc = lo; cc <= hi; ++cc) {
        const acc_t v = Traits<T>::load(px[cc * s.xs[1]]);
        sum += v * v;
      }
      const acc_t divisor = sum / size * alpha + k;
      const acc_t scale = beta_half ? sqrt(divisor) : pow(divisor, beta);
      const acc_t b = Traits<T>::load(px[c * s.xs[1]]) / scale;
      if (b > m || isnan(b)) m = b;  // NaN wins, as in PyTorch's max pooling
    }
    out[n * s.os[0] + c * s.os[1] + t * s.os[2] + ho * s.os[3] + wo * s.os[4]] =
        Traits<T>::store(m);
  }
}

// The argmax key: b in T's precision, as PyTorch pools the rounded tensor (see lrn_pool.h).
template <typename T>
__device__ __forceinline__ typename Traits<T>::acc pool_key(typename Traits<T>::acc b) {
  return Traits<T>::load(Traits<T>::store(b));
}

// Backward: one thread per input element (n, t, h, w, j), ordered like the input (j fastest for
// channels-last, w fastest otherwise) so that loads of x and stores of grad_x coalesce. The
// thread recomputes, for each channel c whose window holds j and each valid pixel of its 2x2
// pooling window, d_c and b_c with the forward's arithmetic, finds channel c's argmax (first in
// row-major order, NaN winning) and, where that is its own pixel, adds grad_out's share:
//   grad_a[j] = grad_b[j] / scale_j - coef * a_j * sum_c grad_b[c] * a_c / (scale_c * d_c)
// That is 4 * size * (size + 1) loads a thread (120 for size 5), all but the first of each
// element served by L1/L2 (neighbouring threads share them), so DRAM traffic stays at the bound
//   bytes = (2 * N*C*T*H*W + N*C*T*ceil(H/2)*ceil(W/2)) * sizeof(T)
// (x and grad_out read once, grad_x written once; slow fusion's conv1 at batch 32 in bf16:
// 173 MB, about 52 us at 3.35 TB/s). The recomputation (4 * size roots a thread) is the price of
// saving nothing in the forward. Not yet measured.
template <typename T, typename Index, bool kChannelsLast>
__global__ void __launch_bounds__(256)
    lrn_pool_backward_kernel(const T* __restrict__ grad_out,  // pooled shape, any strides
                             const T* __restrict__ x,         // input, any strides
                             T* __restrict__ grad_x,          // x's shape, any strides
                             const Shape<Index> s,            // os[] holds grad_out's strides
                             const Index gxs0, const Index gxs1, const Index gxs2,
                             const Index gxs3, const Index gxs4,  // grad_x's strides
                             const Index total,                   // number of inputs
                             const int before, const int after,
                             const typename Traits<T>::acc size,
                             const typename Traits<T>::acc alpha,
                             const typename Traits<T>::acc beta, const typename Traits<T>::acc k,
                             const typename Traits<T>::acc coef, const bool beta_half) {
  using acc_t = typename Traits<T>::acc;
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    Index n, j, t, h, w;
    unravel<kChannelsLast>(i, s.c, s.t, s.h, s.w, n, j, t, h, w);
    const Index ho = h / 2, wo = w / 2;
    const int self = int(h & 1) * 2 + int(w & 1);  // this pixel's place in its window
    const T* x_nt = x + n * s.xs[0] + t * s.xs[2];
    const T* go = grad_out + n * s.os[0] + t * s.os[2] + ho * s.os[3] + wo * s.os[4];
    const bool valid[4] = {true, 2 * wo + 1 < s.w, 2 * ho + 1 < s.h,
                           2 * ho + 1 < s.h && 2 * wo + 1 < s.w};
    const Index lo_c = imax(Index(0), j - after), hi_c = imin(s.c - 1, j + before);
    acc_t grad_own = 0, sum_t = 0;
    for (Index c = lo_c; c <= hi_c; ++c) {
      const Index lo = imax(Index(0), c - before), hi = imin(s.c - 1, c + after);
      acc_t m = -static_cast<acc_t>(INFINITY), a_self = 0, scale_self = 1, d_self = 1;
      int best = 0;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (!valid[q]) continue;
        const T* px = x_nt + (2 * ho + (q >> 1)) * s.xs[3] + (2 * wo + (q & 1)) * s.xs[4];
        acc_t sum = 0;
        for (Index cc = lo; cc <= hi; ++cc) {
          const acc_t v = Traits<T>::load(px[cc * s.xs[1]]);
          sum += v * v;
        }
        const acc_t divisor = sum / size * alpha + k;
        const acc_t scale = beta_half ? sqrt(divisor) : pow(divisor, beta);
        const acc_t a = Traits<T>::load(px[c * s.xs[1]]);
        const acc_t key = pool_key<T>(a / scale);
        if (key > m || isnan(key)) m = key, best = q;  // ties keep the first, as PyTorch
        if (q == self) a_self = a, scale_self = scale, d_self = divisor;
      }
      if (best != self) continue;
      const acc_t grad_b = Traits<T>::load(go[c * s.os[1]]);
      sum_t += grad_b * a_self / (scale_self * d_self);
      if (c == j) grad_own = grad_b / scale_self;
    }
    const acc_t a_j = Traits<T>::load(x_nt[j * s.xs[1] + h * s.xs[3] + w * s.xs[4]]);
    grad_x[n * gxs0 + j * gxs1 + t * gxs2 + h * gxs3 + w * gxs4] =
        Traits<T>::store(grad_own - coef * a_j * sum_t);
  }
}

// Largest element offset + 1 reachable with these sizes and strides (strides are >= 0).
int64_t span(const int64_t sizes[5], const int64_t strides[5]) {
  int64_t last = 0;
  for (int d = 0; d < 5; ++d) last += (sizes[d] - 1) * strides[d];
  return last + 1;
}

template <typename T, typename Index>
int launch(const T* x, T* out, const LrnPoolGeometry& g, const LrnParams& p, int64_t total,
           cudaStream_t stream) {
  using acc_t = typename Traits<T>::acc;
  Shape<Index> s{Index(g.n), Index(g.c), Index(g.t), Index(g.h), Index(g.w), Index(g.ho()),
                 Index(g.wo()), {}, {}};
  for (int d = 0; d < 5; ++d) s.xs[d] = Index(g.x_stride[d]), s.os[d] = Index(g.out_stride[d]);
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = unsigned(blocks < (int64_t(1) << 30) ? blocks : (int64_t(1) << 30));
  const int before = int(p.size / 2), after = int((p.size - 1) / 2);
  const auto args = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, stream>>>(x, out, s, Index(total), before, after, acc_t(p.size),
                                          acc_t(p.alpha), acc_t(p.beta), acc_t(p.k),
                                          p.beta == 0.5);
  };
  if (g.x_stride[1] == 1 && g.c > 1)
    args(lrn_pool_kernel<T, Index, true>);
  else
    args(lrn_pool_kernel<T, Index, false>);
  return int(cudaGetLastError());
}

template <typename T>
int dispatch_index(const void* x, void* out, const LrnPoolGeometry& g, const LrnParams& p,
                   cudaStream_t stream) {
  const int64_t total = g.n * g.c * g.t * g.ho() * g.wo();
  if (total == 0) return int(cudaSuccess);
  const int64_t in_sizes[5] = {g.n, g.c, g.t, g.h, g.w};
  const int64_t out_sizes[5] = {g.n, g.c, g.t, g.ho(), g.wo()};
  const int64_t limit = int64_t(INT32_MAX) / 2;  // headroom for the stride-loop increment
  const bool fits32 = total < limit && span(in_sizes, g.x_stride) < limit &&
                      span(out_sizes, g.out_stride) < limit;
  const T* xt = static_cast<const T*>(x);
  T* ot = static_cast<T*>(out);
  return fits32 ? launch<T, int32_t>(xt, ot, g, p, total, stream)
                : launch<T, int64_t>(xt, ot, g, p, total, stream);
}

template <typename T, typename Index>
int launch_backward(const T* grad_out, const T* x, T* grad_x, const LrnPoolGeometry& g,
                    const int64_t gx_stride[5], const LrnParams& p, int64_t total,
                    cudaStream_t stream) {
  using acc_t = typename Traits<T>::acc;
  Shape<Index> s{Index(g.n), Index(g.c), Index(g.t), Index(g.h), Index(g.w), Index(g.ho()),
                 Index(g.wo()), {}, {}};
  for (int d = 0; d < 5; ++d) s.xs[d] = Index(g.x_stride[d]), s.os[d] = Index(g.out_stride[d]);
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = unsigned(blocks < (int64_t(1) << 30) ? blocks : (int64_t(1) << 30));
  const int before = int(p.size / 2), after = int((p.size - 1) / 2);
  const acc_t coef = acc_t(2 * p.alpha * p.beta / double(p.size));
  const auto args = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, stream>>>(
        grad_out, x, grad_x, s, Index(gx_stride[0]), Index(gx_stride[1]), Index(gx_stride[2]),
        Index(gx_stride[3]), Index(gx_stride[4]), Index(total), before, after, acc_t(p.size),
        acc_t(p.alpha), acc_t(p.beta), acc_t(p.k), coef, p.beta == 0.5);
  };
  if (g.x_stride[1] == 1 && g.c > 1)
    args(lrn_pool_backward_kernel<T, Index, true>);
  else
    args(lrn_pool_backward_kernel<T, Index, false>);
  return int(cudaGetLastError());
}

template <typename T>
int dispatch_backward_index(const void* grad_out, const void* x, void* grad_x,
                            const LrnPoolGeometry& g, const int64_t gx_stride[5],
                            const LrnParams& p, cudaStream_t stream) {
  const int64_t total = g.n * g.c * g.t * g.h * g.w;
  if (total == 0) return int(cudaSuccess);
  const int64_t in_sizes[5] = {g.n, g.c, g.t, g.h, g.w};
  const int64_t out_sizes[5] = {g.n, g.c, g.t, g.ho(), g.wo()};
  const int64_t limit = int64_t(INT32_MAX) / 2;  // headroom for the stride-loop increment
  const bool fits32 = total < limit && span(in_sizes, g.x_stride) < limit &&
                      span(out_sizes, g.out_stride) < limit && span(in_sizes, gx_stride) < limit;
  const T* got = static_cast<const T*>(grad_out);
  const T* xt = static_cast<const T*>(x);
  T* gxt = static_cast<T*>(grad_x);
  return fits32 ? launch_backward<T, int32_t>(got, xt, gxt, g, gx_stride, p, total, stream)
                : launch_backward<T, int64_t>(got, xt, gxt, g, gx_stride, p, total, stream);
}

}  // namespace

int lrn_pool_backward_cuda(const void* grad_out, const void* x, void* grad_x, DType dtype,
                           const LrnPoolGeometry& g, const int64_t grad_x_stride[5],
                           const LrnParams& p, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const auto run = [&](auto tag) {
    return dispatch_backward_index<decltype(tag)>(grad_out, x, grad_x, g, grad_x_stride, p, s);
  };
  switch (dtype) {
    case DType::f32: return run(float{});
    case DType::f64: return run(double{});
    case DType::f16: return run(__half{});
    case DType::bf16: return run(__nv_bfloat16{});
  }
  return int(cudaErrorInvalidValue);
}

int lrn_pool_cuda(const void* x, void* out, DType dtype, const LrnPoolGeometry& g,
                  const LrnParams& p, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::f32: return dispatch_index<float>(x, out, g, p, s);
    case DType::f64: return dispatch_index<double>(x, out, g, p, s);
    case DType::f16: return dispatch_index<__half>(x, out, g, p, s);
    case DType::bf16: return dispatch_index<__nv_bfloat16>(x, out, g, p, s);
  }
  return int(cudaErrorInvalidValue);
}

}  // namespace sportsfusion
