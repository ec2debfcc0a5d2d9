"""What a record is known to be, shown beside the model's diagnoses.

- A PTB-XL record (by ``ecg_id``): its statements (SCP codes with likelihoods and descriptions), its
  labels for the model's task by the benchmark's rules (:func:`ecgnet.data.ptbxl.task_labels`), its
  fold — folds 1–8 trained the models, so their predictions there are optimistic — and its patient
  metadata, passed to models that use it.
- An uploaded Challenge record: the SNOMED CT codes of its ``#Dx`` line mapped to PTB-XL superclasses
  (:mod:`ecgnet.data.external`), for superdiagnostic models.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from ecgnet.data import external, ptbxl
from ecgnet.data.records import ECGRecord, read_ecg
from ecgnet.errors import ECGNetError
from ecgnet.inference.predictor import Predictor

_FILES = {100: "filename_lr", 500: "filename_hr"}


class PTBXLRecords:
    """Records of a PTB-XL folder by ``ecg_id``; the tables are read once, on first use."""

    def __init__(self, root: str | Path):
        self.root = ptbxl.data_root(root)
        self._tables = None
        self._lock = threading.Lock()

    def tables(self):
        with self._lock:
            if self._tables is None:
                db = ptbxl.read_database(self.root)
                self._tables = (db, ptbxl.read_statements(self.root), ptbxl.metadata_table(db))
            return self._tables

    def missing(self, ecg_id: int) -> str | None:
        """Why ``ecg_id`` cannot be read (no such record), or None."""
        db = self.tables()[0]
        return None if ecg_id in db.index else f"ecg_id {ecg_id}: no such PTB-XL record (1–{int(db.index.max())})"

    def read(self, ecg_id: int, predictor: Predictor) -> tuple[ECGRecord, dict, dict]:
        """(record at the model's rate, its patient metadata, its reference)."""
        db, statements, meta = self.tables()
        if ecg_id not in db.index:
            raise ECGNetError(self.missing(ecg_id))
        row = db.loc[ecg_id]
        files = [_FILES.get(int(predictor.rate), "filename_lr")] + [f for f in _FILES.values()]
        name = next((row[f] for f in files if (self.root / f"{row[f]}.hea").is_file()), row["filename_lr"])
        record = read_ecg(self.root / f"{name}.hea", predictor.rate, resample=True)
        record.path = Path(f"{name}.hea")
        m = meta.loc[ecg_id]
        given = {"age": _value(m["age"]), "sex": None if _value(m["sex"]) is None else ("female" if m["sex"] else "male"),
                 "height": _value(m["height"]), "weight": _value(m["weight"])}
        task = predictor.info.get("task") or "superdiagnostic"
        codes = row["scp_codes"]
        fold = int(row["strat_fold"])
        reference = {
            "source": "PTB-XL", "ecg_id": int(ecg_id), "fold": fold, "task": task,
            "labels": sorted(ptbxl.task_labels(codes, statements, task)),
            "in_training": fold in ptbxl.TRAIN_FOLDS,
            "note": _fold_note(fold),
            "statements": [{"code": c, "likelihood": float(v),
                            "description": str(statements.at[c, "description"]) if c in statements.index else ""}
                           for c, v in codes.items()],
            "report": str(row.get("report") or ""), "patient": {k: v for k, v in given.items() if v is not None}}
        return record, given, reference


def header_reference(record: ECGRecord, predictor: Predictor) -> dict | None:
    """The superclasses of an uploaded record's ``#Dx`` codes, for superdiagnostic models; else None."""
    if predictor.info.get("task") != "superdiagnostic":
        return None
    try:
        codes = external.parse_dx(record.comments)
    except ECGNetError:
        return None
    if not codes:
        return None
    return {"source": "the header's #Dx codes (SNOMED CT, mapped to PTB-XL superclasses)",
            "codes": codes, "labels": sorted(external.record_superclasses(codes)),
            "unmapped": external.unmapped_codes(codes)}


def _value(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _fold_note(fold: int) -> str:
    if fold in ptbxl.TRAIN_FOLDS:
        return f"fold {fold}: a training record — the model has seen it, so its diagnosis is optimistic"
    if fold == ptbxl.VAL_FOLD:
        return "fold 9: used to choose the thresholds and the epoch, not for training"
    return "fold 10: the held-out test fold"
