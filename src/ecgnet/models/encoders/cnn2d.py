"""A small VGG-style 2D CNN over (channels × frequency × time), the encoder for spectrograms.

Stages of two 3×3 convolutions (batch norm, ReLU) followed by 2×2 max pooling; the last stage does not
pool (global pooling follows), and a pooling step is skipped when the map has fewer than 2 rows or
columns, so small maps such as the (33 × 26) spectrogram of a 2.5 s crop pass (→ 17×13 → 9×7).
The embedding concatenates global average and max pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


class ConvStage2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: bool):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                   nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if self.pool and min(x.shape[-2:]) >= 2:
            x = F.max_pool2d(x, 2, ceil_mode=True)
        return x


class CNN2d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, widths: tuple[int, ...] = (32, 64, 128),
                 dropout: float = 0.25):
        super().__init__()
        stages, c = [], in_channels
        for i, w in enumerate(widths):
            stages.append(ConvStage2d(c, w, pool=i < len(widths) - 1))
            c = w
        self.stages = nn.Sequential(*stages)
        self.num_features = 2 * c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, freq, time) → (batch, num_features) embedding."""
        h = self.stages(x)
        return mean_max_pool(h, (-2, -1))
