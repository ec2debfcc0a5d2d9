"""Training crops with the teacher's soft target beside the label.

``record`` targets give every crop of a record the teacher's record probability; ``window`` targets give
a crop the teacher's probability at the evaluation window whose start is nearest the crop's (at most half
a stride away: 0.62 s of 2.5 s with the default windows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgnet.data.dataset import CropDataset, Split
from ecgnet.distill.loss import DistillationLoss
from ecgnet.distill.teacher import SoftTargets, resolve
from ecgnet.errors import ECGNetError


class DistillCropDataset(CropDataset):
    """:class:`CropDataset` samples whose ``y`` is the labels and the crop's soft target side by side
    (2 · classes: what :class:`~ecgnet.distill.loss.DistillationLoss` splits)."""

    def __init__(self, split: Split, crop: int | None, targets: np.ndarray, starts: np.ndarray | None = None):
        super().__init__(split, crop)
        if len(targets) != len(split.ecg_ids):
            raise ValueError(f"{len(targets)} soft targets for {len(split.ecg_ids)} records")
        self.targets, self.starts = np.asarray(targets, dtype=np.float32), starts  # starts: window targets

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        samples = self.split.signal.shape[-1]
        start = 0
        if self.crop is not None and self.crop < samples:
            start = np.random.randint(0, samples - self.crop + 1)
            x = self.split.signal[i, :, start:start + self.crop]
        else:
            x = self.split.signal[i]
        soft = self.targets[i] if self.starts is None else self.targets[i, np.abs(self.starts - start).argmin()]
        return {"signal": torch.from_numpy(np.ascontiguousarray(x)),
                "metadata": torch.from_numpy(self.split.metadata[i]),
                "y": torch.from_numpy(np.concatenate([self.split.y[i], soft]).astype(np.float32))}


def attach(config, split: Split, crop: int | None, loss: nn.Module,
           cache_dir: Path | None = None) -> tuple[DistillCropDataset, DistillationLoss]:
    """The training set with the teacher's soft targets of ``config.training`` and the distillation loss
    around ``loss`` (the config's hard loss)."""
    t = config.training
    targets = SoftTargets.load(resolve(t.distill_teacher, config.data.task, cache_dir))
    classes = list(targets.classes)
    if split.y.shape[1] != len(classes):
        raise ECGNetError(f"{t.distill_teacher}: the teacher predicts {len(classes)} classes, the task has "
                          f"{split.y.shape[1]}")
    rows = targets.rows(split.ecg_ids)
    if t.distill_target == "window":
        if crop is not None and crop != targets.window:
            raise ECGNetError(f"{t.distill_teacher}: window soft targets are for {targets.window}-sample windows, "
                              f"the student trains on {crop}-sample crops; use distill_target: record")
        dataset = DistillCropDataset(split, crop, targets.windows()[rows], targets.starts)
    else:
        dataset = DistillCropDataset(split, crop, targets.record()[rows])
    return dataset, DistillationLoss(loss, t.distill_weight, t.distill_temperature)
