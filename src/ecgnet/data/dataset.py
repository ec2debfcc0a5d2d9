"""PTB-XL for one task as arrays per split, and the torch Dataset that yields training crops.

``PTBXL`` joins the three sources on ``ecg_id``: labels of the task (records without one left out),
the signal cache, and the metadata scaled with training-fold statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgnet.data import ptbxl, signals


@dataclass
class Split:
    """One split's records, in ecg_id order."""

    ecg_ids: np.ndarray  # (n,)
    signal: np.ndarray  # (n, 12, samples) float32 mV
    metadata: np.ndarray  # (n, 8) float32, scaled
    y: np.ndarray  # (n, n_classes) float32


class PTBXL:
    def __init__(self, root: Path, task: str = "superdiagnostic", sampling_rate: int = 100,
                 cache_dir: Path | None = None):
        self.root = ptbxl.data_root(root)
        db = ptbxl.read_database(self.root)
        statements = ptbxl.read_statements(self.root)
        self.labels = ptbxl.make_labels(db, statements, task)
        self.descriptions = ptbxl.describe_classes(self.labels.classes, statements)
        column = "filename_lr" if sampling_rate == 100 else "filename_hr"
        cache_ids, self._signals = signals.load_signals(self.root, db[column].to_dict(), sampling_rate, cache_dir)
        self._row = {int(e): i for i, e in enumerate(cache_ids)}
        meta = ptbxl.metadata_table(db)
        self.metadata_scaler = ptbxl.MetadataScaler.fit(meta[db["strat_fold"].isin(ptbxl.TRAIN_FOLDS)])
        self._metadata = meta

    @property
    def classes(self) -> list[str]:
        return self.labels.classes

    def split(self, name: str, max_records: int | None = None, seed: int = 0) -> Split:
        """Records of ``train`` (folds 1–8), ``val`` (9) or ``test`` (10), loaded into memory."""
        mask = self.labels.split(name)
        ids = self.labels.ecg_ids[mask]
        y = self.labels.y[mask]
        if max_records is not None and max_records < len(ids):
            keep = np.sort(np.random.default_rng(seed).choice(len(ids), max_records, replace=False))
            ids, y = ids[keep], y[keep]
        rows = np.array([self._row[int(e)] for e in ids])
        return Split(ids, np.asarray(self._signals[rows]),
                     self.metadata_scaler.transform(self._metadata.loc[ids]), y)


class CropDataset(Dataset):
    """Training samples: a random window of ``crop`` samples (or the whole record if None)."""

    def __init__(self, split: Split, crop: int | None = None):
        self.split, self.crop = split, crop

    def __len__(self) -> int:
        return len(self.split.ecg_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.split.signal[i]
        if self.crop is not None and self.crop < x.shape[-1]:
            start = np.random.randint(0, x.shape[-1] - self.crop + 1)
            x = x[:, start:start + self.crop]
        return {"signal": torch.from_numpy(np.ascontiguousarray(x)),
                "metadata": torch.from_numpy(self.split.metadata[i]),
                "y": torch.from_numpy(self.split.y[i])}
