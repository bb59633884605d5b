// PyTorch wrapper of the CPU LRN + max-pool kernel: argument checks, output allocation, and the
// CPU registrations of the schemas declared in csrc/sportsfusion.cpp. The checks and the
// allocation are shared with the CUDA wrapper (lrn_pool_torch_cuda.cpp): lrn_pool_torch.h.
//
// Layout: any strides are read and written as they are (no copies). The functional op's output
// is channels-last when x is channels-last (and not also plain contiguous), contiguous otherwise;
// sportsfusion/ops/lrn_pool.py's fake kernel applies the same rule.
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "lrn_pool/lrn_pool.h"
#include "lrn_pool/lrn_pool_torch.h"

namespace sportsfusion {

static at::MemoryFormat lrn_pool_memory_format(const at::Tensor& x) {
  const auto channels_last = x.dim() == 5 ? at::MemoryFormat::ChannelsLast3d
                                          : at::MemoryFormat::ChannelsLast;
  return !x.is_contiguous() && x.is_contiguous(channels_last) ? channels_last
                                                                : at::MemoryFormat::Contiguous;
}

static std::vector<int64_t> lrn_pool_out_shape(const at::Tensor& x) {
  auto shape = x.sizes().vec();
  const int64_t d = x.dim();
  shape[d - 2] = (shape[d - 2] + 1) / 2;  // ceil mode: the last window may overhang
  shape[d - 1] = (shape[d - 1] + 1) / 2;
  return shape;
}

static void lrn_pool_check_x(const at::Tensor& x, int64_t size) {
  TORCH_CHECK_VALUE(x.dim() == 4 || x.dim() == 5,
                    "lrn_pool: x must be (N, C, T, H, W) or (N, C, H, W), got a tensor of shape ",
                    x.sizes());
  const auto dtype = x.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                        dtype == at::kBFloat16,
                    "lrn_pool: x must be float32, float64, float16 or bfloat16, got ", dtype);
  TORCH_CHECK_VALUE(x.layout() == at::kStrided, "lrn_pool: x must be a dense (strided) tensor");
  TORCH_CHECK_VALUE(size >= 1, "lrn_pool: size must be >= 1, got ", size);
}

// Checks x, size and out; returns the kernels' geometry. Used by both wrappers.
LrnPoolGeometry lrn_pool_geometry(const at::Tensor& x, int64_t size, const at::Tensor& out) {
  lrn_pool_check_x(x, size);
  TORCH_CHECK_VALUE(out.scalar_type() == x.scalar_type(), "lrn_pool_out: out must have x's dtype ",
                    x.scalar_type(), ", got ", out.scalar_type());
  TORCH_CHECK_VALUE(out.device() == x.device(), "lrn_pool_out: out must be on x's device ",
                    x.device(), ", got ", out.device());
  const auto want_vec = lrn_pool_out_shape(x);
  const at::IntArrayRef want(want_vec);
  TORCH_CHECK_VALUE(out.sizes() == want, "lrn_pool_out: out must have shape ", want,
                    " for x of shape ", x.sizes(), " (ceil(H/2), ceil(W/2)), got ", out.sizes());
  TORCH_CHECK_VALUE(out.layout() == at::kStrided,
                    "lrn_pool_out: out must be a dense (strided) tensor");
  at::assert_no_internal_overlap(out);
  at::assert_no_overlap(out, x);

  LrnPoolGeometry g{};
  const bool video = x.dim() == 5;  // (N, C, T, H, W); images get T = 1 with a zero stride
  const int64_t d = x.dim();
  g.n = x.size(0), g.c = x.size(1), g.t = video ? x.size(2) : 1;
  g.h = x.size(d - 2), g.w = x.size(d - 1);
  const int64_t dims[5] = {0, 1, 2, d - 2, d - 1};
  for (int i = 0; i < 5; ++i) {
    const bool absent = i == 2 && !video;
    g.x_stride[i] = absent ? 0 : x.stride(dims[i]);
    g.out_stride[i] = absent ? 0 : out.stride(dims[i]);
  }
  return g;
}

