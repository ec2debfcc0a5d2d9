"""Multi-label losses for imbalanced classes (selected by ``training.loss``):

- ``bce``: plain binary cross-entropy, the benchmark's choice;
- ``weighted_bce``: BCE with a per-class positive weight ``sqrt(negatives / positives)`` from the
  training folds (the square root tempers the rare classes' weight, a common choice that keeps
  probabilities closer to calibrated than the full ratio);
- ``focal``: focal loss (Lin et al. 2017), ``(1 − p_t)^γ · BCE``, which down-weights easy records.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("bce", "weighted_bce", "focal")


def positive_weights(y: np.ndarray) -> torch.Tensor:
    pos = y.sum(0).clip(min=1)
    return torch.as_tensor(np.sqrt((len(y) - pos) / pos), dtype=torch.float32)


class FocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p_t = torch.exp(-bce)  # probability given to the true label
        return ((1 - p_t) ** self.gamma * bce).mean()


def make_loss(name: str, y_train: np.ndarray, focal_gamma: float = 2.0) -> nn.Module:
    if name == "bce":
        return nn.BCEWithLogitsLoss()
    if name == "weighted_bce":
        return nn.BCEWithLogitsLoss(pos_weight=positive_weights(y_train))
    if name == "focal":
        return FocalLoss(focal_gamma)
    raise ValueError(f"unknown loss '{name}': choose one of {', '.join(LOSSES)}")
