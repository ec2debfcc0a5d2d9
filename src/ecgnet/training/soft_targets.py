"""Regularisers that soften the training targets (``training.mixup_alpha``, ``training.cutmix_alpha``,
``training.label_smoothing``):

- **mixup** (Zhang et al. 2018) for 1D signals: each training batch is mixed with a shuffled copy of
  itself, ``x = λ·x + (1 − λ)·x[perm]`` for the signal and the metadata, and the multi-hot targets alike,
  one ``λ ~ Beta(α, α)`` per batch (drawn from torch's generator, so seeded runs repeat and a resumed run
  draws what it would have drawn);
- **CutMix** (Yun et al. 2019) for 1D signals: a random contiguous time segment of each signal (all 12
  leads) is replaced by the same segment of a shuffled copy of the batch, and the multi-hot targets are
  mixed by the fraction of time each record keeps (one segment, drawn from torch's generator, per batch);
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


def cutmix(signal: torch.Tensor, metadata: torch.Tensor, y: torch.Tensor, alpha: float):
    """The batch with one time segment pasted from a permutation of itself, targets mixed by the kept fraction.

    ``λ ~ Beta(α, α)``; a segment of ``round((1 − λ)·T)`` samples at a uniformly random start is taken
    from ``signal[perm]`` for every record and lead; then ``λ`` becomes the fraction actually kept,
    ``1 − segment/T``, and ``y = λ·y + (1 − λ)·y[perm]``.

    The metadata stays the record's own: age, sex, height and weight describe a patient, not a stretch
    of time, so no part of them can be pasted (and mixup's interpolation would invent patients).
    """
    samples = signal.shape[-1]
    lam = torch.distributions.Beta(alpha, alpha).sample().item()
    length = round((1 - lam) * samples)
    start = int(torch.randint(0, samples - length + 1, ()).item())
    perm = torch.randperm(len(y), device=y.device)
    out = signal.clone()
    out[..., start:start + length] = signal[perm, ..., start:start + length]
    kept = 1 - length / samples
    return out, metadata, kept * y + (1 - kept) * y[perm]


def smooth_labels(y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Binary label smoothing: 1 → 1 − ε/2, 0 → ε/2."""
    return y * (1 - epsilon) + epsilon / 2