// Element strides (n, c, t, h, w) of a 4-D or 5-D tensor; a 4-D one gets a zero t stride.
static void lrn_pool_strides(const at::Tensor& t, int64_t stride[5]) {
  const int64_t d = t.dim();
  const int64_t dims[5] = {0, 1, 2, d - 2, d - 1};
  for (int i = 0; i < 5; ++i) stride[i] = i == 2 && d == 4 ? 0 : t.stride(dims[i]);
}

// The backward's checks: grad_out has the pooled shape (any strides, broadcast ones included, as
// autograd may pass), grad_x has x's shape and no overlap. Returns the geometry with grad_out's
// strides as out_stride, and grad_x's strides in grad_x_stride. Used by both wrappers.
LrnPoolGeometry lrn_pool_backward_geometry(const at::Tensor& grad_out, const at::Tensor& x,
                                           int64_t size, const at::Tensor& grad_x,
                                           int64_t grad_x_stride[5]) {
  lrn_pool_check_x(x, size);
  for (const auto* t : {&grad_out, &grad_x}) {
    const char* name = t == &grad_out ? "grad_out" : "grad_x";
    TORCH_CHECK_VALUE(t->scalar_type() == x.scalar_type(), "lrn_pool_backward: ", name,
                      " must have x's dtype ", x.scalar_type(), ", got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->device() == x.device(), "lrn_pool_backward: ", name,
                      " must be on x's device ", x.device(), ", got ", t->device());
    TORCH_CHECK_VALUE(t->layout() == at::kStrided, "lrn_pool_backward: ", name,
                      " must be a dense (strided) tensor");
  }
  const auto want_vec = lrn_pool_out_shape(x);
  const at::IntArrayRef want(want_vec);
  TORCH_CHECK_VALUE(grad_out.sizes() == want, "lrn_pool_backward: grad_out must have shape ", want,
                    " for x of shape ", x.sizes(), ", got ", grad_out.sizes());
  TORCH_CHECK_VALUE(grad_x.sizes() == x.sizes(), "lrn_pool_backward: grad_x must have x's shape ",
                    x.sizes(), ", got ", grad_x.sizes());
  at::assert_no_internal_overlap(grad_x);
  at::assert_no_overlap(grad_x, x);
  at::assert_no_overlap(grad_x, grad_out);

  LrnPoolGeometry g{};
  const int64_t d = x.dim();
  g.n = x.size(0), g.c = x.size(1), g.t = d == 5 ? x.size(2) : 1;
  g.h = x.size(d - 2), g.w = x.size(d - 1);
  lrn_pool_strides(x, g.x_stride);
  lrn_pool_strides(grad_out, g.out_stride);
  lrn_pool_strides(grad_x, grad_x_stride);
  return g;
}

// grad_x for x: x's shape, dtype, device and memory format rule.
at::Tensor lrn_pool_backward_empty(const at::Tensor& x, int64_t size) {
  lrn_pool_check_x(x, size);
  return at::empty(x.sizes(), x.options().memory_format(lrn_pool_memory_format(x)));
}

// An output for x: the pooled shape, x's dtype and device, the memory format rule above.
at::Tensor lrn_pool_empty_out(const at::Tensor& x, int64_t size) {
  lrn_pool_check_x(x, size);
  return at::empty(lrn_pool_out_shape(x), x.options().memory_format(lrn_pool_memory_format(x)));
}

