"""A run's predictions on a labelled collection (a manifest): one row per record, the collection's labels
beside the run's probabilities — what ``ecgnet evaluate --manifest`` scores and ``ecgnet calibrate`` fits on.

Classes are matched by name. A class of the run that the collection does not label is *missing* (not
scored; listed); a class of the collection that the run does not predict is *ignored* (listed). Every
record is read and scored as ``predict`` does (resampled to the run's rate, long records averaged over
10 s segments, metadata from the manifest where it gives some, else from the header). A record that
cannot be read keeps its row with the error and no probabilities — counted and listed, never dropped.

Table columns: ``record`` (as the manifest names it), ``source``, ``patient``, ``y_<class>`` for the
matched classes (1, 0, or empty = unknown), ``p_<class>`` for every class of the run,
``amplitude_trusted``, ``warnings``, ``notes``, ``error`` (empty when scored).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.data.collections.base import Collection
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.ptbxl import SEX_CODES
from ecgnet.errors import ECGNetError
from ecgnet.inference.batch import predict_many, progress_bar
from ecgnet.inference.predictor import Predictor


@dataclass(frozen=True)
class ClassMatch:
    matched: list[str]  # the run's classes the collection labels, in the run's order
    missing: list[str]  # the run's classes the collection does not label: skipped
    ignored: list[str]  # the collection's classes the run does not predict
    warnings: list[str] = field(default_factory=list)  # in words: a name meaning another thing on each side, a typo


# PTB-XL names two things STTC: the superclass (every ST/T change: ischaemia, injury, non-specific changes) and
# one of its subclasses (non-specific ST/T changes: NDT, NST_, DIG, LNGQT). The other classes of a list say which.
_SUPERCLASSES_ONLY = {"MI", "CD", "HYP"}
_SUBCLASSES_ONLY = {"AMI", "IMI", "LMI", "PMI", "ISCA", "ISCI", "ISC_", "NST_", "LVH", "RVH", "SEHYP", "LAO/LAE",
                    "RAO/RAE", "CLBBB", "CRBBB", "ILBBB", "IRBBB", "IVCD", "LAFB/LPFB", "WPW", "_AVB"}


def _sttc_meaning(classes: list[str]) -> str | None:
    names = set(classes)
    if "STTC" not in names or bool(names & _SUPERCLASSES_ONLY) == bool(names & _SUBCLASSES_ONLY):
        return None
    return "superclass" if names & _SUPERCLASSES_ONLY else "subclass"


def match_classes(run_classes: list[str], collection_classes: list[str]) -> ClassMatch:
    have = set(collection_classes)
    matched = [c for c in run_classes if c in have]
    if not matched:
        raise ECGNetError(f"the run predicts {', '.join(run_classes)}; the manifest labels "
                          f"{', '.join(collection_classes)}: no class in common (classes are matched by name; "
                          "map site codes to the run's classes with --label-map)")
    warnings = []
    ours, theirs = _sttc_meaning(run_classes), _sttc_meaning(collection_classes)
    if ours and theirs and ours != theirs:
        meaning = {"superclass": "PTB-XL's superclass STTC (every ST/T change)",
                   "subclass": "PTB-XL's subclass STTC (non-specific ST/T changes only)"}
        warnings.append(f"STTC means {meaning[ours]} to the run but {meaning[theirs]} in the manifest (its other "
                        f"classes are PTB-XL {ours == 'subclass' and 'superclasses' or 'subclasses'}); scored by "
                        "name anyway — a manifest of the run's own task scores it as meant")
    return ClassMatch(matched, [c for c in run_classes if c not in have],
                      [c for c in collection_classes if c not in set(run_classes)], warnings)


def record_paths(collection: Collection) -> list[Path]:
    """Each record's file, resolved against the manifest's folder."""
    base = Path(collection.info.get("manifest", ".")).parent
    return [Path(r) if Path(r).is_absolute() else base / str(r) for r in collection.records]


def _metadata(collection: Collection, i: int) -> dict:
    row = collection.metadata.iloc[i]
    out = {k: float(row[k]) for k in ("age", "height", "weight") if k in row and not np.isnan(row[k])}
    if "sex" in row and not np.isnan(row["sex"]):
        out["sex"] = {code: name for name, code in SEX_CODES.items()}[float(row["sex"])]
    return out


def predict_collection(predictor: Predictor, collection: Collection, progress: bool = True,
                       description: str = "Predicting", limits: ReadLimits = DEFAULT_LIMITS
                       ) -> tuple[pd.DataFrame, ClassMatch]:
    """(one row per record, the class match) — see the module docstring for the columns. ``limits``: what
    a record may declare (:mod:`ecgnet.data.limits`); a record over them gets the error in its row."""
    collection.refuse_misnamed(list(predictor.classes), "they would not be scored")
    try:
        match = match_classes(list(predictor.classes), list(collection.classes))
    except ECGNetError as e:
        used = run_label_map(predictor)
        if used and not collection.info.get("label_map"):  # its site codes read as classes: none is the run's
            raise ECGNetError(f"this run was trained with --label-map {used}: give it here too (--label-map "
                              f"{used}) — read without it, {e}") from None
        raise
    typos = [f"class '{c}' of the manifest is not the run's and is ignored: did you mean the run's '{r}' (not "
             "scored: not labelled in the manifest)? Rename the column or map it with --label-map"
             for c, r in collection.near_misses(list(predictor.classes))]
    match = replace(match, warnings=match.warnings + typos)
    label_col = {c: collection.classes.index(c) for c in match.matched}
    rows = []
    paths = record_paths(collection)
    with progress_bar(progress) as bar:
        task = bar.add_task(f"{description} {len(paths)} records", total=len(paths))
        for i, path in enumerate(paths):
            meta = _metadata(collection, i) if predictor.uses_metadata else {}
            res = predict_many(predictor, [path], resample=True, progress=False, limits=limits, **meta)[0]
            probs = {d["class"]: d["probability"] for d in res.get("diagnoses", [])}
            rows.append({"record": str(collection.records[i]), "source": str(collection.sources[i]),
                         "patient": str(collection.patients[i]),
                         **{f"y_{c}": collection.y[i, k] for c, k in label_col.items()},
                         **{f"p_{c}": probs.get(c, np.nan) for c in predictor.classes},
                         "amplitude_trusted": bool(res.get("amplitude_trusted", False)),
                         "warnings": ";".join(res.get("warnings", [])), "notes": ";".join(res.get("notes", [])),
                         "error": res.get("error", "")})
            bar.advance(task)
    return pd.DataFrame(rows), match


def arrays(table: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels with NaN for unknown, probabilities) of the table's scored rows, for ``classes``."""
    scored = table[table["error"].fillna("") == ""]
    return (scored[[f"y_{c}" for c in classes]].to_numpy(float), scored[[f"p_{c}" for c in classes]].to_numpy(float))


