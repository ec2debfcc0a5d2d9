"""An InceptionTime-style network over (channels × time) (Fawaz et al. 2020; the PTB-XL benchmark's
inception1d), sized to train on CPU.

Each inception module reduces its input to ``bottleneck`` channels with a 1×1 convolution (if it has
more), runs convolutions of three kernel sizes on it side by side, adds a branch of max pooling
(3, stride 1) followed by a 1×1 convolution of the module's input, and concatenates the four branches
(4 × ``filters`` channels) before batch norm and ReLU. Every ``residual_every`` (3) modules a shortcut
(1×1 convolution + batch norm where the channel count changes, batch norm otherwise) is added to the
output, as in InceptionTime.

Kernel sizes at 100 Hz. InceptionTime's kernel 40 halved twice gives 39 / 19 / 9 samples, which the
PTB-XL benchmark's inception1d applies to 100 Hz records: 390 / 190 / 90 ms, a QT interval, a P wave or
ST–T segment, a QRS complex — sensible spans for an ECG at 100 Hz (at 500 Hz the same kernels would
cover only 78 / 38 / 18 ms). But six such modules of 32 filters at full resolution cost 0.72 G MACs per
10 s ECG (7 windows of 2.5 s, counted by ``ecgnet.evaluation.complexity``), 2.5× the compute goal of
0.29 G, and a training step takes about 6× the baseline ResNet1d's on one CPU thread. The defaults keep
those spans and InceptionTime's 32 filters (128 channels) at under a quarter of the MACs:

* a stem convolution (kernel 5 = 50 ms, stride 2, ``stem_width`` channels) halves the time axis first:
  the network learns what to keep of the signal before subsampling, rather than a pool choosing it;
* kernels 5 / 9 / 19 samples at the resulting 50 Hz span 100 / 180 / 380 ms in the first residual group
  — the benchmark's 90 / 190 / 390 ms;
* after each residual group but the last the time axis is halved again (max pool 3, stride 2), so in the
  second group they span 200 / 360 / 760 ms: a P wave with the PR interval, a whole QT interval, and
  most of a beat (an RR interval is 0.6–1 s).

A 2.5 s crop (250 samples) enters the modules at 125 samples and ends at 63; any input length works,
so it trains on crops and predicts on windows. The embedding concatenates global average and max
pooling; the head is dropout + a linear layer. The defaults' cost is in
:func:`ecgnet.models.unimodal.time_inception1d`.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


class InceptionModule1d(nn.Module):
    """1×1 bottleneck → convolutions of ``kernels`` in parallel, ‖ max pool → 1×1; concat → BN → ReLU."""

    def __init__(self, c_in: int, filters: int, bottleneck: int, kernels: tuple[int, ...]):
        super().__init__()
        use_bottleneck = bottleneck > 0 and c_in > bottleneck
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        c_mid = bottleneck if use_bottleneck else c_in
        self.convs = nn.ModuleList(nn.Conv1d(c_mid, filters, k, padding=k // 2, bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.out_channels = filters * (len(kernels) + 1)
        self.bn = nn.BatchNorm1d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.bottleneck(x)
        out = torch.cat([conv(z) for conv in self.convs] + [self.pool_branch(x)], dim=1)
        return torch.relu(self.bn(out))


class InceptionGroup1d(nn.Module):
    """``n`` inception modules with one residual shortcut around them all."""

    def __init__(self, c_in: int, n: int, filters: int, bottleneck: int, kernels: tuple[int, ...]):
        super().__init__()
        modules, c = [], c_in
        for _ in range(n):
            modules.append(InceptionModule1d(c, filters, bottleneck, kernels))
            c = modules[-1].out_channels
        self.blocks = nn.Sequential(*modules)
        self.out_channels = c
        if c_in != c:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c, 1, bias=False), nn.BatchNorm1d(c))
        else:
            self.shortcut = nn.BatchNorm1d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.blocks(x) + self.shortcut(x))


class Inception1d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, depth: int = 6, filters: int = 32,
                 bottleneck: int = 32, kernels: tuple[int, ...] = (5, 9, 19), residual_every: int = 3,
                 downsample: bool = True, stem_width: int = 32, stem_kernel: int = 5, stem_stride: int = 2,
                 dropout: float = 0.25):
        super().__init__()
        if depth < 1 or residual_every < 1:
            raise ValueError(f"depth and residual_every must be >= 1, got {depth} and {residual_every}")
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels must be odd and positive (same-length padding), got {kernels}")
        layers, c = [], in_channels
        if stem_width > 0:  # 0: no stem, the modules see the leads at the input's rate (InceptionTime)
            layers += [nn.Conv1d(c, stem_width, stem_kernel, stem_stride, stem_kernel // 2, bias=False),
                       nn.BatchNorm1d(stem_width), nn.ReLU()]
            c = stem_width
        sizes = [residual_every] * (depth // residual_every) + ([depth % residual_every] if depth % residual_every else [])
        for i, n in enumerate(sizes):
            group = InceptionGroup1d(c, n, filters, bottleneck, tuple(kernels))
            layers.append(group)
            c = group.out_channels
            if downsample and i < len(sizes) - 1:  # halve the time axis between residual groups
                layers.append(nn.MaxPool1d(3, stride=2, padding=1))
        self.body = nn.Sequential(*layers)  # stem, residual groups and the pools between them
        self.num_features = 2 * c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) → (batch, num_features) embedding."""
        h = self.body(x)
        return mean_max_pool(h, -1)
