"""Building blocks shared by every tower: conv blocks, the LRN of the paper, the FC head.

Conventions (paper-facts §1-2): ReLU after every conv and FC; LRN k=2, n=5, beta=0.5 and the
written Krizhevsky alpha=1e-4 (PyTorch divides alpha by n, so alpha_torch = 5e-4); max pooling
2x2 stride 2 with ceil_mode=True (Caffe's size rule); conv1 unpadded, conv2 pad 2, conv3-5 pad 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sportsfusion.ops.conv3d_fused import conv3d_fused
from sportsfusion.ops.lrn_pool import lrn_pool

LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 5e-4, 0.5, 2.0
FC_WIDTH = 4096


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier (quick CPU experiments keep the structure)."""
    return max(1, round(channels * width))


def lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)


class ConvBlock(nn.Sequential):
    """One 'C[-N][-P]' of the paper's layer list: conv -> ReLU [-> LRN] [-> max-pool 2x2/2].

    The layers stay an nn.Sequential (conv at index 0, so checkpoints keep their keys and `print`
    shows the paper's layers), but forward runs them as two ops of `sportsfusion.ops`: conv + bias
    + ReLU, then LRN + pooling. The dispatcher puts the fused kernels there on CUDA (Triton
    implicit-GEMM conv, the CUDA LRN + pool) and the reference, these very layers' math, on the
    CPU and in ONNX export.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[0]
        x = conv3d_fused(x, conv.weight, conv.bias, conv.stride, conv.padding)  # ReLU fused
        rest = list(self)[2:]
        if len(rest) == 2 and isinstance(rest[0], nn.LocalResponseNorm):
            norm = rest[0]
            return lrn_pool(x, size=norm.size, alpha=norm.alpha, beta=norm.beta, k=norm.k)
        for layer in rest:
            x = layer(x)
        return x


def conv2d_block(cin, cout, kernel, stride=1, padding=0, norm=False, pool=False) -> ConvBlock:
    """conv -> ReLU [-> LRN] [-> max-pool 2x2/2]: one 'C[-N][-P]' of the paper's layer list."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding), nn.ReLU(inplace=True)]
    if norm:
        layers.append(lrn())
    if pool:
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    return ConvBlock(*layers)


def conv3d_block(cin, cout, kernel, stride, padding, norm=False, pool=False) -> ConvBlock:
    """Spatio-temporal 'C[-N][-P]': kernel/stride/padding are (t, h, w); pooling is spatial only."""
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, kernel, stride, padding), nn.ReLU(inplace=True)]
    if norm:
        layers.append(lrn())  # LocalResponseNorm normalises over dim 1 (channels) on 5-D input too
    if pool:
        layers.append(nn.MaxPool3d((1, 2, 2), (1, 2, 2), ceil_mode=True))
    return ConvBlock(*layers)


def spatial_out(size: int, last_pool: bool) -> int:
    """Spatial size after conv1..conv5 (+P3) of the paper's tower: 178 -> 7, 170 -> 7, 89 -> 7."""
    size = (size - 11) // 3 + 1  # conv1 11x11/3, unpadded
    size = math.ceil(size / 2)  # P1
    size = math.ceil(size / 2)  # conv2 keeps the size (pad 2); P2
    return math.ceil(size / 2) if last_pool else size  # conv3-5 keep it (pad 1); P3


class Head(nn.Module):
    """FC6 -> FC7 -> FC8 (softmax is in the loss). Dropout before each trained FC when asked
    (paper-facts §6: transfer learning trains the top layers with strong dropout)."""

    def __init__(
        self, in_features: int, num_classes: int, width: float = 1.0, dropout: float = 0.0
    ):
        super().__init__()
        hidden = scaled(FC_WIDTH, width)
        self.fc6 = nn.Linear(in_features, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.fc8 = nn.Linear(hidden, num_classes)
        # One dropout per FC input, so a frozen layer's dropout can be switched off on its own.
        self.drop6, self.drop7, self.drop8 = (nn.Dropout(dropout) for _ in range(3))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, in_features) -> (B, classes)
        x = self.relu(self.fc6(self.drop6(features)))
        x = self.relu(self.fc7(self.drop7(x)))
        return self.fc8(self.drop8(x))


def init_weights(module: nn.Module) -> None:
    """He initialisation for ReLU layers (the paper does not state its own), zero biases; the
    classifier starts small so initial predictions are near uniform."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    if isinstance(getattr(module, "head", None), Head):
        nn.init.normal_(module.head.fc8.weight, std=0.01)
