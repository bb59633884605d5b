"""Triton kernels, installed as `sportsfusion.kernels`; each module is one op, named as in csrc/,
sportsfusion/ops/, tests/ and benchmarks/. Import them through `sportsfusion.ops`, which decides
whether Triton can run here (a CUDA device, or TRITON_INTERPRET=1 on the CPU)."""
