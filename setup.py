# Build decisions live here; metadata is in pyproject.toml.
#
# Folders with generic names (export/, kernels/) are installed inside the sportsfusion namespace,
# never as top-level packages that would clash with PyPI's own `export` or `kernels`.
#
# The native extension (csrc/ -> sportsfusion._C) is built with torch.utils.cpp_extension:
#   - csrc/sportsfusion.cpp (module + schemas) and, per op in csrc/<op>/, the torch-free CPU kernel
#     <op>_cpu.cpp and its torch wrapper <op>_torch.cpp, always;
#   - the CUDA kernel <op>_cuda.cu and its wrapper <op>_torch_cuda.cpp too when this torch is a CUDA
#     build and nvcc is found (torch.version.cuda and CUDA_HOME, not whether a GPU is present);
#   - sources are globbed, so a new op needs no edit here;
#   - SPORTSFUSION_SKIP_NATIVE=1 skips it: the package then runs on Triton or the reference path;
#     SPORTSFUSION_SKIP_CUDA=1 builds the CPU ops only (e.g. nvcc and torch disagree on CUDA major);
#     SPORTSFUSION_REQUIRE_CUDA=1 fails the build unless the CUDA kernels are built (the GPU check
#     sets it: a CUDA torch without nvcc would otherwise quietly build the CPU ops only);
#   - it always prints which it built (pip shows it with -v; sportsfusion._C.with_cuda() says too);
# It needs torch at build time, so install with `pip install --no-build-isolation` (an isolated
# build would download a second, multi-GB torch).
import glob
import os
import sys

from setuptools import find_packages, setup

NAMESPACED = {"sportsfusion.export": "export", "sportsfusion.kernels": "kernels"}


def native_extensions() -> tuple[list, dict]:
    if os.environ.get("SPORTSFUSION_SKIP_NATIVE", "0") not in ("", "0"):
        print("sportsfusion: SPORTSFUSION_SKIP_NATIVE is set, not building the native extension")
        return [], {}
    try:
        import torch
    except ImportError:  # an isolated build (pip without --no-build-isolation) has no torch
        print(
            "sportsfusion: torch is not importable in this build environment, so the native "
            "extension is not built (use pip install --no-build-isolation)"
        )
        return [], {}
    # cpp_extension guesses CUDA_HOME from `which nvcc`, wrong where nvcc is a wrapper script.
    if "CUDA_HOME" not in os.environ and "CUDA_PATH" not in os.environ:
        if os.path.isdir("/usr/local/cuda"):
            os.environ["CUDA_HOME"] = "/usr/local/cuda"
    from torch.utils import cpp_extension

    sources = ["csrc/sportsfusion.cpp"] + sorted(
        glob.glob("csrc/*/*_cpu.cpp") + glob.glob("csrc/*/*_torch.cpp")
    )
    cuda_sources = sorted(glob.glob("csrc/*/*_cuda.cu") + glob.glob("csrc/*/*_torch_cuda.cpp"))
    with_cuda = (
        torch.version.cuda is not None
        and cpp_extension.CUDA_HOME is not None
        and os.environ.get("SPORTSFUSION_SKIP_CUDA", "0") in ("", "0")
    )
    if not with_cuda:
        why = (
            "torch is a CPU build"
            if torch.version.cuda is None
            else "CUDA_HOME is not set and nvcc was not found"
            if cpp_extension.CUDA_HOME is None
            else "SPORTSFUSION_SKIP_CUDA is set"
        )
        if os.environ.get("SPORTSFUSION_REQUIRE_CUDA", "0") not in ("", "0"):
            sys.exit(f"sportsfusion: SPORTSFUSION_REQUIRE_CUDA is set but {why}: no CUDA kernels")
        if torch.version.cuda is not None:
            print(
                f"sportsfusion: WARNING: torch {torch.__version__} is a CUDA build but {why}: "
                "building the CPU ops only (set CUDA_HOME to build the CUDA kernels)"
            )
    if with_cuda and not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        # A build box without a GPU: torch cannot read the arch from a device; build for Hopper.
        os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
    # at::parallel_for runs its OpenMP loop in our translation units; Apple clang has no -fopenmp.
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    cxx = ["-O3", "-std=c++20", *openmp]  # the headers of torch >= 2.10 need C++20
    kwargs = dict(
        name="sportsfusion._C",
        include_dirs=[os.path.abspath("csrc")],
        extra_link_args=openmp,
        py_limited_api=False,
    )
    if with_cuda:
        ext = cpp_extension.CUDAExtension(
            sources=sources + cuda_sources,
            define_macros=[("SPORTSFUSION_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++20"]},
            **kwargs,
        )
    else:
        ext = cpp_extension.CppExtension(sources=sources, extra_compile_args={"cxx": cxx}, **kwargs)
    print(f"sportsfusion: building the native extension ({'CPU + CUDA' if with_cuda else 'CPU'})")
    return [ext], {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = native_extensions()

setup(
    packages=find_packages(include=["sportsfusion", "sportsfusion.*"]) + list(NAMESPACED),
    package_dir=NAMESPACED,
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
