"""Multi-label losses for imbalanced classes (selected by ``training.loss``):

- ``bce``: plain binary cross-entropy, the benchmark's choice;
- ``weighted_bce``: BCE with a per-class positive weight ``sqrt(negatives / positives)`` from the
  training folds (the square root tempers the rare classes' weight, a common choice that keeps
  probabilities closer to calibrated than the full ratio);
- ``focal``: focal loss (Lin et al. 2017), ``(1 − p_t)^γ · BCE``, which down-weights easy records.

Unknown labels (NaN targets, e.g. an empty cell of a manifest) are masked: when the training labels
hold any, the loss is averaged over the known entries only (:class:`MaskedLoss`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("bce", "weighted_bce", "focal")


def positive_weights(y: np.ndarray) -> torch.Tensor:
    pos = np.nansum(y, 0).clip(min=1)
    known = (~np.isnan(y)).sum(0)
    return torch.as_tensor(np.sqrt(np.clip(known - pos, 0, None) / pos), dtype=torch.float32)


class FocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p_t = torch.exp(-bce)  # probability given to the true label
        return ((1 - p_t) ** self.gamma * bce).mean()


class MaskedLoss(nn.Module):
    """Element-wise BCE or focal loss averaged over the known targets; NaN targets contribute nothing."""

    def __init__(self, pos_weight: torch.Tensor | None = None, gamma: float | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(target)
        loss = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(target), reduction="none",
                                                  pos_weight=self.pos_weight)
        if self.gamma is not None:
            loss = (1 - torch.exp(-loss)) ** self.gamma * loss
        return (loss * known).sum() / known.sum().clamp_min(1)


def make_loss(name: str, y_train: np.ndarray, focal_gamma: float = 2.0) -> nn.Module:
    if np.isnan(np.asarray(y_train, dtype=float)).any():
        if name not in LOSSES:
            raise ValueError(f"unknown loss '{name}': choose one of {', '.join(LOSSES)}")
        return MaskedLoss(positive_weights(y_train) if name == "weighted_bce" else None,
                          focal_gamma if name == "focal" else None)
    if name == "bce":
        return nn.BCEWithLogitsLoss()
    if name == "weighted_bce":
        return nn.BCEWithLogitsLoss(pos_weight=positive_weights(y_train))
    if name == "focal":
        return FocalLoss(focal_gamma)
    raise ValueError(f"unknown loss '{name}': choose one of {', '.join(LOSSES)}")
