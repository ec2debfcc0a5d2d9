"""Intermediate fusion: each modality's encoder embedding is projected to a common width, then the
modality tokens are combined mid-network and trained end to end with one head.

Combiners (``mode``):
- ``concat``: concatenate the tokens → MLP;
- ``gated``: a softmax gate over modalities, computed from all tokens, weights each token (the gate
  says how much each modality counted for a record);
- ``attention``: a Transformer layer lets the modality tokens attend to each other, then a learned
  query pools them by cross-attention (its weights say which modality the prediction read).

A missing modality (test-time ablation, or ``modality_dropout`` while training) is replaced by a
learned "missing" token, so dropping one at test time is a question the model was trained to answer.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.models.fusion.branches import DroppableModalities, check_modalities, make_branch
from ecgnet.models.registry import register

MODES = ("concat", "gated", "attention")


class IntermediateFusion(DroppableModalities, nn.Module):
    def __init__(self, num_classes: int, modalities=("time", "frequency", "spectrogram", "metadata"),
                 mode: str = "attention", dim: int = 128, heads: int = 4, modality_dropout: float = 0.1,
                 dropout: float = 0.25):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.modalities, self.mode, self.modality_dropout = check_modalities(modalities), mode, modality_dropout
        self.branches = nn.ModuleDict({m: make_branch(m) for m in self.modalities})
        self.project = nn.ModuleDict({m: nn.Sequential(nn.Linear(b.num_features, dim), nn.LayerNorm(dim), nn.GELU())
                                      for m, b in self.branches.items()})
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(dim)) for m in self.modalities})
        n = len(self.modalities)
        if mode == "concat":
            self.combine = nn.Sequential(nn.Linear(n * dim, dim), nn.GELU())
        elif mode == "gated":
            self.gate = nn.Linear(n * dim, n)
        else:
            self.kind = nn.Parameter(torch.randn(n, dim) * 0.02)  # which modality a token comes from
            self.mix = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True, norm_first=True)
            self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.pool = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.num_features = dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
        self.last_weights: torch.Tensor | None = None  # (batch, modalities) gate/attention weights

    def tokens(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        """(batch, modalities, dim), with dropped modalities replaced by their missing token."""
        out = []
        for m in self.modalities:
            if m in self.dropped:
                out.append(self.missing[m].expand(signal.shape[0], -1))
                continue
            z = self.project[m](self.branches[m](signal, metadata))
            if self.training and self.modality_dropout > 0:
                keep = torch.rand(z.shape[0], 1, device=z.device) >= self.modality_dropout
                z = torch.where(keep, z, self.missing[m].expand_as(z))
            out.append(z)
        return torch.stack(out, dim=1)

    def forward_features(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        z = self.tokens(signal, metadata)
        if self.mode == "concat":
            self.last_weights = None
            return self.combine(z.flatten(1))
        if self.mode == "gated":
            weights = torch.softmax(self.gate(z.flatten(1)), dim=-1)
            self.last_weights = weights.detach()
            return (weights.unsqueeze(-1) * z).sum(1)
        z = self.mix(z + self.kind)
        pooled, attn = self.pool(self.query.expand(z.shape[0], -1, -1), z, z, need_weights=True)
        self.last_weights = attn[:, 0].detach()  # averaged over heads
        return pooled[:, 0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(signal, metadata))


@register("intermediate_fusion")
def intermediate_fusion(num_classes: int, modalities=("time", "frequency", "spectrogram", "metadata"),
                        mode: str = "attention", dim: int = 128, heads: int = 4, modality_dropout: float = 0.1,
                        dropout: float = 0.25) -> nn.Module:
    """Branch encoders' embeddings combined mid-network by concatenation, a gate, or attention."""
    return IntermediateFusion(num_classes, modalities, mode, dim, heads, modality_dropout, dropout)
