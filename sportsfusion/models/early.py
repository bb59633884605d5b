"""Early fusion (paper-facts §1): only conv1 changes, to filters 11x11x3xT spanning all T=10
frames at once (about 1/3 s); the rest is the single-frame network.

conv1 is a Conv3d with temporal extent 10 (output time 1), so it shares the spatio-temporal
convolution path with slow fusion (issue 5's kernels cover both).
"""

from __future__ import annotations

import torch
from torch import nn

from sportsfusion.models.layers import conv2d_block, conv3d_block, scaled

EARLY_FRAMES = 10


class EarlyFusionTower(nn.Module):
    """(N, 3, 10, H, W) -> (N, 256, 7, 7)."""

    frames_in = EARLY_FRAMES

    def __init__(self, width: float = 1.0, last_pool: bool = True):
        super().__init__()
        c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
        self.conv1 = conv3d_block(
            3, c[0], (EARLY_FRAMES, 11, 11), (1, 3, 3), 0, norm=True, pool=True
        )
        self.conv2 = conv2d_block(c[0], c[1], 5, padding=2, norm=True, pool=True)
        self.conv3 = conv2d_block(c[1], c[2], 3, padding=1)
        self.conv4 = conv2d_block(c[2], c[3], 3, padding=1)
        self.conv5 = conv2d_block(c[3], c[4], 3, padding=1, pool=last_pool)
        self.out_channels = c[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).squeeze(2)  # (N, 96, 1, h, w) -> (N, 96, h, w)
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))
