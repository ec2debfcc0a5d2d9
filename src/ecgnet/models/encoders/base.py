"""What every encoder shares (the timm contract): ``forward_features(x)`` → a (batch, ``num_features``)
embedding, ``forward_head(features)`` → logits through ``self.head``, and ``forward`` chaining the two.
A subclass defines ``forward_features``, ``num_features`` and ``head``; most embed with
:func:`mean_max_pool`, as the PTB-XL benchmark's xresnet1d / fastai head does.
"""

from __future__ import annotations

import torch
from torch import nn


def mean_max_pool(h: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Global average and max pooling over ``dim``, concatenated along the channels."""
    return torch.cat([h.mean(dim=dim), h.amax(dim=dim)], dim=1)


class Encoder(nn.Module):
    head: nn.Module
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
