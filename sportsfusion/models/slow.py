"""Slow fusion (paper-facts §1): a 10-frame clip fused gradually through time.

    conv1 3D, temporal extent 4, stride 2, valid  -> 4 temporal outputs   (then N, P)
    conv2 3D, temporal extent 2, stride 2         -> 2                    (then N, P)
    conv3 3D, temporal extent 2, stride 2         -> 1 (sees all 10 frames)
    conv4, conv5 purely spatial, P3, FC6, FC7, softmax

Weights are shared across the temporal columns, which is exactly what a Conv3d with these
temporal strides computes.
"""

from __future__ import annotations

import torch
from torch import nn

from sportsfusion.models.layers import conv2d_block, conv3d_block, scaled

SLOW_FRAMES = 10
TEMPORAL = {"conv1": (4, 2), "conv2": (2, 2), "conv3": (2, 2)}  # (extent, stride) per layer


class SlowFusionTower(nn.Module):
    """(N, 3, 10, H, W) -> (N, 256, 7, 7)."""

    frames_in = SLOW_FRAMES

    def __init__(self, width: float = 1.0, last_pool: bool = True):
        super().__init__()
        c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
        (t1, s1), (t2, s2), (t3, s3) = TEMPORAL.values()
        self.conv1 = conv3d_block(3, c[0], (t1, 11, 11), (s1, 3, 3), 0, norm=True, pool=True)
        self.conv2 = conv3d_block(
            c[0], c[1], (t2, 5, 5), (s2, 1, 1), (0, 2, 2), norm=True, pool=True
        )
        self.conv3 = conv3d_block(c[1], c[2], (t3, 3, 3), (s3, 1, 1), (0, 1, 1))
        self.conv4 = conv2d_block(c[2], c[3], 3, padding=1)
        self.conv5 = conv2d_block(c[3], c[4], 3, padding=1, pool=last_pool)
        self.out_channels = c[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3(self.conv2(self.conv1(x)))  # (N, 384, 1, h, w): time fully fused
        return self.conv5(self.conv4(x.squeeze(2)))
