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
    def fit(self, signals: np.ndarray) -> "TimeFrontend":
        """Set the statistics from (records, leads, samples) training signals."""
        x = torch.as_tensor(np.asarray(signals, dtype=np.float32))
        self.mean.copy_(x.mean(dim=(0, 2)).unsqueeze(1))
        self.std.copy_(x.std(dim=(0, 2)).clamp_min(1e-3).unsqueeze(1))
        return self

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        if self.center:
            return (signal - signal.mean(-1, keepdim=True)) / self.std
        return (signal - self.mean) / self.std
