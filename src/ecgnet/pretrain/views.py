"""Two views of one record, which the encoder must map close together (and far from other records').

A view is a random window of the 10 s record (2.5 s by default), then, on the training device, ECG
augmentations drawn independently per view:

- time shift: the two windows start independently, 0–7.5 s apart — the crops are the shift;
- ``ecgnet.data.augment``: amplitude scaling, baseline wander, Gaussian noise, another device's filters
  and precordial lead mixing, each with probability ``augment_p``;
- lead masking: each lead is set to 0 mV (a flat, disconnected lead) with probability ``lead_mask_p``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgnet.data.augment import augment
from ecgnet.data.dataset import Split


class TwoCrops(Dataset):
    """``(a, b)``: two independent random windows of ``crop`` samples of record ``i``."""

    def __init__(self, split: Split, crop: int):
        self.split, self.crop = split, crop

    def __len__(self) -> int:
        return len(self.split.ecg_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.split.signal[i]  # (leads, samples): the record is read once
        starts = np.random.randint(0, max(1, x.shape[-1] - self.crop + 1), size=2)
        a, b = (torch.from_numpy(np.ascontiguousarray(x[:, s:s + self.crop])) for s in starts)
        return a, b


def mask_leads(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each lead of each record of a (batch, leads, samples) batch with probability ``p``."""
    if p == 0:
        return x
    keep = torch.rand(x.shape[0], x.shape[1], 1, device=x.device) >= p
    return x * keep


def augment_view(x: torch.Tensor, names, p: float, lead_mask_p: float, sampling_rate: float) -> torch.Tensor:
    """One view's augmentations for a batch of crops (every record draws its own)."""
    return mask_leads(augment(x, names, sampling_rate, p), lead_mask_p)
