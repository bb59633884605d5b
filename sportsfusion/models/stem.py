"""The network's first stage: the clip as a decoder produces it -> one input per stream.

Every loader (PyAV, DALI) and the exported model share this one definition of the input.
Streams (paper-facts §1): full frame; or multiresolution fovea (centre crop, full resolution)
and context (whole frame, 2x downsampled), either alone for the ablations.
"""

from __future__ import annotations

import torch
from torch import nn

from sportsfusion import ops

STREAMS = ("both", "fovea", "context")


def input_format(device: torch.device) -> tuple[torch.dtype, bool]:
    """(dtype, channels_last) of what the first convolution reads, so the fused stem writes it
    directly: on CUDA channels-last (as train.py lays the weights out), in the autocast dtype
    when autocast is on (the conv would cast to it anyway); elsewhere float32 contiguous, what
    CPU inference and ONNX export have always run."""
    if device.type != "cuda":
        return torch.float32, False
    if torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda"), True
    return torch.float32, True


class ClipStem(nn.Module):
    """(B, T, H, W, 3) uint8 -> list of (B, 3, T, h, w) float tensors, one per stream, in the
    dtype and layout of input_format()."""

    def __init__(self, multires: bool, stream: str = "both"):
        super().__init__()
        if stream not in STREAMS:
            raise ValueError(f"stream: expected one of {STREAMS}, got {stream!r}")
        if not multires and stream != "both":
            raise ValueError("stream='fovea'/'context' needs multires=True")
        self.multires, self.stream = multires, stream
        self.names = (
            ["frame"] if not multires else (["fovea", "context"] if stream == "both" else [stream])
        )

    def forward(self, clips: torch.Tensor) -> list[torch.Tensor]:
        dtype, channels_last = input_format(clips.device)
        if not self.multires:
            return [ops.clip_to_input(clips, dtype=dtype, channels_last=channels_last)]
        fovea, context = ops.fovea_context(clips, dtype=dtype, channels_last=channels_last)
        return [{"fovea": fovea, "context": context}[n] for n in self.names]

    def stream_size(self, input_size: int) -> int:
        return input_size if not self.multires else input_size // 2
