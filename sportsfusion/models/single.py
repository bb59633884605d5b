"""Single-frame network (paper-facts §1):

    C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)-softmax

One frame per clip. Late fusion reuses this tower on two frames.
"""

from __future__ import annotations

import torch
from torch import nn

from sportsfusion.models.layers import conv2d_block, scaled


class SingleFrameTower(nn.Module):
    """conv1..conv5, plus P3 unless a multiresolution stream drops it.

    (N, 3, 1, H, W) -> (N, 256, 7, 7)
    """

    frames_in = 1

    def __init__(self, width: float = 1.0, last_pool: bool = True):
        super().__init__()
        c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
        self.conv1 = conv2d_block(3, c[0], 11, stride=3, norm=True, pool=True)
        self.conv2 = conv2d_block(c[0], c[1], 5, padding=2, norm=True, pool=True)
        self.conv3 = conv2d_block(c[1], c[2], 3, padding=1)
        self.conv4 = conv2d_block(c[2], c[3], 3, padding=1)
        self.conv5 = conv2d_block(c[3], c[4], 3, padding=1, pool=last_pool)
        self.out_channels = c[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.squeeze(2)  # (N, 3, H, W): a single frame
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
