// PyTorch wrapper of the fused first stage's CUDA kernels and their CUDA registrations (compiled
// only in CUDA builds, see setup.py). Checks, views and allocation are fovea_context_torch.cpp's
// (fovea_context_torch.h), so both devices reject the same inputs with the same messages. The
// launch goes on the current stream of the clips' device, so it orders with the surrounding
// PyTorch work (and under torch.compile and CUDA graphs), with that device made current by a
// CUDAGuard.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // at::cuda::getCurrentCUDAStream is this one, re-exported
#include <torch/library.h>

#include "fovea_context/fovea_context.h"
#include "fovea_context/fovea_context_torch.h"

namespace sportsfusion {

namespace {

void fovea_context_out_cuda(const at::Tensor& clips, const at::Tensor& fovea,
                            const at::Tensor& context) {
  const at::Tensor in = fovea_context_prepare(clips, fovea, context);  // checks: all on one device
  const c10::cuda::CUDAGuard guard(clips.device());
  const ClipView view = fovea_context_clip_view(in);
  const OutputView<void> f = fovea_context_output_view(fovea);
  const OutputView<void> c = fovea_context_output_view(context);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(clips.device().index()).stream();
  cudaError_t err;
  switch (fovea.scalar_type()) {
    case at::kFloat:
      err = fovea_context_cuda(view, typed<float>(f), typed<float>(c), stream);
      break;
    case at::kBFloat16:
      err = fovea_context_cuda(view, typed<bf16>(f), typed<bf16>(c), stream);
      break;
    default:  // checked: kHalf
      err = fovea_context_cuda(view, typed<fp16>(f), typed<fp16>(c), stream);
  }
  C10_CUDA_CHECK(err);
}

std::tuple<at::Tensor, at::Tensor> fovea_context_functional_cuda(const at::Tensor& clips,
                                                                 at::ScalarType dtype,
                                                                 bool channels_last) {
  at::Tensor fovea = fovea_context_empty(clips, true, dtype, channels_last, "fovea_context");
  at::Tensor context = fovea_context_empty(clips, true, dtype, channels_last, "fovea_context");
  fovea_context_out_cuda(clips, fovea, context);
  return {fovea, context};
}

void clip_to_input_out_cuda(const at::Tensor& clips, const at::Tensor& out) {
  const at::Tensor in = clip_to_input_prepare(clips, out);  // checks: all on one device
  const c10::cuda::CUDAGuard guard(clips.device());
  const ClipView view = fovea_context_clip_view(in);
  const OutputView<void> o = fovea_context_output_view(out);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(clips.device().index()).stream();
  cudaError_t err;
  switch (out.scalar_type()) {
    case at::kFloat: err = clip_to_input_cuda(view, typed<float>(o), stream); break;
    case at::kBFloat16: err = clip_to_input_cuda(view, typed<bf16>(o), stream); break;
    default: err = clip_to_input_cuda(view, typed<fp16>(o), stream);
  }
  C10_CUDA_CHECK(err);
}

at::Tensor clip_to_input_functional_cuda(const at::Tensor& clips, at::ScalarType dtype,
                                         bool channels_last) {
  at::Tensor out = fovea_context_empty(clips, false, dtype, channels_last, "clip_to_input");
  clip_to_input_out_cuda(clips, out);
  return out;
}

}  // namespace
}  // namespace sportsfusion

TORCH_LIBRARY_IMPL(sportsfusion, CUDA, m) {
  m.impl("fovea_context_out", &sportsfusion::fovea_context_out_cuda);
  m.impl("fovea_context", &sportsfusion::fovea_context_functional_cuda);
  m.impl("clip_to_input_out", &sportsfusion::clip_to_input_out_cuda);
  m.impl("clip_to_input", &sportsfusion::clip_to_input_functional_cuda);
}
