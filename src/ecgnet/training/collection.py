"""Training on any labelled collection — a manifest or PTB-XL — through the one training loop
(:func:`ecgnet.training.fit.train`): from scratch or fine-tuned from a run, once or cross-validated.

**Once.** The rows are split by the collection's ``fold`` column when it has one (the highest fold is
the test set, the next the validation set: PTB-XL's 10 and 9), else into 10 patient-grouped,
multilabel-stratified folds used the same way. The validation rows choose the checkpoint (early
stopping on their macro AUC) and the thresholds; both are scored as cross-validation scores its folds, blank labels
or not, and reported as rows (:mod:`ecgnet.training.once_report`) — PTB-XL's folds 9 and 10 as a PTB-XL run's.

**Cross-validated** (``folds=K`` or ``leave_out="source"``). Each fold in turn is held out; the other
records are split again into training and an inner validation set (``inner`` of their patients,
grouped and stratified) for early stopping — the held-out fold never chooses anything. The out-of-fold
predictions are written to ``RUN/cv/predictions.csv`` (``record, fold, source, patient, y_<CLASS>, p_<CLASS>``),
per-fold and pooled metrics with bootstrap intervals to ``RUN/cv/metrics.json`` and ``RUN/cv/report.md``
(:mod:`ecgnet.training.cv_report`); with ``--from`` the source model's zero-shot predictions on the same
records are scored beside them, with a paired bootstrap. Then the final model is trained on every record (an
inner validation split for early stopping), and its thresholds are chosen on the pooled out-of-fold predictions.

Scoring (:mod:`ecgnet.training.collection_scoring`) is tolerant of small collections. The command line's
``ecgnet train --manifest/--from`` puts config and collection together in :mod:`ecgnet.training.collection_command`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
import json
from pathlib import Path
from typing import Callable

import numpy as np

from ecgnet.config import Config
from ecgnet.data.collections.base import NO_AUXILIARY_TASK, Collection, CollectionData
from ecgnet.data.collections.folds import inner_split, source_folds, stratified_group_folds
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.scoring import scorable
from ecgnet.fileio import write_json
from ecgnet.training.collection_scoring import paired_vs, predict, score
from ecgnet.training.cv_report import SCORED_ON, write_cv

DEFAULT_FOLDS = 10


# --- splits --------------------------------------------------------------------------------------

def once_assignment(collection: Collection, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Rows for train / val / test, and how they were chosen."""
    folds = collection.folds
    check_fold_column(collection)
    how = "the manifest's fold column"
    if folds is None:
        patients = len(set(collection.patients))
        if patients < 3:
            raise ECGNetError(f"{collection.name}: {patients} patient(s) (a patient's records stay together): training "
                              "once needs at least 3, for training, validation and test")
        k = min(DEFAULT_FOLDS, patients)
        folds = stratified_group_folds(collection.y, collection.patients, k, seed)
        how = f"{k} patient-grouped, multilabel-stratified folds (seed {seed})"
    values = sorted(set(folds.tolist()))
    if len(values) < 3:
        raise ECGNetError(f"{collection.name}: {len(values)} fold(s) in the fold column; training once needs at "
                          "least 3 (train, validation = the second-highest, test = the highest)")
    test, val = values[-1], values[-2]
    return ({"train": np.flatnonzero(~np.isin(folds, (val, test))), "val": np.flatnonzero(folds == val),
             "test": np.flatnonzero(folds == test)},
            f"{how}: fold {test} test, fold {val} validation, the rest training")


