// PyTorch wrapper of the fused first stage: argument checks, output allocation and the CPU
// registrations of the schemas declared in csrc/sportsfusion.cpp. The checks, the views and the
// allocation are shared with the CUDA wrapper (fovea_context_torch_cuda.cpp), so both devices
// reject the same inputs with the same one-line messages (ValueError in Python, as the Triton
// ops and sportsfusion.ops raise).
//
// Input layout: clips whose pixels are packed within rows (channel stride 1, pixel stride 3) are
// read in place whatever their batch, frame and row strides (slices in B, T, H cost nothing); any
// other layout (e.g. a permuted channel-planar view) is first copied by .contiguous().
// Outputs: any strides, written in place; the functional ops allocate contiguous NCTHW or
// channels_last_3d, as sportsfusion/ops/fovea_context.py's fake kernels do.
#include <algorithm>

#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "fovea_context/fovea_context.h"
#include "fovea_context/fovea_context_torch.h"

namespace sportsfusion {

constexpr int64_t kMaxSide = int64_t(1) << 24;  // the tiling's int arithmetic (3 * W < 2^31)

namespace {

void check_clips(const at::Tensor& clips, const char* op) {
  TORCH_CHECK_VALUE(clips.scalar_type() == at::kByte && clips.dim() == 5 && clips.size(4) == 3 &&
                        clips.layout() == at::kStrided,
                    op, ": clips must be a dense uint8 tensor (B, T, H, W, 3), got ",
                    clips.scalar_type(), " ", clips.sizes());
  TORCH_CHECK_VALUE(clips.size(2) < kMaxSide && clips.size(3) < kMaxSide, op,
                    ": frames must be under ", kMaxSide, " pixels a side, got ", clips.sizes());
}

// Clips as they are when their pixels are packed within rows, otherwise a contiguous copy.
at::Tensor packed(const at::Tensor& clips) {
  const bool ok = clips.stride(4) == 1 && (clips.stride(3) == 3 || clips.size(3) == 1);
  return ok ? clips : clips.contiguous();
}

// One output (B, 3, T, h, w) against clips.
void check_out(const at::Tensor& out, const char* name, const at::Tensor& clips, int64_t h,
               int64_t w, const char* op) {
  const std::vector<int64_t> want{clips.size(0), 3, clips.size(1), h, w};
  const auto dtype = out.scalar_type();
  const bool dtype_ok = dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf;
  TORCH_CHECK_VALUE(dtype_ok && out.sizes() == at::IntArrayRef(want) &&
                        out.layout() == at::kStrided,
                    op, ": ", name, " must be a dense float32/bfloat16/float16 tensor ",
                    at::IntArrayRef(want), ", got ", dtype, " ", out.sizes());
  TORCH_CHECK_VALUE(out.device() == clips.device(), op, ": ", name,
                    " must be on clips' device ", clips.device(), ", got ", out.device());
  at::assert_no_internal_overlap(out);  // e.g. an expanded tensor: elements written twice
  at::assert_no_overlap(out, clips);
}

}  // namespace

// Declared in fovea_context_torch.h, shared with fovea_context_torch_cuda.cpp: the checks of each
// out op, returning the clips to read (packed()), the kernels' views, and the functional ops'
// allocation.
at::Tensor fovea_context_prepare(const at::Tensor& clips, const at::Tensor& fovea,
                                 const at::Tensor& context) {
  const char* op = "fovea_context_out";
  check_clips(clips, op);
  const int64_t h = clips.size(2) / 2, w = clips.size(3) / 2;
  check_out(fovea, "fovea", clips, h, w, op);
  check_out(context, "context", clips, h, w, op);
  TORCH_CHECK_VALUE(fovea.scalar_type() == context.scalar_type(), op,
                    ": fovea and context must have one dtype, got ", fovea.scalar_type(), " and ",
                    context.scalar_type());
  at::assert_no_overlap(fovea, context);
  return packed(clips);
}

at::Tensor clip_to_input_prepare(const at::Tensor& clips, const at::Tensor& out) {
  const char* op = "clip_to_input_out";
  check_clips(clips, op);
  check_out(out, "out", clips, clips.size(2), clips.size(3), op);
  return packed(clips);
}

ClipView fovea_context_clip_view(const at::Tensor& packed) {
  return ClipView{packed.const_data_ptr<uint8_t>(),
                  packed.size(0),
                  packed.size(1),
                  packed.size(2),
                  packed.size(3),
                  packed.stride(0),
                  packed.stride(1),
                  packed.stride(2)};
}

OutputView<void> fovea_context_output_view(const at::Tensor& out) {
  OutputView<void> view{out.mutable_data_ptr(), {}};
  for (int i = 0; i < 5; ++i) view.stride[i] = out.stride(i);
  return view;
}

// An output for the functional ops: (B, 3, T, H, W), or the halves for the fovea/context.
at::Tensor fovea_context_empty(const at::Tensor& clips, bool halves, at::ScalarType dtype,
                               bool channels_last, const char* op) {
  check_clips(clips, op);
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf, op,
                    ": dtype must be float32, bfloat16 or float16, got ", dtype);
  const int64_t h = clips.size(2) / (halves ? 2 : 1), w = clips.size(3) / (halves ? 2 : 1);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast3d
                                    : at::MemoryFormat::Contiguous;
  return at::empty({clips.size(0), 3, clips.size(1), h, w}, clips.options().dtype(dtype),
                   format);
}

