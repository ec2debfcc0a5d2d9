"""PTB-XL as a :class:`Collection`: any benchmark task's labels, ``strat_fold`` as the folds, the
patients of ``patient_id``, and the signals from PTB-XL's own cache (:mod:`ecgnet.data.signals`).
Rows are in ``ecg_id`` order, as :class:`ecgnet.data.dataset.PTBXL` orders them.

PTB-XL's descriptions of its classes ("myocardial infarction") are PTB-XL's: a manifest's class of the same name
is the site's and has none, unless the manifest is PTB-XL's own (:func:`ptbxl_manifest_descriptions`) or its
classes are exactly PTB-XL's five superclasses (:func:`~ecgnet.data.collections.manifest.read_manifest`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.data import ptbxl, signals
from ecgnet.data.collections.base import Collection
from ecgnet.errors import ECGNetError


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


PTBXL_SOURCE = "ptbxl"  # the source `ecgnet manifest` writes on every row of a PTB-XL manifest
RECORD_FOLDERS = ("records100", "records500")  # ROOT/records100/00000/00001_lr


def ptbxl_manifest_descriptions(classes: list[str], sources, paths) -> dict[str, str]:
    """PTB-XL's descriptions of a manifest's classes when the manifest is PTB-XL's, as ``ecgnet manifest`` writes it
    from a PTB-XL folder (:func:`~ecgnet.data.collections.make.ptbxl_manifest`): every row's source ``ptbxl`` and
    every record (``paths``) in one PTB-XL folder's ``records100/`` or ``records500/``; only its classes that are
    PTB-XL codes. Otherwise {}: a site's class named MI is the site's MI, which PTB-XL does not describe."""
    if not classes or len(paths) == 0 or any(s != PTBXL_SOURCE for s in sources):
        return {}
    roots = {_record_root(Path(p)) for p in paths}
    if len(roots) != 1 or None in roots:
        return {}
    try:
        statements = ptbxl.read_statements(ptbxl.data_root(roots.pop()))
    except ECGNetError:  # not a PTB-XL folder after all (its tables missing or unreadable): no descriptions
        return {}
    described = ptbxl.describe_classes([c for c in classes if c in ptbxl.SCP_CODES], statements)
    return {c: d for c, d in described.items() if d}


def _record_root(record: Path) -> Path | None:
    """The folder above ``records100/`` or ``records500/`` that ``record`` (ROOT/records100/00000/00001_lr) lies in."""
    parents = record.parents
    return parents[2] if len(parents) > 2 and parents[1].name in RECORD_FOLDERS else None


def ptbxl_assignment(folds: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of folds 1–8 (train), 9 (val) and 10 (test)."""
    return {name: np.flatnonzero(np.isin(folds, fs)) for name, fs in ptbxl.SPLITS.items()}