def cv_folds(collection: Collection, k: int | None, leave_out: str | None, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(fold number of each row, {fold number: fold name}) and nothing else decided here."""
    if leave_out is not None:
        if leave_out != "source":
            raise ECGNetError(f"--leave-out takes 'source', not '{leave_out}'")
        folds, names = source_folds(collection.sources, collection.patients)
        return folds, {i + 1: n for i, n in enumerate(names)}
    if collection.folds is not None:
        values = sorted(set(collection.folds.tolist()))
        if k is not None and k < 2:
            raise ECGNetError(f"--folds {k}: cross-validation needs at least 2 folds")
        if k is not None and k != len(values):
            raise ECGNetError(f"--folds {k}: the {_where(collection)} fold column has {len(values)} folds ({values}); "
                              f"pass --folds {len(values)} or drop the column")
        check_fold_column(collection)
        return collection.folds, {v: f"fold {v}" for v in values}
    folds = stratified_group_folds(collection.y, collection.patients, k, seed)
    return folds, {v: f"fold {v}" for v in range(1, k + 1)}


def check_fold_column(collection: Collection) -> None:
    """A fold column that puts one patient's records in two folds trains on records of patients it then scores as
    held out: refused, naming them (ECGNet's own folds keep patients together; so do PTB-XL's)."""
    if collection.folds is None:
        return
    folds_of: dict[str, set[int]] = {}
    for patient, fold in zip(collection.patients, collection.folds.tolist()):
        folds_of.setdefault(str(patient), set()).add(int(fold))
    split = [(p, sorted(f)) for p, f in folds_of.items() if len(f) > 1]
    if split:
        named = ", ".join(f"'{p}' (folds {', '.join(map(str, f))})" for p, f in split[:5])
        more = f" and {len(split) - 5} more" if len(split) > 5 else ""
        raise ECGNetError(f"{collection.info.get('manifest', collection.name)}: the fold column puts {len(split)} "
                          f"patient(s) in more than one fold: {named}{more} — a patient's held-out records would be "
                          "scored by a model trained on their other records. Give each patient one fold, or drop the "
                          "fold column (ECGNet then makes patient-grouped folds)")


def _where(collection: Collection) -> str:
    """'manifest's' or 'PTB-XL's', for messages about a collection's columns."""
    return "PTB-XL's" if collection.info.get("ptbxl") else "manifest's"


def cv_splits(collection: Collection, fold_of: np.ndarray, names: dict, inner: float = 0.2, seed: int = 0,
              train_records: int | None = None):
    """For each fold: (fold number, name, training rows, inner validation rows, held-out rows). The inner
    validation set is drawn from the training part only, grouped by patient."""
    for f, name in sorted(names.items()):
        test = np.flatnonzero(fold_of == f)
        rest = np.flatnonzero(fold_of != f)
        if train_records is not None and train_records < len(rest):
            rest = np.sort(np.random.default_rng(seed + f).choice(rest, train_records, replace=False))
        val = inner_split(collection.y[rest], collection.patients[rest], inner, seed + f)
        yield f, name, rest[~val], rest[val], test


# --- training ------------------------------------------------------------------------------------

def fit_once(collection: Collection, assignment: dict, config: Config, runs_dir: Path, source=None,
             mode: str | None = None, progress: bool = True, n_boot: int = 1000, extra: dict | None = None,
             resume: bool = False, reused: Callable[[], None] | None = None, finish: bool = True):
    """One training through fit.train; returns (run directory, model, the data object, run.json), or None
    in a process of a distributed run other than rank 0 (every process trains; rank 0 does the rest).
    ``resume``: a run that finished is reused as it is, one that was cut off continues from its last
    checkpoint, one whose model was saved is not trained again (all only with the config they started with);
    ``reused()`` is called for a finished run reused. ``finish`` False: the caller writes the run's reports and
    marks it complete (fit.train's ``finish``)."""
    from ecgnet.runs import load_run
    from ecgnet.training.fit import train

    data = CollectionData(collection, assignment, config.data.in_memory,
                          source.metadata_scaler if source is not None else None)
    run_dir = Path(runs_dir) / config.name
    digest = split_digest(collection, assignment)
    if resume:
        check_same_split(run_dir, digest)
        if finished(run_dir, config):
            fitted, _, run_info = load_run(run_dir)
            if reused is not None:
                reused()
            return run_dir, fitted, data, run_info
    from ecgnet.training.finetune import check_alpha

    check_alpha(config, source, collection.classes)
    model, ft, callbacks, post_fit = None, None, [], None
    if source is not None:
        from ecgnet.training.finetune import FrozenInEval, interpolate_weights, start_model

        model, ft = start_model(source, collection.classes, mode, config.seed)
        if mode == "head":
            callbacks.append(FrozenInEval())
        alpha = config.training.finetune_alpha
        if alpha is not None:
            start = {k: v.detach().clone() for k, v in model.state_dict().items()}
            post_fit = lambda fitted: interpolate_weights(fitted, start, alpha)  # noqa: E731
            ft["interpolation"] = (f"saved weights = {1 - alpha:g}·start + {alpha:g}·fine-tuned (every floating-point "
                                   "tensor, batch-norm statistics included)")
    info = {"task": _task(collection), "collection": _describe(collection),
            "split_records": {k: int(len(v)) for k, v in assignment.items()}, "split_sha256": digest,
            **(extra or {})}
    if ft is not None:
        info["finetune"] = ft
    def after_fit(fitted):  # inside the run's INCOMPLETE window: a finished run always has its list
        write_trained_on(run_dir, collection, np.r_[assignment["train"], assignment["val"]])
        if post_fit is not None:
            post_fit(fitted)

    run_dir, results = train(config, None, runs_dir, resume=resume, progress=progress, n_boot=n_boot,
                             callbacks=callbacks, data=data, model=model, extra_info=info, post_fit=after_fit,
                             finish=finish)
    if results is None:  # another process of a distributed run: rank 0 predicts and writes
        return None
    fitted, _, run_info = load_run(run_dir, reports_pending_ok=not finish)
    return run_dir, fitted, data, run_info


def refuse_shorter_than_window(collection: Collection, config: Config, skip_bad: bool | None, log) -> Collection:
    """Records shorter than the model's window (a config of 5 s crops: the cache keeps records from 2.5 s): predict
    refuses them, so training and cross-validation do too — one error naming them, or with ``skip_bad`` left out
    and listed, as unreadable records are."""
    window = config.data.window
    if not window or collection.loader is None or "manifest" not in collection.info:
        return collection
    own = collection.signal.own_lengths()
    short = np.flatnonzero(own < window)
    if not len(short):
        return collection
    rate, seconds = config.data.sampling_rate, config.data.crop_seconds
    said = [f"{collection.records[i]}: {own[i] / rate:.1f} s long; the model needs at least {seconds:g} s"
            for i in short]
    if not skip_bad:
        more = f"\n… and {len(said) - 20} more" if len(said) > 20 else ""
        raise ECGNetError(f"{len(said)} record(s) shorter than the model's {seconds:g} s window, which predict refuses"
                          + (" (pass --skip-bad to leave them out)" if skip_bad is False else "") + ":\n"
                          + "\n".join(said[:20]) + more)
    for why in said:
        log(f"skipped {why}")
    keep = np.ones(len(collection), bool)
    keep[short] = False
    return replace(collection.subset(keep), skipped=collection.skipped + tuple(
        (str(collection.records[i]), why) for i, why in zip(short, said)))


def write_trained_on(run_dir: Path, collection: Collection, rows: np.ndarray) -> None:
    """RUN/trained_on.txt: the manifest records whose labels trained or validated the run (what
    :func:`ecgnet.evaluation.labelled.trained_here` counts), each as its resolved path, and, tab-separated, its
    signal files' size and fingerprint (:mod:`ecgnet.data.fingerprints`: the same ECG copied or moved is still
    known); nothing for PTB-XL (its folds say it)."""
    from ecgnet.data.collections.manifest import record_keys
    from ecgnet.data.fingerprints import fingerprint, signal_size
    from ecgnet.fileio import atomic_path
    from ecgnet.runs.directory import TRAINED_ON

    keys = sorted(set(record_keys(collection, rows)))
    if keys:
        with atomic_path(Path(run_dir) / TRAINED_ON) as tmp:
            tmp.write_text("".join(f"{k}\t{signal_size(k) or ''}\t{fingerprint(k) or ''}\n" for k in keys),
                           encoding="utf-8")


def split_digest(collection: Collection, assignment: dict[str, np.ndarray]) -> str:
    """SHA-256 of which records each split holds (by name): what a run is reused for by --resume."""
    h = hashlib.sha256()
    for name in sorted(assignment):
        h.update(name.encode() + b"\0" + "\n".join(map(str, collection.records[assignment[name]])).encode() + b"\0")
    return h.hexdigest()


def check_same_split(run_dir: Path, digest: str) -> None:
    """--resume reuses a finished run only for the split it was trained on (its run.json's ``split_sha256``): a
    leave-one-source-out run resumed as 5-fold reused its folds and reported them as the 5-fold's. (A cut-off
    run is checked as it continues: :func:`ecgnet.runs.directory.check_resumed_data`.)"""
    from ecgnet.runs import INCOMPLETE
    from ecgnet.runs.directory import SPLIT_CHANGED

    if (run_dir / INCOMPLETE).exists():
        return
    try:
        before = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return  # nothing to reuse
    if isinstance(before, dict) and before.get("split_sha256") not in (None, digest):
        raise ECGNetError(SPLIT_CHANGED.format(run_dir=run_dir))


def finished(run_dir: Path, config: Config) -> bool:
    """Whether ``run_dir`` is a complete run of ``config`` (a changed config is an error, not a retrain)."""
    from ecgnet.runs import INCOMPLETE
    from ecgnet.training.fit import pin_or_check_config

    if not (run_dir / "run.json").is_file() or (run_dir / INCOMPLETE).exists():
        return False
    pin_or_check_config(config, run_dir / "config.yaml", resuming=True)
    return True


def _mark_started(run_dir: Path, config: Config) -> None:
    """RUN/INCOMPLETE from the first fold on, for a run that does not exist yet: a cross-validation cut off
    before its final model otherwise left RUN/ holding only cv/, which every reader called 'not an ECGNet run
    directory' instead of saying how to resume. A finished run is left as it is — usable, and checked and
    replaced by the final model's training as any run is (a refused retraining leaves it untouched)."""
    from ecgnet.runs import mark_incomplete, provenance

    if (run_dir / "run.json").is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_incomplete(run_dir, config, provenance())


def _task(collection: Collection) -> str | None:
    """The PTB-XL task a run's classes are, for readers that look it up (serve's references): PTB-XL's own
    task, the superclasses by name, else None (the collection's name is in run.json's ``collection``)."""
    from ecgnet.data.external import SUPERCLASSES

    if collection.info.get("task"):
        return collection.info["task"]
    return "superdiagnostic" if sorted(collection.classes) == sorted(SUPERCLASSES) else None


def _describe(collection: Collection) -> dict:
    return {"name": collection.name, **collection.info, "records": len(collection),
            "skipped": [list(s) for s in collection.skipped]}


def train_collection(collection: Collection, config: Config, runs_dir: Path = Path("runs"), source=None,
                     mode: str | None = None, folds: int | None = None, leave_out: str | None = None,
                     inner: float = 0.2, cache_dir=None, workers: int | None = None, progress: bool = True,
                     n_boot: int = 1000, skip_bad: bool = False, resume: bool = False,
                     log: Callable[[str], None] = lambda _: None, forgetting: bool = False, data_root=None,
                     limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Train (and cross-validate) on ``collection``; returns a summary with the run directory.
    ``limits``: what a record may declare (:mod:`ecgnet.data.limits`; a record over them is unreadable).
    ``resume``: after a kill, the folds (and final model) that finished are reused and the one that was
    cut off continues from its last checkpoint. ``forgetting``: score the final model and its source on
    PTB-XL fold 10 (:mod:`ecgnet.training.forgetting`; ``RUN/forgetting.json``, the report)."""
    if config.training.auxiliary_task:
        raise ECGNetError(NO_AUXILIARY_TASK)
    if resume:
        from ecgnet.runs.directory import require_started_run

        require_started_run(Path(runs_dir) / config.name)
    if forgetting:  # before anything is trained or written
        from ecgnet.training.forgetting import check_forgetting

        check_forgetting(source, data_root)
    check_learnable(collection, log)  # before any signal is read
    if folds is not None or leave_out is not None:  # refused folds: said before the cache is built, nothing written
        cv_folds(collection, folds, leave_out, config.seed)
    if source is not None and mode is None:
        from ecgnet.training.finetune import default_mode

        mode = default_mode(source, collection.classes)
    listed = len(collection.skipped)  # the manifest's rows, already listed by the command
    collection = collection.load_signals(config.data.sampling_rate, cache_dir, workers, progress, skip_bad, limits)
    for _, why in collection.skipped[listed:]:  # and now the records that could not be read ('M.csv line 7 (record
        log(f"skipped {why}")  # x): …' names the record: not its path once more in front)
    collection = refuse_shorter_than_window(collection, config, skip_bad, log)
    from_files = collection.info.get("metadata_from_files") or {}
    if any(from_files.values()):  # where the manifest gives none: as predict and evaluate take them
        log(f"age from the records' own files for {from_files['age']} records, sex for {from_files['sex']} (the "
            "manifest gives none for them; predict and evaluate read them there too)")
    doubtful = collection.info.get("untrusted_amplitude", [])
    for record, why in doubtful[:10]:  # trained on as they are: said, as predict and evaluate say it
        log(f"warning: amplitudes not trusted, trained on as they are: {why}")
    if len(doubtful) > 10:
        log(f"warning: … and {len(doubtful) - 10} more records with amplitudes not trusted (run.json: "
            "collection.untrusted_amplitude); fix their gain, or leave them out of the manifest")
    said = collection.info.get("reader_warnings", [])
    for record, why in said[:10]:  # what predict would print beside these records' diagnoses
        log(f"warning: {why}")
    if len(said) > 10:
        log(f"warning: … and {collection.info.get('reader_warnings_count', len(said)) - 10} more records the readers "
            "warned about (the first 100 in run.json: collection.reader_warnings)")
    run_dir = Path(runs_dir) / config.name
    summary: dict = {"run": str(run_dir), "records": len(collection), "skipped": len(collection.skipped)}
    cv = None
    crossvalidate = folds is not None or leave_out is not None
    if crossvalidate:
        if not resume:  # a finished run of other data is refused before any fold trains (not at the final model)
            from ecgnet.runs.directory import check_same_data

            check_same_data(run_dir, _describe(collection))
        _mark_started(run_dir, config)
        cv = cross_validate(collection, config, run_dir, source, mode, folds, leave_out, inner, progress,
                            n_boot, log, resume=resume)
    if not crossvalidate:
        assignment, how = once_assignment(collection, config.seed)
    else:
        val = inner_split(collection.y, collection.patients, inner, config.seed)
        assignment = {"train": np.flatnonzero(~val), "val": np.flatnonzero(val)}
        how = (f"every record: {int((~val).sum())} training, {int(val.sum())} inner validation "
               f"({inner:.0%} of patients, grouped and stratified) for early stopping")
    log(f"final model: {how}")
    warn_blind_validation(collection.y[assignment["val"]], log)
    fitted = fit_once(collection, assignment, config, Path(runs_dir), source, mode, progress, n_boot,
                      {"split": how, **({"cv": cv["protocol"]} if cv else {})}, resume,
                      reused=lambda: log("final model: finished before, reused"), finish=False)
    if fitted is None:
        return None  # not rank 0 of a distributed run: rank 0 writes and reports
    _, model, data, info = fitted
    from ecgnet.runs import mark_complete, provenance
    from ecgnet.runs.directory import mark_reports_pending
    from ecgnet.training.end_of_run import writing_reports

    session = provenance()
    mark_reports_pending(run_dir, session)  # until what follows is written (a finished model reused: old cv/ too)
    with writing_reports(run_dir, session):  # a failure here: the model is kept, --resume writes what follows
        if forgetting:
            from ecgnet.training.forgetting import forgetting as forgot

            log("scoring the final model and its source on PTB-XL fold 10 (--forgetting)")
            info = {**info, "forgetting": forgot(model, config, data.metadata_scaler, collection.classes, source,
                                                 data_root, n_boot, config.seed, progress)}
            write_json(run_dir / "forgetting.json", info["forgetting"])
            summary["forgetting"] = info["forgetting"]
        if cv is not None:
            threshold_warnings = write_cv(run_dir, collection, cv, info, config.seed, n_boot)
            summary["cv"] = {k: cv[k] for k in ("protocol", "pooled", "zero_shot", "vs_zero_shot") if k in cv}
            summary["cv"]["threshold_warnings"] = threshold_warnings
        elif data.evaluated_splits:  # PTB-XL's folds 9 and 10: evaluated and reported in training as a PTB-XL run is
            summary["scores"] = {s: json.loads((run_dir / s / "metrics.json").read_text()) for s in ("val", "test")}
        else:  # a manifest's validation and test rows: scored as cross-validation scores its folds, and the report
            from ecgnet.training.once_report import score_once

            summary["scores"] = score_once(run_dir, collection, assignment, model, data, config, n_boot, info)
    mark_complete(run_dir)
    return summary


def groups(collection: Collection, rows) -> np.ndarray | None:
    """The interval groups (:attr:`Collection.interval_groups`) of ``rows``."""
    return None if collection.interval_groups is None else collection.interval_groups[rows]


def check_learnable(collection: Collection, log: Callable[[str], None]) -> None:
    """A class positive (or negative) in every labelled record teaches nothing and cannot be scored: warned;
    when no class has both, there is nothing to train on — refused (it trained, and printed 'macro AUC –')."""
    one_sided = []
    for k, c in enumerate(collection.classes):
        known = collection.y[~np.isnan(collection.y[:, k]), k]
        positives = int(known.sum())
        if not 0 < positives < len(known):
            one_sided.append(f"{c} is {'positive' if positives else 'negative'} in all {len(known)} labelled records")
    if len(one_sided) == len(collection.classes):
        raise ECGNetError(f"{collection.name}: nothing to learn — {'; '.join(one_sided)}; a class needs both "
                          "positive and negative records")
    for line in one_sided:
        log(f"warning: {line}: it cannot be learned or scored")


def warn_blind_validation(y_val: np.ndarray, log: Callable[[str], None]) -> None:
    """Say so when the validation records cannot choose an epoch: no class has a known positive and negative
    among them, so the validation AUC is 0.5 at every epoch and early stopping keeps the first."""
    if not scorable(y_val):
        log(f"warning: the {len(y_val)} validation records have no class with both a positive and a negative; "
            "early stopping cannot choose an epoch (it keeps the first) — more records, or fewer folds")


def cross_validate(collection: Collection, config: Config, run_dir: Path, source, mode, k, leave_out, inner,
                   progress, n_boot, log, train_records: int | None = None, resume: bool = False,
                   on_fold=None) -> dict:
    """``train_records``: train each fold on a random subset of this many of its training records
    (a learning curve); the held-out folds stay whole. ``on_fold(name, model, data, test_rows)`` is called
    after each fold's training (for studies that score more than the fold's model)."""
    fold_of, names = cv_folds(collection, k, leave_out, config.seed)
    classes, y, grouped = collection.classes, collection.y, collection.interval_groups
    oof = np.full(y.shape, np.nan)
    per_fold = {}
    splits = list(cv_splits(collection, fold_of, names, inner, config.seed, train_records))
    for i, (f, name, train_rows, val_rows, test) in enumerate(splits):
        which = f"cross-validation {i + 1}/{len(names)} ({name})"
        log(f"{which}: {len(train_rows)} training, "
            f"{len(val_rows)} inner validation, {len(test)} held out")
        unlearnable = [c for k, c in enumerate(classes) if not np.nansum(y[train_rows, k]) > 0]
        if unlearnable:  # leave-one-source-out: a source may hold every positive of a class
            log(f"warning: {name}: no positive of {', '.join(unlearnable)} among its training records; the fold's "
                "model cannot learn it, yet its held-out records are scored and pooled")
        warn_blind_validation(y[val_rows], log)
        fold_config = config.model_copy(update={"name": f"fold_{f}"})
        fitted = fit_once(collection, {"train": train_rows, "val": val_rows}, fold_config, run_dir / "cv", source,
                          mode, progress, n_boot, {"held_out": name}, resume,
                          reused=lambda: log(f"{which}: finished before, reused"))
        if fitted is None:
            continue  # not rank 0
        _, model, data, info = fitted
        oof[test] = predict(model, collection, test, data.metadata_scaler, config)
        if on_fold is not None:
            on_fold(name, model, data, test)
        per_fold[name] = {**score(y[test], oof[test], classes, None, n_boot, config.seed, groups(collection, test)),
                          "train_records": len(train_rows), "inner_validation_records": len(val_rows),
                          "epochs_run": info.get("epochs_run"), "best_epoch": info.get("best_epoch")}
    protocol = {"kind": "leave-one-source-out" if leave_out else f"{len(names)}-fold",
                "folds": {str(f): n for f, n in names.items()},
                "grouping": "patients never split across folds" + (
                    "" if leave_out else f"; the {_where(collection)} fold column" if collection.folds is not None
                    else "; multilabel-stratified"),
                "inner_validation": f"{inner:.0%} of each training part's patients (grouped, stratified) for early "
                                    "stopping; the held-out fold chooses nothing",
                "scored_on": SCORED_ON, "seed": config.seed}
    if not per_fold:
        return None  # not rank 0 of a distributed run
    result = {"protocol": protocol, "folds": fold_of, "oof": oof, "per_fold": per_fold,
              "pooled": score(y, oof, classes, None, n_boot, config.seed, grouped)}
    if source is not None and set(classes) <= set(source.classes):
        order = [source.classes.index(c) for c in classes]
        scaler = source.metadata_scaler or data.metadata_scaler
        zero = predict(source.model, collection, np.arange(len(collection)), scaler, source.config)[:, order]
        result["zero_shot_p"] = zero
        result["zero_shot"] = score(y, zero, classes, None, n_boot, config.seed, grouped)
        result["vs_zero_shot"] = paired_vs(y, oof, zero, classes, n_boot, config.seed, grouped)
        for f, name in names.items():  # like for like: each fold's records, scored alone
            rows = fold_of == f
            per_fold[name]["zero_shot_macro_auc"] = score(y[rows], zero[rows], classes, None, n_boot,
                                                          config.seed, groups(collection, rows))["macro_auc"]
    return result
