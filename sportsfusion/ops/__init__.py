"""Hot operations, each with a plain-PyTorch reference and one dispatcher (`ops/_backends.py`).

The reference path is what CPU users and ONNX export run; fast paths (Triton, C++/CUDA) plug into
the same dispatcher when they are built (issues 4 and 5).
"""

from sportsfusion.ops._backends import IMPLS, active_impl, force_impl
from sportsfusion.ops.fovea_context import clip_to_input, fovea_context

__all__ = ["IMPLS", "active_impl", "clip_to_input", "force_impl", "fovea_context"]
