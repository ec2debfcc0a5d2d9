"""PTB-XL as a :class:`Collection`: any benchmark task's labels, ``strat_fold`` as the folds, the
patients of ``patient_id``, and the signals from PTB-XL's own cache (:mod:`ecgnet.data.signals`).
Rows are in ``ecg_id`` order, as :class:`ecgnet.data.dataset.PTBXL` orders them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.data import ptbxl, signals
from ecgnet.data.collections.base import Collection


def ptbxl_collection(root: str | Path | None = None, task: str = "superdiagnostic") -> Collection:
    root = ptbxl.data_root(root)
    db, statements = ptbxl.read_database(root), ptbxl.read_statements(root)
    labels = ptbxl.make_labels(db, statements, task)
    ids = labels.ecg_ids
    meta = ptbxl.metadata_table(db).loc[ids].reset_index(drop=True)

    def loader(collection, sampling_rate, cache_dir, workers, progress, skip_bad, limits):  # PTB-XL is within any limits
        column = "filename_lr" if sampling_rate == 100 else "filename_hr"
        cache_ids, array = signals.load_signals(root, db[column].to_dict(), sampling_rate, cache_dir, workers)
        row = {int(e): i for i, e in enumerate(cache_ids)}
        # PTB-XL's own folder: every record read, every record 10 s
        return array, np.array([row[int(e)] for e in collection.records]), {}, {}, None, {}

    return Collection(
        name=f"ptbxl_{task}", records=ids.astype(object), classes=labels.classes, y=labels.y.astype(np.float32),
        patients=db.loc[ids, "patient_id"].astype(int).astype(str).to_numpy(dtype=object),
        sources=np.full(len(ids), "ptbxl", dtype=object), metadata=meta, folds=labels.folds.astype(int),
        descriptions=ptbxl.describe_classes(labels.classes, statements), loader=loader,
        info={"ptbxl": str(root), "task": task})


def ptbxl_assignment(folds: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of folds 1–8 (train), 9 (val) and 10 (test)."""
    return {name: np.flatnonzero(np.isin(folds, fs)) for name, fs in ptbxl.SPLITS.items()}
