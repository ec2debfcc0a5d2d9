"""Training crops with the teacher's soft target beside the label.

``record`` targets give every crop of a record the teacher's record probability; ``window`` targets give
a crop the teacher's probability at the evaluation window whose start is nearest the crop's (at most half
a stride away: 0.62 s of 2.5 s with the default windows). With ``training.distill_unlabelled`` the
records of an unlabelled manifest join the crops with soft targets only (:mod:`.unlabelled`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from ecgnet.data.dataset import CropDataset, Split
from ecgnet.distill.loss import DistillationLoss
from ecgnet.distill.teacher import SoftTargets, resolve
from ecgnet.errors import ECGNetError
from ecgnet.training.losses import make_loss


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


def attach(config, split: Split, crop: int | None, loss: nn.Module, cache_dir: Path | None = None,
           data=None, progress: bool = True) -> tuple[Dataset, DistillationLoss]:
    """The training set with the teacher's soft targets of ``config.training`` and the distillation loss
    around ``loss`` (the config's hard loss). ``data`` (the PTB-XL dataset) is needed with unlabelled
    records: its metadata scaling, and its fold 9 and 10 records to refuse."""
    t = config.training
    targets = SoftTargets.load(resolve(t.distill_teacher, config.data.task, cache_dir))
    classes = list(targets.classes)
    if split.y.shape[1] != len(classes):
        raise ECGNetError(f"{t.distill_teacher}: the teacher predicts {len(classes)} classes, the task has "
                          f"{split.y.shape[1]}")
    if t.distill_target == "window" and crop is not None and crop != targets.window:
        raise ECGNetError(f"{t.distill_teacher}: window soft targets are for {targets.window}-sample windows, "
                          f"the student trains on {crop}-sample crops; use distill_target: record")
    dataset = _dataset(split, crop, targets, targets.rows(split.ecg_ids), t.distill_target)
    if t.distill_unlabelled:
        extra = _unlabelled(config, classes, crop, data, cache_dir, progress)
        dataset = ConcatDataset([dataset, extra])
        loss = make_loss(t.loss, np.concatenate([split.y, extra.split.y]), t.focal_gamma)  # masks unknowns
    return dataset, DistillationLoss(loss, t.distill_weight, t.distill_temperature)


def _dataset(split: Split, crop: int | None, targets: SoftTargets, rows: np.ndarray, kind: str) -> DistillCropDataset:
    if kind == "window":
        return DistillCropDataset(split, crop, targets.windows()[rows], targets.starts)
    return DistillCropDataset(split, crop, targets.record()[rows])


def _unlabelled(config, classes: list[str], crop: int | None, data, cache_dir, progress: bool) -> DistillCropDataset:
    from ecgnet.distill import unlabelled

    t = config.training
    if data is None:
        raise ECGNetError("training.distill_unlabelled needs the training data's metadata scaling (train())")
    split, key = unlabelled.read(t.distill_unlabelled, config.data.sampling_rate, len(classes),
                                 data.metadata_scaler, cache_dir, progress)
    evaluation = {int(e) for name in ("val", "test") for e in data.split(name).ecg_ids
                  if np.asarray(e).dtype.kind in "iu"}
    unlabelled.refuse_evaluation_records(split, evaluation, t.distill_unlabelled)
    targets = unlabelled.soft_targets(t.distill_teacher, split, key, classes, cache_dir, progress)
    return _dataset(split, crop, targets, np.arange(len(split.ecg_ids)), t.distill_target)
