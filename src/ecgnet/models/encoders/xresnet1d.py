"""An xresnet1d over (channels × time): the "bag of tricks" ResNet (He et al. 2019) as the PTB-XL
benchmark's xresnet1d101 uses it, scaled down to train on CPU.

The tricks, as in fastai's xresnet:

* a stem of three convolutions (the first with stride 2) and a stride-2 max pool, instead of one wide
  convolution: a 2.5 s crop at 100 Hz (250 samples) enters the residual stages at 63 samples;
* stages of residual blocks, each later stage halving the time axis in its first block; the shortcut
  of a block that changes shape average-pools (stride 2, ``ceil_mode``) and then projects with a 1×1
  convolution, rather than a strided 1×1 convolution that would skip three samples in four;
* the last batch norm of each block starts at zero, so every block starts as the identity;
* optionally (``se``) squeeze-and-excitation on each block's residual branch (Hu et al. 2018);
* ``expansion`` 1 gives basic blocks (two k-convolutions), 4 bottleneck blocks (1×1, k, 1×1) as in
  xresnet1d50/101;
* the embedding concatenates global average and max pooling; the head is dropout + a linear layer.

Works for any input length (2.5 s crops of 250 samples end at 8 samples in the last stage), so it trains
on crops and predicts on windows. The defaults' cost is in :func:`ecgnet.models.unimodal.time_xresnet1d`.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


def conv_bn(c_in: int, c_out: int, kernel_size: int, stride: int = 1, relu: bool = True,
            zero_bn: bool = False) -> nn.Sequential:
    """Conv1d (no bias) → BatchNorm1d (weight 0 if ``zero_bn``) → ReLU (if ``relu``)."""
    bn = nn.BatchNorm1d(c_out)
    if zero_bn:
        nn.init.zeros_(bn.weight)
    layers = [nn.Conv1d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False), bn]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class SqueezeExcite1d(nn.Module):
    """Channel gates from the time-averaged features: x · σ(W₂ ReLU(W₁ mean_t x))."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.ReLU(), nn.Conv1d(hidden, channels, 1),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1, keepdim=True))


class XResBlock1d(nn.Module):
    """Residual block: ``expansion`` 1 → k-conv, k-conv; otherwise 1×1, k-conv (strided), 1×1; the output
    has ``width`` × ``expansion`` channels."""

    def __init__(self, c_in: int, width: int, expansion: int, kernel_size: int, stride: int, se: bool):
        super().__init__()
        c_out = width * expansion
        if expansion == 1:
            convs = [conv_bn(c_in, width, kernel_size, stride),
                     conv_bn(width, c_out, kernel_size, relu=False, zero_bn=True)]
        else:
            convs = [conv_bn(c_in, width, 1), conv_bn(width, width, kernel_size, stride),
                     conv_bn(width, c_out, 1, relu=False, zero_bn=True)]
        if se:
            convs.append(SqueezeExcite1d(c_out))
        self.convs = nn.Sequential(*convs)
        shortcut = [nn.AvgPool1d(stride, ceil_mode=True)] if stride > 1 else []
        if c_in != c_out:
            shortcut.append(conv_bn(c_in, c_out, 1, relu=False))
        self.shortcut = nn.Sequential(*shortcut)  # empty: the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


class XResNet1d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, widths: tuple[int, ...] = (64, 96, 160, 224),
                 blocks: tuple[int, ...] = (2, 2, 2, 2), expansion: int = 1, kernel_size: int = 5,
                 stem_widths: tuple[int, ...] = (32, 32, 64), stem_kernel: int = 5, se: bool = False,
                 dropout: float = 0.25):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {widths} and blocks {blocks} must have the same length")
        if expansion < 1:
            raise ValueError(f"expansion must be >= 1, got {expansion}")
        stem, c = [], in_channels
        for i, w in enumerate(stem_widths):
            stem.append(conv_bn(c, w, stem_kernel, stride=2 if i == 0 else 1))
            c = w
        self.stem = nn.Sequential(*stem, nn.MaxPool1d(3, stride=2, padding=1))
        stages = []
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                stages.append(XResBlock1d(c, w, expansion, kernel_size, stride=2 if (i > 0 and b == 0) else 1, se=se))
                c = w * expansion
        self.stages = nn.Sequential(*stages)
        self.num_features = 2 * c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        for m in self.modules():  # He initialisation of the convolutions (the zero BN weights are kept)
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) → (batch, num_features) embedding."""
        h = self.stages(self.stem(x))
        return mean_max_pool(h, -1)
