"""Regularisers that soften the training targets (``training.mixup_alpha``, ``training.label_smoothing``):

- **mixup** (Zhang et al. 2018) for 1D signals: each training batch is mixed with a shuffled copy of
  itself, ``x = λ·x + (1 − λ)·x[perm]`` for the signal and the metadata, and the multi-hot targets alike,
  one ``λ ~ Beta(α, α)`` per batch (drawn from torch's generator, so seeded runs repeat and a resumed run
  draws what it would have drawn);
- **label smoothing** for binary targets: ``y·(1 − ε) + ε/2``, so no target is exactly 0 or 1.

Validation and evaluation see the records as they are.
"""

from __future__ import annotations

import torch


def mixup(signal: torch.Tensor, metadata: torch.Tensor, y: torch.Tensor, alpha: float):
    """The batch mixed with a permutation of itself; the same λ and permutation for all three tensors."""
    lam = torch.distributions.Beta(alpha, alpha).sample().item()
    perm = torch.randperm(len(y), device=y.device)
    mix = lambda t: lam * t + (1 - lam) * t[perm]  # noqa: E731
    return mix(signal), mix(metadata), mix(y)


def smooth_labels(y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Binary label smoothing: 1 → 1 − ε/2, 0 → ε/2."""
    return y * (1 - epsilon) + epsilon / 2
