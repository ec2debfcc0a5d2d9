"""The records pretraining may see: the training split (folds 1–8) of a task, exactly as ``ecgnet train``
gets it, and never a record of fold 9 (model selection) or fold 10 (the test).

Labels are not used. With the default task ``all`` the split holds every fold 1–8 record that has any SCP
statement — in PTB-XL 1.0.1 every record of folds 1–8 — where ``superdiagnostic`` would leave out the
records without a diagnostic superclass.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ecgnet.data.dataset import PTBXL, Split
from ecgnet.data.ptbxl import TRAIN_FOLDS
from ecgnet.errors import ECGNetError


def pretraining_split(data: PTBXL, max_records: int | None = None, seed: int = 0) -> tuple[Split, dict[int, int]]:
    """Folds 1–8 of ``data``'s task (``max_records`` of them at random, for tests), checked by
    :func:`check_folds` before they are returned; and the number of records per fold."""
    split = data.split("train", max_records, seed)
    per_fold = check_folds(split.ecg_ids, dict(zip(data.labels.ecg_ids.tolist(), data.labels.folds.tolist())))
    return split, per_fold


def check_folds(ecg_ids, fold_of: dict[int, int]) -> dict[int, int]:
    """Refuse any record that is not of folds 1–8 (or whose fold is unknown); returns records per fold."""
    folds = [fold_of.get(int(e)) for e in np.asarray(ecg_ids)]
    bad = [(int(e), f) for e, f in zip(np.asarray(ecg_ids), folds) if f not in TRAIN_FOLDS]
    if bad:
        shown = ", ".join(f"ecg_id {e} (fold {f})" for e, f in bad[:5])
        raise ECGNetError(f"pretraining may only use folds 1–8, but {len(bad)} record(s) are not: {shown}")
    return dict(sorted(Counter(folds).items()))
