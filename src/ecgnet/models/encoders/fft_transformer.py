"""A small Transformer over the frequency axis, the encoder for the spectrum modality.

A 1D CNN front (Conv1d k=5, batch norm, GELU; the first with stride 2) mixes leads and neighbouring
bins into ``d_model``-wide tokens and halves their number (126 bins of a 2.5 s crop → 63 tokens), a
learned positional embedding says which frequency each token sits at, and a pre-norm Transformer
encoder relates bands to each other (e.g. harmonics of the heart rate). The embedding concatenates
mean and max over tokens. Works for any number of bins up to ``2 × max_tokens``; note the positions
are bin indices, so train and evaluate on crops of the same length.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool
from ecgnet.models.encoders.transformer1d import pre_norm_transformer


class FFTTransformer(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, d_model: int = 64, conv_layers: int = 2,
                 n_heads: int = 4, n_layers: int = 2, dropout: float = 0.1, max_tokens: int = 512):
        super().__init__()
        if conv_layers < 1:
            raise ValueError("conv_layers must be at least 1 (the first halves the tokens)")
        convs, c = [], in_channels
        for i in range(conv_layers):
            convs += [nn.Conv1d(c, d_model, 5, stride=2 if i == 0 else 1, padding=2, bias=False),
                      nn.BatchNorm1d(d_model), nn.GELU()]
            c = d_model
        self.front = nn.Sequential(*convs)
        self.max_tokens = max_tokens
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.transformer = pre_norm_transformer(d_model, n_heads, n_layers, dropout)
        self.num_features = 2 * d_model
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, bins) → (batch, num_features) embedding."""
        tokens = self.front(x).transpose(1, 2)  # (batch, ceil(bins / 2), d_model)
        n = tokens.shape[1]
        if n > self.max_tokens:
            raise ValueError(f"{x.shape[-1]} frequency bins give {n} tokens, more than max_tokens={self.max_tokens}")
        h = self.transformer(tokens + self.pos[:, :n])
        return mean_max_pool(h, 1)
