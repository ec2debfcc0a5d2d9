"""A small 1D ResNet over (channels × time), the time-domain encoder.

Stages of basic residual blocks (two convolutions, batch norm, ReLU), each later stage halving the
time axis; the embedding concatenates global average and max pooling, as in the PTB-XL benchmark's
xresnet1d / fastai head. Works for any input length, so it trains on crops and predicts on windows.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


class BasicBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity: stable early training
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.AvgPool1d(stride, ceil_mode=True) if stride > 1 else nn.Identity(),
                                          nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet1d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, widths: tuple[int, ...] = (64, 64, 128, 128),
                 blocks_per_stage: int = 1, kernel_size: int = 5, stem_kernel: int = 7, dropout: float = 0.25):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_channels, widths[0], stem_kernel, padding=stem_kernel // 2, bias=False),
                                  nn.BatchNorm1d(widths[0]), nn.ReLU())
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks_per_stage):
                stages.append(BasicBlock1d(c, w, kernel_size, stride=2 if (i > 0 and b == 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.num_features = 2 * c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) → (batch, num_features) embedding."""
        h = self.stages(self.stem(x))
        return mean_max_pool(h, -1)
