// PyTorch wrapper of the CUDA LRN + max-pool kernel and its CUDA registrations (compiled only in
// CUDA builds, see setup.py). Checks and allocation are lrn_pool_torch.cpp's (lrn_pool_torch.h),
// so both devices reject the same inputs with the same messages; the launch goes on the current
// stream of x's device, so it orders correctly with the surrounding PyTorch work (and under
// torch.compile).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // at::cuda::getCurrentCUDAStream is this one, re-exported
#include <torch/library.h>

#include "lrn_pool/lrn_pool.h"
#include "lrn_pool/lrn_pool_torch.h"

namespace sportsfusion {

static DType lrn_pool_dtype(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kHalf: return DType::f16;
    case at::kBFloat16: return DType::bf16;
    default: TORCH_CHECK(false, "lrn_pool: unreachable dtype ", x.scalar_type());
  }
}

static void lrn_pool_out_cuda(const at::Tensor& x, int64_t size, double alpha, double beta,
                              double k, const at::Tensor& out) {
  TORCH_CHECK(x.is_cuda(), "lrn_pool_out (CUDA): x must be a CUDA tensor, got ", x.device());
  const LrnPoolGeometry g = lrn_pool_geometry(x, size, out);
  if (out.numel() == 0) return;
  const DType dtype = lrn_pool_dtype(x);
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const int err = lrn_pool_cuda(x.const_data_ptr(), out.mutable_data_ptr(), dtype, g,
                                LrnParams{size, alpha, beta, k}, stream);
  C10_CUDA_CHECK(static_cast<cudaError_t>(err));
}

static at::Tensor lrn_pool_cuda_functional(const at::Tensor& x, int64_t size, double alpha,
                                           double beta, double k) {
  at::Tensor out = lrn_pool_empty_out(x, size);
  lrn_pool_out_cuda(x, size, alpha, beta, k, out);
  return out;
}

static void lrn_pool_backward_out_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                       int64_t size, double alpha, double beta, double k,
                                       const at::Tensor& grad_x) {
  TORCH_CHECK(x.is_cuda(), "lrn_pool_backward_out (CUDA): x must be a CUDA tensor, got ",
              x.device());
  int64_t gx_stride[5];
  const LrnPoolGeometry g = lrn_pool_backward_geometry(grad_out, x, size, grad_x, gx_stride);
  if (grad_x.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const int err = lrn_pool_backward_cuda(grad_out.const_data_ptr(), x.const_data_ptr(),
                                         grad_x.mutable_data_ptr(), lrn_pool_dtype(x), g,
                                         gx_stride, LrnParams{size, alpha, beta, k}, stream);
  C10_CUDA_CHECK(static_cast<cudaError_t>(err));
}

static at::Tensor lrn_pool_backward_cuda_functional(const at::Tensor& grad_out,
                                                    const at::Tensor& x, int64_t size,
                                                    double alpha, double beta, double k) {
  at::Tensor grad_x = lrn_pool_backward_empty(x, size);
  lrn_pool_backward_out_cuda(grad_out, x, size, alpha, beta, k, grad_x);
  return grad_x;
}

}  // namespace sportsfusion

TORCH_LIBRARY_IMPL(sportsfusion, CUDA, m) {
  m.impl("lrn_pool_out", &sportsfusion::lrn_pool_out_cuda);
  m.impl("lrn_pool", &sportsfusion::lrn_pool_cuda_functional);
  m.impl("lrn_pool_backward_out", &sportsfusion::lrn_pool_backward_out_cuda);
  m.impl("lrn_pool_backward", &sportsfusion::lrn_pool_backward_cuda_functional);
}
