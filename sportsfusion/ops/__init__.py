"""Hot operations, each with a plain-PyTorch reference and one dispatcher (`ops/_backends.py`).

The reference path is what ONNX export traces and what every fast path is checked against; the
fast paths (Triton kernels in sportsfusion.kernels, C++/CUDA ops in sportsfusion._C) plug into
the same dispatcher, and `auto` takes them in the order measured fastest per device
(_backends.PREFERENCE).
"""

from sportsfusion.ops._backends import IMPLS, active_impl, force_impl, forced_impl
from sportsfusion.ops.conv3d_fused import conv3d_fused
from sportsfusion.ops.fovea_context import (
    clip_to_input,
    clip_to_input_into,
    fovea_context,
    fovea_context_into,
)
from sportsfusion.ops.lrn_pool import lrn_pool

__all__ = [
    "IMPLS",
    "active_impl",
    "clip_to_input",
    "clip_to_input_into",
    "conv3d_fused",
    "force_impl",
    "forced_impl",
    "fovea_context",
    "fovea_context_into",
    "lrn_pool",
]
