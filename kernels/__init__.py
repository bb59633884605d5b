"""Triton kernels, installed as `sportsfusion.kernels`; each module is one op, named as in csrc/,
sportsfusion/ops/, tests/ and benchmarks/. Import them through `sportsfusion.ops`, which decides
whether Triton can run here (a CUDA device, or TRITON_INTERPRET=1 on the CPU)."""

import contextlib
import os

import torch

AUTOTUNE_SETS = ("full", "quick")


def autotune_configs(configs: list, quick: tuple[int, ...]) -> list:
    """The autotune candidates of one kernel: all of `configs`, or under SPORTSFUSION_AUTOTUNE=quick
    only those at the indices `quick`. Autotuning compiles every candidate for each new shape key
    (~0.65 s a config on one core, measured with sportsfusion.ops.aot), so a time-boxed run
    such as benchmarks/gpu_check.sh tunes over a few proven tiles instead of all of them. Read
    when a kernel module is imported."""
    choice = os.environ.get("SPORTSFUSION_AUTOTUNE", "full") or "full"
    if choice not in AUTOTUNE_SETS:
        raise ValueError(f"SPORTSFUSION_AUTOTUNE={choice!r}: expected one of {AUTOTUNE_SETS}")
    return configs if choice == "full" else [configs[i] for i in quick]


def device_guard(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Make `t`'s GPU current for a launch: Triton launches on the current CUDA device, not on
    its arguments', so tensors on cuda:1 while cuda:0 is current would run on the wrong GPU (the
    C++ ops take a CUDAGuard for the same reason). Nothing to do off CUDA (the interpreter)."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()
