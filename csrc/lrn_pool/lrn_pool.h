// Fused local response normalisation (across channels) + 2x2/2 max pooling (ceil mode) over
// H, W: the "C-N-P" tail of the paper's conv1 and conv2 (Krizhevsky's LRN, then pooling).
//
//   b[c]   = a[c] / (k + alpha / size * sum_{c' = c - size/2}^{c + (size-1)/2} a[c']^2) ^ beta
//   out    = max of b over each 2x2 window of (h, w); windows overhanging the edge take the max
//            over their valid elements, so out is (N, C, T, ceil(H/2), ceil(W/2))
//
// The channel window is PyTorch's (nn.LocalResponseNorm pads size/2 channels before and
// (size-1)/2 after, and divides by size whatever the clipping). Compute is in fp32 (fp64 for
// double inputs), rounded once at the store.
//
// Bandwidth bound: the unfused reference reads and writes several full-size tensors (squares,
// window sums, divisor, LRN output) before pooling; the fused kernels read the input once and
// write the pooled output once: N*C*T*H*W*bytes in + N*C*T*ceil(H/2)*ceil(W/2)*bytes out.
//
// Torch-free: raw pointers, sizes and element strides, so the CPU kernel builds and is tested
// without PyTorch (CMakeLists.txt, csrc/tests/test_lrn_pool.cpp). The wrappers in
// lrn_pool_torch*.cpp adapt at::Tensor to these calls.
#pragma once

#include <cstdint>

#include "half16.h"  // bf16, fp16: the CPU kernel's 16-bit types and their general conversions

namespace sportsfusion {

struct LrnParams {
  int64_t size;  // channels in the window (5 in the paper)
  double alpha;  // PyTorch's alpha: Krizhevsky's alpha times size (5e-4)
  double beta;   // exponent (0.5)
  double k;      // additive constant (2)
};

// Sizes and element strides, always in (n, c, t, h, w) order: a 4-D (N, C, H, W) tensor is
// passed as t = 1 with a t stride of 0. Any strides work; contiguous and channels-last are the
// layouts that are fast.
struct LrnPoolGeometry {
  int64_t n, c, t, h, w;  // input sizes
  int64_t x_stride[5];    // input strides (n, c, t, h, w)
  int64_t out_stride[5];  // output strides (n, c, t, ho, wo)

  int64_t ho() const { return (h + 1) / 2; }
  int64_t wo() const { return (w + 1) / 2; }
  // The CPU kernel's unit of parallel work: one output row (n, t, ho), all columns and channels.
  int64_t rows() const { return n * t * ho(); }
};

// CPU kernel: writes the output rows [row_begin, row_end) (row = (n * t + t_i) * ho + ho_i).
// Disjoint ranges may run in parallel (the torch wrapper uses at::parallel_for).
// Instantiated for float, double, fp16 and bf16 (half16.h; loads and stores round as
// fp16_to_float / float_to_fp16 and bf16_to_float / float_to_bf16).
template <typename T>
void lrn_pool_cpu(const T* x, T* out, const LrnPoolGeometry& g, const LrnParams& p,
                  int64_t row_begin, int64_t row_end);

// Backward, analytic: grad_x (x's sizes, strides grad_x_stride) from grad_out (the output's
// sizes, strides g.out_stride). With s_c = d_c^-beta, the window's argmax routes grad_out to
// grad_b (first index in row-major scan order, NaN winning, as PyTorch's max pooling), then
//   grad_a[j] = grad_b[j] s_j - 2 alpha beta / size a_j sum_{c: j in W(c)} grad_b[c] a_c s_c / d_c
// For the 16-bit types the argmax compares b rounded to T, as PyTorch pools the rounded tensor.
// Reads x and grad_out once, writes grad_x once: (N*C*T*H*W * 2 + N*C*T*ceil(H/2)*ceil(W/2))
// elements. Writes the grad_x elements of output rows [row_begin, row_end) (both input rows of
// each); disjoint ranges may run in parallel. Instantiated like lrn_pool_cpu.
template <typename T>
void lrn_pool_backward_cpu(const T* grad_out, const T* x, T* grad_x, const LrnPoolGeometry& g,
                           const int64_t grad_x_stride[5], const LrnParams& p, int64_t row_begin,
                           int64_t row_end);

// CUDA kernel launcher (lrn_pool_cuda.cu), only in CUDA builds. `stream` is a cudaStream_t
// (void* keeps this header free of CUDA headers). Returns the cudaError_t of the launch (0 on
// success). x and out are device pointers of `dtype`.
enum class DType { f32, f64, f16, bf16 };
int lrn_pool_cuda(const void* x, void* out, DType dtype, const LrnPoolGeometry& g,
                  const LrnParams& p, void* stream);
// The backward's launcher: grad_out, x and grad_x as in lrn_pool_backward_cpu.
int lrn_pool_backward_cuda(const void* grad_out, const void* x, void* grad_x, DType dtype,
                           const LrnPoolGeometry& g, const int64_t grad_x_stride[5],
                           const LrnParams& p, void* stream);

}  // namespace sportsfusion