def trained_here(predictor, collection: Collection) -> int:
    """How many of ``collection``'s records trained or validated the run (RUN/trained_on.txt, by path or by
    fingerprint: a copied, renamed, moved or extended manifest holds the same records): its figures on them are
    in-sample. A run trained before the list was kept: all of them when the manifest is the file it was trained
    on, else 0."""
    from ecgnet.data.collections.manifest import record_keys
    from ecgnet.runs.directory import TRAINED_ON

    listed = Path(predictor.run_dir) / TRAINED_ON
    if listed.is_file():
        return sum(map(trained_on_matcher(listed), record_keys(collection)))
    from ecgnet.runs.describe import trained_manifest

    trained = trained_manifest(predictor.info)
    manifest = collection.info.get("manifest")
    same = bool(trained and manifest and Path(trained).resolve() == Path(manifest).resolve())
    return len(collection) if same else 0


def trained_on_matcher(listed: Path):
    """Whether a record (its key) is one of RUN/trained_on.txt's: by path, else — where its signal files' size is
    one a trained record has, so that an external test set is not hashed whole — by fingerprint. Lines are
    ``path``, ``path<TAB>fingerprint`` or ``path<TAB>size<TAB>fingerprint`` (as runs wrote them over time)."""
    from ecgnet.data.fingerprints import fingerprint, signal_size

    paths, sizes, prints, unsized = set(), set(), set(), False
    for line in listed.read_text(encoding="utf-8").splitlines():
        *head, last = line.rsplit("\t", 2) if "\t" in line else [line, ""]
        paths.add(head[0] if head else line)
        if last:
            prints.add(last)
            if len(head) == 2 and head[1]:
                sizes.add(int(head[1]))
            else:
                unsized = True  # a run of before the sizes: every record is a candidate

    def trained(key: str) -> bool:
        if key in paths:
            return True
        return bool(prints) and (unsized or signal_size(key) in sizes) and fingerprint(key) in prints

    return trained


def in_sample_warning(n: int, total: int, consequence: str) -> str | None:
    """The warning for ``n`` of ``total`` scored records that trained or validated the run (None when none did)."""
    if not n:
        return None
    which = "all" if n == total else f"{n} of the {total}"
    return f"the run was trained on {which} records of this manifest: {consequence}"


def for_csv(table):
    """``table`` with its labels (``y_<class>``) and ``fold`` as integers, empty where unknown: written with
    ``float_format``, 1 was '1.000000' and a fold '5.000000' (evaluate's, calibrate's and cross-validation's
    predictions.csv all write them so)."""
    out = table.copy()
    for column in [c for c in out.columns if c.startswith("y_") or c == "fold"]:
        out[column] = out[column].astype("Int64")
    return out


def read_for_run(predictor, manifest, label_map, skip_bad) -> Collection:
    """The manifest read for scoring ``predictor``'s run; a manifest that fails without a label map, for a run
    trained with one, is told which (its codes read as classes gave 'looks like 2 labels' on every row)."""
    from ecgnet.data.collections import read_manifest

    try:
        return read_manifest(manifest, label_map, skip_bad=skip_bad)
    except ECGNetError as e:
        used = run_label_map(predictor)
        if label_map is None and used:
            raise ECGNetError(f"this run was trained with --label-map {used}: give it here too — read without it, "
                              f"{e}") from None  # first: the rows' problems below follow from it
        raise


def run_label_map(predictor) -> str | None:
    """The label map ``predictor``'s run was trained with (run.json → ``collection.label_map.path``), if any."""
    info = getattr(predictor, "info", None) or {}
    return ((info.get("collection") or {}).get("label_map") or {}).get("path")
