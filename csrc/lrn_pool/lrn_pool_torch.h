// The PyTorch side of LRN + max pool shared by its two wrappers: defined in lrn_pool_torch.cpp
// (with the CPU registrations), used by lrn_pool_torch_cuda.cpp too, so both devices check and
// allocate alike.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "lrn_pool/lrn_pool.h"

namespace sportsfusion {

// Checks x, size and out (dtype, device, the pooled shape, overlap); returns the kernels'
// geometry.
LrnPoolGeometry lrn_pool_geometry(const at::Tensor& x, int64_t size, const at::Tensor& out);

// An output for x: the pooled shape, x's dtype and device, channels-last when x is channels-last
// (and not also plain contiguous), contiguous otherwise.
at::Tensor lrn_pool_empty_out(const at::Tensor& x, int64_t size);

// The backward's checks: grad_out has the pooled shape (any strides, broadcast ones included),
// grad_x has x's shape and no overlap. Returns the geometry with grad_out's strides as
// out_stride, and grad_x's strides in grad_x_stride.
LrnPoolGeometry lrn_pool_backward_geometry(const at::Tensor& grad_out, const at::Tensor& x,
                                           int64_t size, const at::Tensor& grad_x,
                                           int64_t grad_x_stride[5]);

// grad_x for x: x's shape, dtype, device and memory format rule.
at::Tensor lrn_pool_backward_empty(const at::Tensor& x, int64_t size);

}  // namespace sportsfusion
