"""The distillation loss (Hinton et al. 2015, for multi-label outputs: one binary distribution per class).

    loss = (1 − α) · hard(logits, labels) + α · T² · BCE(σ(logits / T), σ(logit(p_teacher) / T))

``hard`` is the config's loss (BCE, weighted BCE or focal); the soft term is the binary cross-entropy
between the student's and the teacher's probabilities, both softened by the temperature T (T = 1: the
teacher's probabilities as they are). T² keeps the soft term's gradients on the scale of the hard term's
as T grows. α = 0 is plain training, α = 1 learns the teacher alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Teacher probabilities at temperature T: σ(logit(p) / T)."""
    if temperature == 1:
        return probs
    return torch.sigmoid(torch.logit(probs.clamp(EPS, 1 - EPS)) / temperature)


def soft_bce(logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T² · mean BCE between σ(logits / T) and the teacher's probabilities at temperature T."""
    target = soften(teacher_probs.float(), temperature)
    return temperature ** 2 * F.binary_cross_entropy_with_logits(logits.float() / temperature, target)


class DistillationLoss(nn.Module):
    """``loss(logits, target)`` with ``target`` = labels and teacher probabilities side by side,
    (batch, 2 · classes) — so that mixup, CutMix and label smoothing act on both as on labels —, or
    ``loss(logits, labels, teacher_probs)``. Targets of only the labels give the hard loss alone."""

    def __init__(self, hard: nn.Module, weight: float = 0.5, temperature: float = 1.0):
        super().__init__()
        if not 0 <= weight <= 1:
            raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be positive, got {temperature}")
        self.hard, self.weight, self.temperature = hard, weight, temperature

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                teacher_probs: torch.Tensor | None = None) -> torch.Tensor:
        if teacher_probs is None and target.shape[-1] == 2 * logits.shape[-1]:
            target, teacher_probs = target.chunk(2, dim=-1)
        hard = self.hard(logits, target)
        if teacher_probs is None or self.weight == 0:
            return hard
        return (1 - self.weight) * hard + self.weight * soft_bce(logits, teacher_probs, self.temperature)
