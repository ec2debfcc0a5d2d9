"""What a record is known to be, shown beside the model's diagnoses.

- A PTB-XL record (by ``ecg_id``): its statements (SCP codes with likelihoods and descriptions), its
  labels for the model's task by the benchmark's rules (:func:`ecgnet.data.ptbxl.task_labels`) — none
  (``labels`` null, ``labels_note`` says why) for a model of its own classes, which are no PTB-XL task — its
  fold — folds 1–8 trained a PTB-XL run, so its predictions there are optimistic; for a run trained on a
  manifest, whether the record trained it (``RUN/trained_on.txt``) or trained the run it was fine-tuned from —
  and its patient metadata, passed to models that use it.
- An uploaded Challenge record: the SNOMED CT codes of its ``#Dx`` line mapped to PTB-XL superclasses
  (:mod:`ecgnet.data.external`), for models of the superclasses.
"""

from __future__ import annotations

import functools
import math
import threading
from pathlib import Path

from ecgnet.data import external, ptbxl
from ecgnet.data.records import ECGRecord, read_ecg
from ecgnet.errors import ECGNetError
from ecgnet.inference.predictor import Predictor
from ecgnet.runs.describe import thresholds_origin, trained_manifest

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
        sex = None if _value(m["sex"]) is None else ("female" if m["sex"] else "male")
        given = {"age": _value(m["age"]), "sex": sex, "height": _value(m["height"]), "weight": _value(m["weight"])}
        task = reference_task(predictor)
        codes = row["scp_codes"]
        fold = int(row["strat_fold"])
        in_training, note = _fold_note(fold, predictor, self.root / f"{name}.hea")
        reference = {
            "source": "PTB-XL", "ecg_id": int(ecg_id), "fold": fold, "task": task,
            # a model of its own classes (AF, …) has no PTB-XL labels: none, rather than the superclasses
            "labels": None if task is None else sorted(ptbxl.task_labels(codes, statements, task)),
            "labels_note": None if task is not None else
            f"no reference labels: this model's classes ({', '.join(predictor.classes)}) are not a PTB-XL task",
            "in_training": in_training,
            "note": note,
            "statements": [{"code": c, "likelihood": float(v),
                            "description": str(statements.at[c, "description"]) if c in statements.index else ""}
                           for c, v in codes.items()],
            "report": str(row.get("report") or ""), "patient": {k: v for k, v in given.items() if v is not None}}
        return record, given, reference


def reference_task(predictor: Predictor) -> str | None:
    """The PTB-XL task whose labels are the model's classes: its run's ``task``; for a run without one, the
    superclasses when its classes are some of them (a run of before the field, or fine-tuned on some of them);
    else None — a run of its own classes (AF, RBBB, …), which no PTB-XL task labels."""
    task = predictor.info.get("task")
    if task in ptbxl.TASKS:
        return task
    return "superdiagnostic" if predictor.classes and set(predictor.classes) <= set(external.SUPERCLASSES) else None


def header_reference(record: ECGRecord, predictor: Predictor) -> dict | None:
    """The classes of an uploaded record's ``#Dx`` codes: through the label map the run was trained with (run.json's
    ``collection.label_map``), while the file is the one recorded and names one of the codes — as its manifest's
    labels were read; else, for a model of the superclasses, PTB-XL's SNOMED CT mapping; else None."""
    try:
        codes = external.parse_dx(record.comments)
    except ECGNetError:
        return None
    if not codes:
        return None
    mapped = _mapped_reference(codes, predictor)
    if mapped is not None or reference_task(predictor) != "superdiagnostic":
        return mapped
    return {"source": "the header's #Dx codes (SNOMED CT, mapped to PTB-XL superclasses)",
            "codes": codes, "labels": sorted(external.record_superclasses(codes)),
            "unmapped": external.unmapped_codes(codes)}


def _mapped_reference(codes: list[str], predictor: Predictor) -> dict | None:
    """``codes`` through the run's label map, as ``read_manifest`` maps a labels cell; None without a map, with a
    map changed since training (its SHA-256), or one that says nothing of any of them."""
    from ecgnet.data.collections.manifest import map_code

    recorded = (predictor.info.get("collection") or {}).get("label_map") or {}
    mapping = _label_map(recorded.get("path"), recorded.get("sha256"))
    if mapping is None:
        return None
    targets = {c: map_code(mapping, c) for c in codes}
    if all(t is None for t in targets.values()):
        return None
    labels = {t for ts in targets.values() for t in ts or []} & set(predictor.classes)
    return {"source": "the header's #Dx codes, mapped by the label map this run was trained with "
                      f"({Path(recorded['path']).name})",
            "codes": codes, "labels": sorted(labels), "unmapped": [c for c, t in targets.items() if t is None]}


