"""Which training records an epoch draws: shuffled once each (the default), or oversampled.

- **Oversampling of rare classes** (``training.sampler: oversample``). Each record is drawn with
  probability proportional to ``1 / frequency`` of its rarest class, with replacement: a record of the
  rarest class is drawn as often as one of the commonest. Multi-label records make the classes'
  frequencies closer, not equal.
- **A minimum epoch** (``training.min_epoch_crops``). An epoch draws ``max(len(records), min_epoch_crops)``
  crops: a collection smaller than that is passed through several times per epoch, each pass a new
  shuffle (and each crop a new random window), so that a small collection gets some optimizer steps
  between two validations — 60 records in batches of 32 are otherwise one step an epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler


def record_weights(y: np.ndarray) -> np.ndarray:
    """Per-record weight: the largest inverse class frequency among its labels."""
    inverse = 1.0 / y.sum(0).clip(min=1)
    weights = (y * inverse).max(axis=1)
    return np.where(weights > 0, weights, inverse.min())  # unlabelled records: as the commonest class


def crops_per_epoch(n_records: int, min_epoch_crops: int | None) -> int:
    return max(n_records, min_epoch_crops or 0)


def oversampler(y: np.ndarray, seed: int = 0, min_epoch_crops: int | None = None) -> WeightedRandomSampler:
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(record_weights(y), dtype=torch.double),
                                 num_samples=crops_per_epoch(len(y), min_epoch_crops),
                                 replacement=True, generator=generator)


def epoch_sampler(y: np.ndarray, kind: str, seed: int, n_crops: int, min_epoch_crops: int | None) -> Sampler | None:
    """The training loader's sampler; None: the loader's own shuffle (every record once an epoch).
    ``y``: the labelled records' targets (oversampling); ``n_crops``: crops in the training set."""
    if kind == "oversample":
        return oversampler(y, seed, min_epoch_crops)
    if crops_per_epoch(n_crops, min_epoch_crops) == n_crops:
        return None
    # without replacement: whole shuffles of the records one after another, the last one cut short;
    # no generator of its own, so it draws from torch's global one as the loader's shuffle does
    return RandomSampler(range(n_crops), num_samples=crops_per_epoch(n_crops, min_epoch_crops))
