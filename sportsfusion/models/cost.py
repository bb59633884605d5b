"""What a model costs per clip, counted rather than estimated."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from sportsfusion.ops import forced_impl


def multiply_adds_per_clip(model: torch.nn.Module, clips: torch.Tensor) -> int:
    """Multiply-adds of one forward pass per clip of `clips` (B, T, H, W, 3), counted by
    torch.utils.flop_counter on the reference path: the counter sees a Triton or native op as
    one opaque call with no FLOPs, so on the fused path it would count only the FC layers. The
    count is the network's, whatever path a benchmark then times."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter, forced_impl("reference"):
        model(clips[:1])
    return counter.get_total_flops() // 2
