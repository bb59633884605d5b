// The Python module behind `import sportsfusion._C`. The ops themselves register with the
// dispatcher from their own files (TORCH_LIBRARY_FRAGMENT(sportsfusion, ...) in csrc/torch/), so
// importing this module is what makes torch.ops.sportsfusion.* exist; pybind11 only says what
// was compiled in.
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "SportsFusion native ops (registered as torch.ops.sportsfusion.*)";
  m.def("with_cuda", []() {
#ifdef SPORTSFUSION_WITH_CUDA
    return true;
#else
    return false;
#endif
  }, "whether the CUDA kernels were compiled into this build");
}