namespace {

// Frames per parallel chunk: at least 32 KB of input (ATen's grain for elementwise ops), so tiny
// frames are not spread one per thread.
int64_t grain(const ClipView& v) {
  const int64_t frame_bytes = std::max<int64_t>(1, 3 * v.height * v.width);
  return std::max<int64_t>(1, 32768 / frame_bytes);
}

template <typename T>
void fovea_context_run(const ClipView& in, const at::Tensor& fovea, const at::Tensor& context) {
  const auto f = typed<T>(fovea_context_output_view(fovea));
  const auto c = typed<T>(fovea_context_output_view(context));
  at::parallel_for(0, in.units(), grain(in), [&](int64_t begin, int64_t end) {
    fovea_context_cpu(in, f, c, begin, end);
  });
}

template <typename T>
void clip_to_input_run(const ClipView& in, const at::Tensor& out) {
  const auto o = typed<T>(fovea_context_output_view(out));
  at::parallel_for(0, in.units(), grain(in), [&](int64_t begin, int64_t end) {
    clip_to_input_cpu(in, o, begin, end);
  });
}

void fovea_context_out_cpu(const at::Tensor& clips, const at::Tensor& fovea,
                           const at::Tensor& context) {
  const at::Tensor in = fovea_context_prepare(clips, fovea, context);
  const ClipView view = fovea_context_clip_view(in);
  switch (fovea.scalar_type()) {
    case at::kFloat: return fovea_context_run<float>(view, fovea, context);
    case at::kBFloat16: return fovea_context_run<bf16>(view, fovea, context);
    default: return fovea_context_run<fp16>(view, fovea, context);  // checked: kHalf
  }
}

std::tuple<at::Tensor, at::Tensor> fovea_context_functional_cpu(const at::Tensor& clips,
                                                                at::ScalarType dtype,
                                                                bool channels_last) {
  at::Tensor fovea = fovea_context_empty(clips, true, dtype, channels_last, "fovea_context");
  at::Tensor context = fovea_context_empty(clips, true, dtype, channels_last, "fovea_context");
  fovea_context_out_cpu(clips, fovea, context);
  return {fovea, context};
}

void clip_to_input_out_cpu(const at::Tensor& clips, const at::Tensor& out) {
  const at::Tensor in = clip_to_input_prepare(clips, out);
  const ClipView view = fovea_context_clip_view(in);
  switch (out.scalar_type()) {
    case at::kFloat: return clip_to_input_run<float>(view, out);
    case at::kBFloat16: return clip_to_input_run<bf16>(view, out);
    default: return clip_to_input_run<fp16>(view, out);
  }
}

at::Tensor clip_to_input_functional_cpu(const at::Tensor& clips, at::ScalarType dtype,
                                        bool channels_last) {
  at::Tensor out = fovea_context_empty(clips, false, dtype, channels_last, "clip_to_input");
  clip_to_input_out_cpu(clips, out);
  return out;
}

}  // namespace
}  // namespace sportsfusion

TORCH_LIBRARY_IMPL(sportsfusion, CPU, m) {
  m.impl("fovea_context_out", &sportsfusion::fovea_context_out_cpu);
  m.impl("fovea_context", &sportsfusion::fovea_context_functional_cpu);
  m.impl("clip_to_input_out", &sportsfusion::clip_to_input_out_cpu);
  m.impl("clip_to_input", &sportsfusion::clip_to_input_functional_cpu);
}
