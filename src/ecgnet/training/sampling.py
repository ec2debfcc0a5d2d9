"""Oversampling of rare classes (``training.sampler: oversample``).

Each record is drawn with probability proportional to ``1 / frequency`` of its rarest class, with
replacement, ``len(records)`` draws per epoch: a record of the rarest class is drawn as often as one
of the commonest. Multi-label records make the classes' frequencies closer, not equal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def record_weights(y: np.ndarray) -> np.ndarray:
    """Per-record weight: the largest inverse class frequency among its labels."""
    inverse = 1.0 / y.sum(0).clip(min=1)
    weights = (y * inverse).max(axis=1)
    return np.where(weights > 0, weights, inverse.min())  # unlabelled records: as the commonest class


def oversampler(y: np.ndarray, seed: int = 0) -> WeightedRandomSampler:
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(record_weights(y), dtype=torch.double), num_samples=len(y),
                                 replacement=True, generator=generator)
