"""The records int8 is calibrated on (:mod:`ecgnet.export.int8`): PTB-XL's training folds, or a manifest's records.

**Which.** :func:`calibration_source`: ``--calibration-manifest M.csv`` when given; else PTB-XL when ``--data`` or
$ECGNET_DATA names it (a PTB-XL run's export is unchanged); else the manifest the run was trained on (run.json's
``collection.manifest``) when it is still there. ``--calibration-manifest`` with ``--data`` is refused: both name what
to calibrate on (the option wins over $ECGNET_DATA, which only says where PTB-XL is).

**A manifest's draw** (:func:`manifest_calibration`). Up to :data:`CALIBRATION_RECORDS` rows drawn in an order seeded
with :data:`CALIBRATION_SEED` (the same rows each time) among those the run did not hold out
(:func:`held_out_records`: a run trained once held out its validation and test rows, which its ``val/`` and ``test/``
``predictions.csv`` name; a cross-validation's fold, ``RUN/cv/fold_K``, held out its fold, whose rows the
cross-validation's ``RUN/cv/predictions.csv`` names; a cross-validated run's final model saw every record, some as the
inner validation that chose its epoch, as a fold's model saw its inner validation rows). They are read as training
reads a manifest, under the read limits the run was trained with (:func:`~ecgnet.runs.describe.trained_read_limits`),
into a signal cache in a temporary folder removed afterwards: an export adds nothing to $ECGNET_CACHE. Rows that are
bad, records that cannot be read or are shorter than the graph's shortest input are left out, counted, and the next
drawn instead; fewer than :data:`MIN_MANIFEST_RECORDS` usable records: refused. What was drawn, and from which rows,
is the ``calibration_manifest`` of ``ecgnet.quantization``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.errors import ECGNetError
from ecgnet.export.onnx import segment_range
from ecgnet.runs.describe import CV_PREDICTIONS, trained_manifest, trained_read_limits
from ecgnet.runs.directory import Run

CALIBRATION_RECORDS, CALIBRATION_SEED = 128, 1
MIN_MANIFEST_RECORDS = 16  # a manifest with fewer usable records is refused: too few to place the ranges
MANIFEST_OPTION = "--calibration-manifest"
HELD_OUT_SPLITS = ("val", "test")  # a run trained once: the rows that chose its epoch and thresholds, and scored it


@dataclass(frozen=True)
class CalibrationSource:
    """What int8 is calibrated on: PTB-XL's training folds (``root``) or a manifest's records (``manifest``;
    ``from_run``: the one the run was trained on, taken by default)."""

    root: Path | None = None
    manifest: Path | None = None
    from_run: bool = False


def calibration_source(info: dict, data=None, manifest=None) -> CalibrationSource:
    """Where int8 calibrates, for a run of run.json ``info``: ``manifest`` when given (with ``data`` too: refused);
    else PTB-XL when ``data`` or $ECGNET_DATA names it (as before: a PTB-XL run's export is unchanged); else the
    manifest the run was trained on, when it is still there; else an error saying both ways."""
    from ecgnet.data.ptbxl import DATA_ENV, data_root

    if manifest is not None:
        if data is not None:
            raise ECGNetError(f"{MANIFEST_OPTION} {manifest} and --data {data}: both say what --quantize int8 "
                              "calibrates on (your records, or PTB-XL's training folds); give one")
        path = Path(manifest).expanduser()
        if not path.is_file():
            what = "a folder, not a manifest CSV" if path.is_dir() else "no such file"
            raise ECGNetError(f"{MANIFEST_OPTION} {manifest}: {what}")
        return CalibrationSource(manifest=path)
    trained = trained_manifest(info)
    if data or os.environ.get(DATA_ENV) or not (trained and Path(trained).is_file()):
        try:
            return CalibrationSource(root=data_root(data))
        except ECGNetError as e:
            gone = ("" if not trained else f" (the run's training manifest {trained} is not there any more)"
                    if not Path(trained).is_file() else f" (e.g. the run's training manifest {trained})")
            raise ECGNetError(f"--quantize int8 calibrates on PTB-XL's training folds: {e}; or on records of your own: "
                              f"{MANIFEST_OPTION} M.csv{gone}") from None
    return CalibrationSource(manifest=Path(trained), from_run=True)


@dataclass(frozen=True)
class HeldOut:
    """The records a run held out from training: their keys (:func:`~ecgnet.data.collections.manifest.record_key`,
    as text) and their manifest ``record`` cells; ``known`` False when the run's files do not say. ``named_in``: the
    files that name them, ``what``: which rows they are, in words (for messages)."""

    keys: frozenset[str] = frozenset()
    cells: frozenset[str] = frozenset()
    known: bool = True
    named_in: str = ""
    what: str = ""


def held_out_records(run: Run) -> HeldOut:
    """The records of its training manifest that ``run`` held out: a run trained once on a manifest, its
    validation and test rows (``RUN/val/predictions.csv``, ``RUN/test/predictions.csv``); a cross-validation's
    fold (run.json's ``held_out``: the fold's name), the rows of that fold in the cross-validation's
    ``RUN/cv/predictions.csv``; none for a cross-validated run (its final model saw every record: training or inner
    validation) or one not trained on a manifest."""
    from ecgnet.data.collections.manifest import record_key

    manifest = trained_manifest(run.info)
    if not manifest or "cv" in run.info:
        return HeldOut()
    if "held_out" in run.info:
        cells, named_in = _fold_cells(run, str(run.info["held_out"]))
        what = f"its held-out fold, {run.info['held_out']}"
    else:
        cells, named_in = _validation_and_test_cells(run)
        what = "its validation/test rows"
    if cells is None:
        return HeldOut(known=False, named_in=named_in, what=what)
    base = Path(run.info["collection"].get("records_relative_to") or Path(manifest).parent)
    keys = {str(record_key(Path(c) if Path(c).is_absolute() else base / c)) for c in cells}
    return HeldOut(frozenset(keys), frozenset(cells), named_in=named_in, what=what)


def _validation_and_test_cells(run: Run) -> tuple[set[str] | None, str]:
    """(the ``ecg_id`` cells of ``run``'s validation and test predictions, None unless both files are there; the
    files, in words)."""
    cells: set[str] = set()
    for split in HELD_OUT_SPLITS:
        try:
            table = pd.read_csv(run.dir / split / "predictions.csv", dtype=str, keep_default_na=False)
            cells.update(table["ecg_id"])
        except (OSError, ValueError, KeyError):
            return None, f"its {' and '.join(f'{s}/predictions.csv' for s in HELD_OUT_SPLITS)} are not both there"
    return cells, f"its {' and '.join(f'{s}/predictions.csv' for s in HELD_OUT_SPLITS)}"


def _fold_cells(run: Run, name: str) -> tuple[set[str] | None, str]:
    """(the ``record`` cells of fold ``name`` in the cross-validation's ``RUN/cv/predictions.csv``, ``run`` being its
    ``RUN/cv/fold_K``; None when that file, or the fold in it, is not there; the file, in words). The fold column
    holds fold numbers: ``RUN/cv/metrics.json``, written with it, maps them to the names (``protocol.folds``: "fold
    2", or a source left out)."""
    cv = Path(os.path.abspath(run.dir)).parent.parent  # the fold given as '.', 'fold_2' or '../fold_2' too
    path = cv / CV_PREDICTIONS
    if not path.is_file():
        return None, f"the cross-validation's {path}, which names the rows it held out ({name}), is not there"
    try:
        folds = json.loads((cv / "cv" / "metrics.json").read_text())["protocol"]["folds"]
        numbers = {str(number) for number, fold in folds.items() if fold == name}
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        cells = set(table.loc[table["fold"].str.strip().isin(numbers), "record"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        cells = set()
    if not cells:
        return None, f"the cross-validation's {path} does not list the rows it held out ({name})"
    return cells, f"the cross-validation's {path}"


def _held_out_rows(run: Run, collection, manifest: Path) -> tuple[np.ndarray, str, str]:
    """(which rows of ``collection``, read from ``manifest``, the run held out; what is drawn from, and which rows
    were held out, in words). A row is held out when its record is one the run held out (by file; on the training
    manifest itself by its cell too). On the training manifest of a run whose held-out rows cannot be told: refused."""
    from ecgnet.data.collections.manifest import record_keys

    trained = trained_manifest(run.info)
    same = bool(trained) and Path(trained).resolve() == manifest.resolve()
    if not trained:
        return np.zeros(len(collection), bool), "every row (the run was not trained on a manifest)", ""
    if "cv" in run.info:
        return np.zeros(len(collection), bool), ("every row (the run was cross-validated: its final model saw every "
                                                 "record of its manifest, training on all but the inner validation "
                                                 "rows that chose its epoch)"), ""
    held = held_out_records(run)
    if not held.known:
        if same:
            raise ECGNetError(f"{run.dir}: cannot tell which rows of {manifest} the run held out ({held.named_in}), "
                              "and int8 calibrates only on rows it trained on: give --calibration-manifest with "
                              "records it did not hold out, or --data for PTB-XL's training folds")
        return np.zeros(len(collection), bool), ("every row (which records the run held out is not known: "
                                                 f"{held.named_in})"), held.what
    keys = record_keys(collection)
    rows = np.array([k in held.keys or (same and str(c) in held.cells) for k, c in zip(keys, collection.records)],
                    bool)
    if "held_out" in run.info:
        return rows, (f"the rows the fold's model trained on: those of {held.what} (RUN/cv/predictions.csv) left "
                      "out; its inner validation rows, which chose its epoch but scored nothing, may be drawn, as for "
                      "a cross-validated run's final model"), held.what
    return rows, ("the rows the run trained on: those of its validation and test rows (RUN/val/ and RUN/test/"
                  "predictions.csv) left out"), held.what


@dataclass(frozen=True)
class ManifestRecords:
    """A manifest's calibration records: signals (records, 12, samples) as cached (10 s rows), each record's own
    samples at the start of its row (``lengths``), and their metadata scaled as the run scales them."""

    signal: np.ndarray
    lengths: np.ndarray
    metadata: np.ndarray


def manifest_calibration(run: Run, manifest: str | Path, from_run: bool = False) -> tuple[ManifestRecords, dict]:
    """(up to :data:`CALIBRATION_RECORDS` records of ``manifest``, what they are: ``calibration_manifest``).
    Records are drawn in a seeded order (:data:`CALIBRATION_SEED`) among the rows the run did not hold out, and read
    as training reads a manifest (its rows' labels ignored; bad rows and unreadable records left out, counted) at the
    run's rate and under its read limits, into a temporary cache; a record shorter than the graph's shortest input
    (a window; a late-fusion graph's: its window, or 10 s where its time axis is fixed) is left out too, and the
    next drawn instead. Fewer than :data:`MIN_MANIFEST_RECORDS` usable records: refused."""
    from ecgnet.checksum import sha256_file
    from ecgnet.data.collections.manifest import read_manifest
    from ecgnet.data.ptbxl import MetadataScaler

    manifest = Path(manifest)
    collection = read_manifest(manifest, labelled=False, skip_bad=True)
    held, drawn_from, held_what = _held_out_rows(run, collection, manifest)
    limits = trained_read_limits(run.info, run.dir)
    need = segment_range(run)[0]
    eligible = np.flatnonzero(~held)
    order = eligible[np.random.default_rng(CALIBRATION_SEED).permutation(len(eligible))]
    signals, lengths, metadata, records, unreadable, short, drawn = [], [], [], 0, 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="ecgnet-int8-", ignore_cleanup_errors=True) as cache:
        while records < CALIBRATION_RECORDS and drawn < len(order):  # the next ones drawn for those left out
            rows = np.sort(order[drawn:drawn + CALIBRATION_RECORDS - records])
            drawn += len(rows)
            part = collection.subset(rows).load_signals(run.rate, cache, progress=False, skip_bad=True, limits=limits)
            unreadable += len(part.skipped) - len(collection.skipped)
            own = part.signal.own_lengths()
            usable = np.flatnonzero(own >= need)
            short += len(own) - len(usable)
            records += len(usable)
            signals.append(np.asarray(part.signal.take(usable), dtype=np.float32))  # a copy: the cache goes
            lengths.append(own[usable])
            metadata.append(part.metadata.iloc[usable])
            del part
    account = {"path": str(manifest.resolve()), "sha256": sha256_file(manifest), "records": records,
               "seed": CALIBRATION_SEED, "rows": len(collection), "rows_skipped": len(collection.skipped),
               "held_out": int(held.sum()), "drawn_from": drawn_from,
               "drawn": drawn, "unreadable": unreadable, "shorter_than_input": short,
               "input_seconds": need / run.rate, "read_limits": asdict(limits),
               "chosen": "the run's training manifest (run.json: collection.manifest)" if from_run else MANIFEST_OPTION}
    if records < MIN_MANIFEST_RECORDS:
        left = [f"{n} {what}" for n, what in ((len(collection.skipped), "bad rows skipped"),
                                               (int(held.sum()), f"held out by the run ({held_what})"),
                                               (unreadable, "unreadable"),
                                               (short, f"shorter than the graph's shortest input, "
                                                       f"{need / run.rate:g} s")) if n]
        raise ECGNetError(f"{manifest}: {records} usable record(s) for int8 calibration"
                          + (f" ({', '.join(left)})" if left else "")
                          + f"; it needs at least {MIN_MANIFEST_RECORDS} (it takes up to {CALIBRATION_RECORDS}): give "
                          "a manifest with more records, or --data for PTB-XL's training folds")
    scaler = run.info.get("metadata_scaler") or {"mean": [0.0] * 4, "std": [1.0] * 4}  # as predict scales
    scaled = MetadataScaler(np.asarray(scaler["mean"]), np.asarray(scaler["std"])).transform(pd.concat(metadata))
    return ManifestRecords(np.concatenate(signals), np.concatenate(lengths), scaled), account
