"""A Transformer over (channels × time): convolutional tokens, then self-attention across the window
(Vaswani et al. 2017, pre-norm as in Xiong et al. 2020).

* A convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better") rather than
  a patch embedding: two convolutions (kernel 5, stride 2, batch norm, GELU), to ``d_model`` / 2 and then
  ``d_model`` channels, turn a 2.5 s crop at 100 Hz (250 samples) into 63 tokens of 40 ms each, every one
  seeing 13 samples (130 ms: a QRS complex with its edges).
* Sinusoidal position encodings (Vaswani et al.), computed on the fly for the number of tokens, so any
  input length works: the model trains on crops and predicts on windows. Crops start anywhere in the
  beat, so positions tell order and distance, not where a wave is.
* ``n_layers`` pre-norm encoder layers (``n_heads`` heads, feed-forward 4 × ``d_model``, GELU), then a
  final LayerNorm; the embedding concatenates mean and max over tokens; the head is dropout + a linear layer.

Attention costs grow with the square of the tokens, and everything with d_model²: the defaults (d_model 96,
4 layers) keep a 10 s ECG under the compute goal of 0.29 G MACs, which d_model 128 at 63 tokens would exceed
(0.37 G). The defaults' cost is in :func:`ecgnet.models.unimodal.time_transformer`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


def sinusoidal_positions(n: int, d_model: int, device: torch.device) -> torch.Tensor:
    """(n, d_model) encodings: sin and cos of position × 10000^(−2i / d_model), interleaved."""
    position = torch.arange(n, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    return torch.stack([torch.sin(position * freq), torch.cos(position * freq)], dim=-1).flatten(1)


def pre_norm_transformer(d_model: int, n_heads: int, n_layers: int, dropout: float) -> nn.TransformerEncoder:
    """``n_layers`` pre-norm encoder layers (feed-forward 4 × ``d_model``, GELU, batch first) and a final
    LayerNorm, which closes the residual stream that pre-norm layers leave un-normalised."""
    layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=4 * d_model, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)


class Transformer1d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, d_model: int = 96, n_heads: int = 4,
                 n_layers: int = 4, block_dropout: float = 0.1, dropout: float = 0.25):
        super().__init__()
        if d_model % 2 or d_model % n_heads:
            raise ValueError(f"d_model must be even and divisible by n_heads, got {d_model} and {n_heads}")
        stem, c = [], in_channels
        for width in (d_model // 2, d_model):
            stem += [nn.Conv1d(c, width, 5, stride=2, padding=2, bias=False), nn.BatchNorm1d(width), nn.GELU()]
            c = width
        self.stem = nn.Sequential(*stem)
        self.transformer = pre_norm_transformer(d_model, n_heads, n_layers, block_dropout)
        self.num_features = 2 * d_model
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) → (batch, num_features) embedding."""
        tokens = self.stem(x).transpose(1, 2)  # (batch, ceil(time / 4), d_model)
        h = self.transformer(tokens + sinusoidal_positions(tokens.shape[1], tokens.shape[2], tokens.device))
        return mean_max_pool(h, 1)
