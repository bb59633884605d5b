// The Python module behind `import sportsfusion._C`, and the one place the ops' schemas are
// declared. Each op's kernels register under their dispatch keys from csrc/<op>/<op>_torch.cpp
// (CPU) and csrc/<op>/<op>_torch_cuda.cpp (CUDA); Python reaches them as torch.ops.sportsfusion.*.
//
// Every op comes as an out= variant that writes into tensors the caller allocated (tests poison
// them to prove every element is written) and a functional variant that allocates its outputs.
#include <torch/extension.h>

TORCH_LIBRARY(sportsfusion, m) {
  // uint8 clips (B, T, H, W, 3) -> fovea and context, each (B, 3, T, H/2, W/2) of any strides
  // (contiguous or channels_last_3d) and of dtype float32, bfloat16 or float16.
  m.def("fovea_context_out(Tensor clips, Tensor(a!) fovea, Tensor(b!) context) -> ()");
  m.def("fovea_context(Tensor clips, ScalarType dtype, bool channels_last) -> (Tensor, Tensor)");
  // uint8 clips (B, T, H, W, 3) -> the full frame (B, 3, T, H, W), normalised the same way.
  m.def("clip_to_input_out(Tensor clips, Tensor(a!) out) -> ()");
  m.def("clip_to_input(Tensor clips, ScalarType dtype, bool channels_last) -> Tensor");
  // Local response normalisation across channels, then 2x2/2 max pooling (ceil mode) over H, W:
  // x (N, C, T, H, W) or (N, C, H, W) -> (N, C, [T,] ceil(H/2), ceil(W/2)), x's dtype.
  m.def("lrn_pool_out(Tensor x, int size, float alpha, float beta, float k, Tensor(a!) out) -> ()");
  m.def("lrn_pool(Tensor x, int size, float alpha, float beta, float k) -> Tensor");
  // Its analytic backward: grad_x of x's shape (grad_out routed to each window's argmax).
  m.def("lrn_pool_backward_out(Tensor grad_out, Tensor x, int size, float alpha, float beta, "
        "float k, Tensor(a!) grad_x) -> ()");
  m.def("lrn_pool_backward(Tensor grad_out, Tensor x, int size, float alpha, float beta, "
        "float k) -> Tensor");
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "SportsFusion native ops (registered as torch.ops.sportsfusion.*)";
  m.def(
      "with_cuda",
      []() {
#ifdef SPORTSFUSION_WITH_CUDA
        return true;
#else
        return false;
#endif
      },
      "whether the CUDA kernels were compiled into this build");
}
