"""One network class for all fusion models, full-frame or multiresolution.

    clip (B, T, H, W, 3) uint8
      -> ClipStem: 1 stream (full frame) or 2 (fovea + context), each (B, 3, T, h, w)
      -> per stream its own tower (separate weights, paper-facts §1), run over `columns` frame
         groups that share it (late fusion: 2 single frames 15 apart)
      -> features concatenated -> Head (FC6, FC7, FC8) -> logits (B, classes)

Multiresolution towers drop their last pooling layer, so 89x89 streams end at 7x7x256 like the
178x178 full-frame tower (paper-facts §2).

A tower (single.py, early.py, late.py, slow.py) is what `Tower` below says; a new fusion model is
one such class plus its ModelSpec line in models/__init__.py.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from sportsfusion.models.layers import Head, init_weights, spatial_out
from sportsfusion.models.stem import ClipStem


class Tower(Protocol):
    """The contract VideoCNN relies on (one tower per stream, separate weights).

    frames_in     frames of one column it reads (late fusion: 1, run on 2 columns 15 apart)
    out_channels  channels of its last feature map (256 for the paper's towers)
    __init__(width, last_pool)  width: channel multiplier; last_pool: whether conv5 is pooled
                  (full frame True; multires False, so 89x89 streams end at 7x7 like 178x178)
    __call__(x)   (N, 3, frames_in, h, w) float -> (N, out_channels, 1, s, s) or (N, C, s, s),
                  s = layers.spatial_out(h, last_pool); VideoCNN flattens it
    """

    frames_in: int
    out_channels: int

    def __init__(self, width: float = 1.0, last_pool: bool = True) -> None: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class VideoCNN(nn.Module):
    def __init__(
        self,
        name: str,
        tower_cls: type[Tower],
        num_classes: int,
        *,
        frames_per_clip: int,
        frame_spacing: int,
        multires: bool = False,
        stream: str = "both",
        input_size: int = 178,
        width: float = 1.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.name = name
        self.frames_per_clip, self.frame_spacing = frames_per_clip, frame_spacing
        self.multires, self.stream, self.input_size = multires, stream, input_size
        self.width, self.dropout = width, dropout
        self.columns = frames_per_clip // tower_cls.frames_in  # late fusion: 2, otherwise 1
        self.stem = ClipStem(multires, stream)
        self.towers = nn.ModuleDict(
            {s: tower_cls(width=width, last_pool=not multires) for s in self.stem.names}
        )
        side = spatial_out(self.stem.stream_size(input_size), last_pool=not multires)
        if side < 1:
            raise ValueError(f"--input-size {input_size} is too small for the paper's towers")
        out_channels = next(iter(self.towers.values())).out_channels
        in_features = len(self.stem.names) * self.columns * out_channels * side * side
        self.head = Head(in_features, num_classes, width=width, dropout=dropout)
        init_weights(self)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, FC6 inputs)."""
        b, t, h, w, _ = clips.shape
        if t != self.frames_per_clip or h != self.input_size or w != self.input_size:
            raise ValueError(
                f"{self.name}: expected clips (B, {self.frames_per_clip}, {self.input_size}, "
                f"{self.input_size}, 3), got {tuple(clips.shape)}"
            )
        out = []
        for x, tower in zip(self.stem(clips), self.towers.values()):
            # (B, 3, T, h, w) -> (B*columns, 3, T/columns, h, w): columns share the tower
            c, hs, ws = x.shape[1], x.shape[3], x.shape[4]
            x = x.view(b, c, self.columns, t // self.columns, hs, ws).transpose(1, 2)
            x = x.reshape(b * self.columns, c, t // self.columns, hs, ws)
            out.append(tower(x).reshape(b, -1))  # columns side by side, then streams
        return torch.cat(out, dim=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(clips))


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Channels-last weights for cuDNN's fast path: 4-D convs and 5-D (3-D conv) kernels alike."""
    for p in model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return model
