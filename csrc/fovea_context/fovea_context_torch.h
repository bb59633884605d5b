// The PyTorch side of the fused first stage shared by its two wrappers: defined in
// fovea_context_torch.cpp (with the CPU registrations), used by fovea_context_torch_cuda.cpp too,
// so both devices check, view and allocate alike.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include "fovea_context/fovea_context.h"

namespace sportsfusion {

// The checks of each out op (dtypes, shapes, devices, overlap), returning the clips to read:
// themselves when their pixels are packed within rows, otherwise a contiguous copy.
at::Tensor fovea_context_prepare(const at::Tensor& clips, const at::Tensor& fovea,
                                 const at::Tensor& context);
at::Tensor clip_to_input_prepare(const at::Tensor& clips, const at::Tensor& out);

// The kernels' views of the clips (as prepare returned them) and of an output (B, 3, T, h, w).
ClipView fovea_context_clip_view(const at::Tensor& packed);
OutputView<void> fovea_context_output_view(const at::Tensor& out);

// An output for the functional ops: (B, 3, T, H, W), or the halves for the fovea/context;
// contiguous NCTHW or channels_last_3d.
at::Tensor fovea_context_empty(const at::Tensor& clips, bool halves, at::ScalarType dtype,
                               bool channels_last, const char* op);

}  // namespace sportsfusion
