"""A small MLP for tabular features (the metadata modality).

Hidden layers of Linear → LayerNorm → ReLU (dropout between them); the embedding is the last hidden
layer, and the head is dropout + a linear layer, the same API as the other encoders.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder


class MLP(Encoder):
    def __init__(self, in_features: int = 8, num_classes: int = 5, hidden: tuple[int, ...] = (64, 64),
                 dropout: float = 0.1):
        super().__init__()
        layers, c = [], in_features
        for i, h in enumerate(hidden):
            if i > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(c, h), nn.LayerNorm(h), nn.ReLU()]
            c = h
        self.body = nn.Sequential(*layers)
        self.num_features = c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_features) → (batch, num_features) embedding."""
        return self.body(x)
