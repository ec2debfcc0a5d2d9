"""Time modality: the raw 12-lead signal, standardised per lead.

The per-lead mean and standard deviation are fitted on the training folds and stored as buffers, so
the saved weights carry them and `predict` works on raw millivolts. Amplitude is kept (no per-record
scaling): voltage criteria matter for hypertrophy. With ``center=True`` each lead of each input window
first loses its own mean, so a baseline offset of another device or electrode does not reach the
network (an input normalisation for transfer; the scale is untouched).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TimeFrontend(nn.Module):
    def __init__(self, n_leads: int = 12, center: bool = False):
        super().__init__()
        self.center = center
        self.register_buffer("mean", torch.zeros(n_leads, 1))
        self.register_buffer("std", torch.ones(n_leads, 1))

    @torch.no_grad()
    def fit(self, signals) -> "TimeFrontend":
        """Set the statistics from (records, leads, samples) training signals: an array or anything
        sliceable by records (a memory-mapped :class:`~ecgnet.data.dataset.SignalRows`), read in chunks."""
        mean, std = lead_statistics(signals)
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype).unsqueeze(1))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp_min(1e-3).unsqueeze(1))
        return self

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        if self.center:
            return (signal - signal.mean(-1, keepdim=True)) / self.std
        return (signal - self.mean) / self.std


def lead_statistics(signals, chunk_records: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead mean and standard deviation (unbiased, as ``torch.std``) over the records and samples of
    (records, leads, samples) ``signals``, in float64, reading ``chunk_records`` records at a time: the
    whole set is never in memory at once (a memory-mapped split stays on disk but for one chunk).
    Chunks are combined with the pairwise update of Chan, Golub & LeVeque (stable; no sum of squares)."""
    if not hasattr(signals, "shape"):
        signals = np.asarray(signals, dtype=np.float32)
    if len(signals.shape) != 3:
        raise ValueError(f"expected (records, leads, samples) signals, got shape {tuple(signals.shape)}")
    leads = signals.shape[1]
    n, mean, m2 = 0, np.zeros(leads), np.zeros(leads)
    for i in range(0, len(signals), chunk_records):
        x = np.asarray(signals[i:i + chunk_records], dtype=np.float64)
        nb = x.shape[0] * x.shape[2]
        if nb == 0:
            continue
        mb = x.mean(axis=(0, 2))
        x -= mb[None, :, None]
        m2b = np.einsum("rls,rls->l", x, x)
        delta, total = mb - mean, n + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta ** 2 * (n * nb / total)
        n = total
    if n == 0:
        return np.full(leads, np.nan), np.full(leads, np.nan)
    return mean, np.sqrt(m2 / (n - 1)) if n > 1 else np.full(leads, np.nan)
