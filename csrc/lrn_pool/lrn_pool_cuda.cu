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
// Not yet measured: see benchmarks/bench_lrn_pool.py.
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
    Index n, c, t, ho, wo, r = i;
    if (kChannelsLast) {
      c = r % s.c, r /= s.c, wo = r % s.wo, r /= s.wo, ho = r % s.ho, r /= s.ho;
      t = r % s.t, n = r / s.t;
    } else {
      wo = r % s.wo, r /= s.wo, ho = r % s.ho, r /= s.ho, t = r % s.t, r /= s.t;
      c = r % s.c, n = r / s.c;
    }
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

}  // namespace

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