def _label_map(path: str | None, sha256: str | None) -> dict | None:
    """The label map at ``path`` when its SHA-256 is ``sha256`` (parsed once per file state: a 5,000-code YAML map
    takes 0.4 s to read, an upload should not)."""
    if not path or not sha256 or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    return _parsed_label_map(path, sha256, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_label_map(path: str, sha256: str, mtime_ns: int, size: int) -> dict | None:
    from ecgnet.checksum import sha256_file
    from ecgnet.data.collections.manifest import read_label_map

    if sha256_file(path) != sha256:
        return None
    try:
        return read_label_map(path)
    except ECGNetError:
        return None


def _value(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _fold_note(fold: int, predictor: Predictor, header: Path) -> tuple[bool, str]:
    """(whether the record trained the model, what its fold means for it). A PTB-XL run: folds 1–8 trained
    it, fold 9 chose its epoch and thresholds, fold 10 tested it. A run trained on a manifest: the record
    trained it if its ``trained_on.txt`` lists it; folds 1–8 trained the run it was fine-tuned from, if that is
    a PTB-XL run (or cannot be found); fold 9 chose nothing of it and fold 10 did not test it."""
    run_dir = Path(predictor.run_dir)
    origin = thresholds_origin(run_dir)
    info = predictor.info
    if origin == "fold 9" or (origin is None and not info.get("collection")):  # a PTB-XL run
        if fold in ptbxl.TRAIN_FOLDS:
            return True, f"fold {fold}: a training record — the model has seen it, so its diagnosis is optimistic"
        if fold == ptbxl.VAL_FOLD:
            return False, "fold 9: used to choose the thresholds and the epoch, not for training"
        return False, "fold 10: the held-out test fold"
    if "ptbxl" in (info.get("collection") or {}):  # PTB-XL cross-validated: its records trained it
        return True, f"fold {fold}: this run was trained on PTB-XL's records — its diagnosis may be optimistic"
    manifest = trained_manifest(info)
    trained = "this run was trained on " + (Path(manifest).name if manifest else
                                            (info.get("collection") or {}).get("name") or "another collection")
    if _trained_here(run_dir, header):
        return True, (f"fold {fold} of PTB-XL, and one of the records that trained this run (its trained_on.txt "
                      "lists it): its diagnosis is optimistic")
    source, ptbxl_source = _finetuned_from(info)
    if source and fold in ptbxl.TRAIN_FOLDS and ptbxl_source is not False:
        maybe = "" if ptbxl_source else " (if it is a PTB-XL run)"
        return True, (f"fold {fold}: a PTB-XL training record of {source}, the run this one was fine-tuned from"
                      f"{maybe} — its diagnosis may be optimistic; {trained}")
    return False, f"fold {fold} of PTB-XL: not among this run's training records ({trained}, not on PTB-XL's folds)"


def _trained_here(run_dir: Path, header: Path) -> bool:
    """Whether ``RUN/trained_on.txt`` lists the record (by path or fingerprint), as ``evaluate`` counts it."""
    from ecgnet.data.collections.manifest import record_key
    from ecgnet.evaluation.labelled import trained_on_matcher
    from ecgnet.runs.directory import TRAINED_ON

    listed = run_dir / TRAINED_ON
    return listed.is_file() and trained_on_matcher(listed)(str(record_key(header)))


def _finetuned_from(info: dict) -> tuple[str | None, bool | None]:
    """(the run this one was fine-tuned from, whether that is a PTB-XL run — None where it cannot be found)."""
    source = (info.get("finetune") or {}).get("from")
    if not source:
        return None, None
    from ecgnet.runs.bundled import resolve_checkpoint

    try:
        path = resolve_checkpoint(source)
    except ECGNetError:
        return str(source), None
    path = path if path.is_dir() else path.parent
    return str(source), thresholds_origin(path) == "fold 9"