static void lrn_pool_out_cpu(const at::Tensor& x, int64_t size, double alpha, double beta,
                             double k, const at::Tensor& out) {
  TORCH_CHECK(x.device().is_cpu(), "lrn_pool_out (CPU): x must be a CPU tensor, got ", x.device());
  const LrnPoolGeometry g = lrn_pool_geometry(x, size, out);
  const LrnParams p{size, alpha, beta, k};
  if (out.numel() == 0) return;
  // A row (n, t, ho) reads 2 * C * W inputs; aim for at least 32768 (ATen's usual grain) a task.
  const int64_t grain = std::max<int64_t>(1, 32768 / (2 * g.c * g.w));
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* xp = reinterpret_cast<const T*>(x.const_data_ptr());
    T* op = reinterpret_cast<T*>(out.mutable_data_ptr());
    at::parallel_for(0, g.rows(), grain,
                     [&](int64_t begin, int64_t end) { lrn_pool_cpu(xp, op, g, p, begin, end); });
  };
  switch (x.scalar_type()) {
    case at::kFloat: return run(float{});
    case at::kDouble: return run(double{});
    case at::kHalf: return run(fp16{});  // bit-compatible with at::Half
    case at::kBFloat16: return run(bf16{});
    default: TORCH_CHECK(false, "lrn_pool: unreachable dtype ", x.scalar_type());
  }
}

static at::Tensor lrn_pool_cpu_functional(const at::Tensor& x, int64_t size, double alpha,
                                          double beta, double k) {
  at::Tensor out = lrn_pool_empty_out(x, size);
  lrn_pool_out_cpu(x, size, alpha, beta, k, out);
  return out;
}

static void lrn_pool_backward_out_cpu(const at::Tensor& grad_out, const at::Tensor& x,
                                      int64_t size, double alpha, double beta, double k,
                                      const at::Tensor& grad_x) {
  TORCH_CHECK(x.device().is_cpu(), "lrn_pool_backward_out (CPU): x must be a CPU tensor, got ",
              x.device());
  int64_t gx_stride[5];
  const LrnPoolGeometry g = lrn_pool_backward_geometry(grad_out, x, size, grad_x, gx_stride);
  const LrnParams p{size, alpha, beta, k};
  if (grad_x.numel() == 0) return;
  // A row (n, t, ho) reads 2 * C * W inputs and writes as many; the forward's grain.
  const int64_t grain = std::max<int64_t>(1, 32768 / (2 * g.c * g.w));
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* gop = reinterpret_cast<const T*>(grad_out.const_data_ptr());
    const T* xp = reinterpret_cast<const T*>(x.const_data_ptr());
    T* gxp = reinterpret_cast<T*>(grad_x.mutable_data_ptr());
    at::parallel_for(0, g.rows(), grain, [&](int64_t begin, int64_t end) {
      lrn_pool_backward_cpu(gop, xp, gxp, g, gx_stride, p, begin, end);
    });
  };
  switch (x.scalar_type()) {
    case at::kFloat: return run(float{});
    case at::kDouble: return run(double{});
    case at::kHalf: return run(fp16{});
    case at::kBFloat16: return run(bf16{});
    default: TORCH_CHECK(false, "lrn_pool_backward: unreachable dtype ", x.scalar_type());
  }
}

static at::Tensor lrn_pool_backward_cpu_functional(const at::Tensor& grad_out, const at::Tensor& x,
                                                   int64_t size, double alpha, double beta,
                                                   double k) {
  at::Tensor grad_x = lrn_pool_backward_empty(x, size);
  lrn_pool_backward_out_cpu(grad_out, x, size, alpha, beta, k, grad_x);
  return grad_x;
}

}  // namespace sportsfusion

TORCH_LIBRARY_IMPL(sportsfusion, CPU, m) {
  m.impl("lrn_pool_out", &sportsfusion::lrn_pool_out_cpu);
  m.impl("lrn_pool", &sportsfusion::lrn_pool_cpu_functional);
  m.impl("lrn_pool_backward_out", &sportsfusion::lrn_pool_backward_out_cpu);
  m.impl("lrn_pool_backward", &sportsfusion::lrn_pool_backward_cpu_functional);
}
