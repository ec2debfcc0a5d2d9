"""One modality's frontend followed by one encoder: the single-branch classifier.

Every ECGNet model takes ``(signal, metadata)`` — signal (batch, 12, samples) in mV, metadata
(batch, 8) — and returns logits, so training, evaluation and `predict` treat all models alike.
"""

from __future__ import annotations

import torch
from torch import nn


class UnimodalModel(nn.Module):
    def __init__(self, frontend: nn.Module, encoder: nn.Module, uses: str = "signal"):
        super().__init__()
        self.frontend, self.encoder, self.uses = frontend, encoder, uses

    def forward_features(self, signal: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        x = signal if self.uses == "signal" else metadata
        return self.encoder.forward_features(self.frontend(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_head(features)

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(signal, metadata))
