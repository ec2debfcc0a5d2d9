"""``ecgnet calibrate RUN --manifest M.csv --site NAME``: a run's operating points for one site.

The run predicts the manifest's records (optionally only those of one ``source``); on them, per class, a
probability calibration map and then a threshold are fitted (:mod:`ecgnet.evaluation.site_calibration`)
and stored in the run as the profile ``RUN/profiles/<site>.json`` (:mod:`ecgnet.runs.profiles`). The
report beside it (``RUN/profiles/<site>/``) scores the profile on held-out records only: k-fold
cross-fitting, patient-grouped and multilabel-stratified. Classes of the run that the manifest does not
label keep the run's threshold and no calibration.

``ecgnet calibrate RUN --site NAME --from-cv`` (:func:`calibrate_from_cv`) fits the same profile, the same
way, on the run's cross-validation instead: the out-of-fold probabilities and labels of RUN/cv/predictions.csv.
A site with ~100 labelled records trains the final model on all of them (``train --folds K``), so the final
model's own probabilities of those records are in-sample; each out-of-fold probability is that of a fold model
that never saw the record. The profile is then applied to the final model's probabilities — the usual
cross-fitting approximation, which the profile, its report and the terminal state. Both ways share
:func:`fit_profile`: labels, probabilities and patients in, profile and report out.

A bundled model lives inside the installed package, which is not the place to write: ``copy_to`` copies
the run directory first, and the profile goes into the copy.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
from pathlib import Path

import numpy as np

from ecgnet.checksum import sha256_file
from ecgnet.data.collections.base import Collection
from ecgnet.data.collections.folds import stratified_group_folds
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.labelled import for_csv, in_sample_warning, predict_collection, read_for_run, trained_here
from ecgnet.evaluation.recalibration import KINDS
from ecgnet.evaluation.scoring import FEW, few_classes
from ecgnet.evaluation.site_calibration import SITE_METHODS, before_after, cross_fit, fit_site
from ecgnet.fileio import atomic_path
from ecgnet.runs import profiles
from ecgnet.runs.describe import CV_PREDICTIONS, trained_manifest
from ecgnet.runs.directory import weights_sha256

DEFAULT_SHRINKAGE = 40.0  # chosen on sites drawn from PTB-XL's site 2: reports/own_data/calibration/shrinkage.md


IN_SAMPLE_SITE = ("its probabilities on them are in-sample, so the 'held-out' figures below are optimistic — "
                  "calibrate on records the run has not seen")


def default_shrinkage(method: str) -> float:
    """Youden and F1 thresholds are shrunk by default; a target-sensitivity threshold is not (shrinking it
    would break the sensitivity asked for), nor are the run's own."""
    return DEFAULT_SHRINKAGE if method in ("youden", "f1") else 0.0


PROTOCOL = ("Scored on held-out records only: the site's records are split into {k} folds (patient-grouped, "
            "multilabel-stratified); each fold is calibrated and thresholded by the profile fitted on the other "
            "{k1} folds, and the held-out results are pooled. Thresholds fitted and scored on the same records would "
            "be optimistic. The stored profile is fitted on all {n} records; these figures estimate how it does on "
            "the site's next records.")


def prepare_run_dir(run_dir: Path, copy_to: Path | None) -> Path:
    """The run directory to write the profile into: ``copy_to`` (a copy of the run, made if absent), or the
    run itself — refused for a bundled model."""
    from ecgnet.runs.bundled import is_bundled

    if copy_to is None:
        if is_bundled(run_dir):
            raise ECGNetError(f"{Path(run_dir).name} is a bundled model (inside the installed package): give "
                              f"--copy-to DIR to calibrate a copy of it, e.g. --copy-to runs/{Path(run_dir).name}")
        return Path(run_dir)
    copy_to = Path(copy_to)
    if copy_to.exists():
        if not (copy_to / "run.json").is_file() or sha256_file(copy_to / "model.safetensors") != \
                sha256_file(Path(run_dir) / "model.safetensors"):
            raise ECGNetError(f"{copy_to}: exists and is not a copy of {run_dir} (same weights); "
                              "choose another --copy-to")
        return copy_to
    copy_to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_dir, copy_to, ignore=shutil.ignore_patterns(profiles.PROFILES, "checkpoints"))
    return copy_to


def fit_and_cross_fit(y, p, patients, fallback, classes, method: str, target_sensitivity: float, calibration: str,
                      folds: int, seed: int, n_boot: int, shrinkage: float = 0.0):
    """(profile fitted on all records, held-out calibrated probabilities, held-out thresholds, fold of each
    record (0-based), before/after evaluation): the computation behind a profile and its report."""
    fit_kwargs = dict(method=method, target_sensitivity=target_sensitivity, calibration=calibration, fallback=fallback,
                      shrinkage=shrinkage)
    site_fit = fit_site(y, p, **fit_kwargs)
    k = min(folds, len(set(map(str, patients))))
    fold_of = stratified_group_folds(y, patients, k, seed) - 1
    q, held_t = cross_fit(y, p, fold_of, **fit_kwargs)
    evaluation = before_after(y, p, fallback, q, held_t, classes, n_boot=n_boot, seed=seed, groups=patients)
    evaluation.update(folds=k, seed=seed, protocol=PROTOCOL.format(k=k, k1=k - 1, n=len(y)),
                      warnings=worse_than_run(evaluation) + fragile(evaluation))
    return site_fit, q, held_t, fold_of, evaluation


def worse_than_run(evaluation: dict) -> list[str]:
    """A line per class whose held-out balanced accuracy is lower with the site's profile than with the run's
    thresholds, the whole interval of the difference below zero."""
    out = []
    for c, e in evaluation["per_class"].items():
        d = e.get("difference") or {}
        if d.get("high") is not None and d["high"] < 0:
            out.append(f"{c}: held-out balanced accuracy {e['before']['balanced_accuracy']:.3f} with the run's "
                       "threshold, "
                       f"{e['after']['balanced_accuracy']:.3f} with the site's (difference {d['value']:+.3f} "
                       f"[{d['low']:+.3f}, {d['high']:+.3f}]): worse on held-out records; --method run "
                       "keeps the run's decisions")
    return out


def fragile(evaluation: dict) -> list[str]:
    """Lines for what the held-out figures cannot vouch for: a calibration that made the probabilities less
    reliable on held-out records (ECE up by more than 0.02), and classes with fewer than
    :data:`~ecgnet.evaluation.scoring.FEW` positives or negatives at the site."""
    out = []
    for c, e in evaluation["per_class"].items():
        before, after = e.get("ece_before"), e.get("ece_after")
        if before is not None and after is not None and after > before + 0.02:
            out.append(f"{c}: held-out ECE {e['ece_before']:.3f} before calibration, {e['ece_after']:.3f} after: the "
                       "calibration fitted on these records does not carry to new ones; --calibration none keeps "
                       "the run's probabilities")
    few = few_classes({c: e for c, e in evaluation["per_class"].items() if "before" in e})  # the scored ones
    if few:
        out.append(f"fewer than {FEW} positives or negatives for {', '.join(few)}: their threshold and calibration "
                   "rest on too few cases to trust (label more records of the site)")
    return out


def check_options(site: str, method: str, calibration: str, target_sensitivity: float,
                  shrinkage: float = 0.0) -> None:
    """Bad options are one error before anything is read, copied or written."""
    profiles.check_site_name(site)
    if method not in SITE_METHODS:
        raise ECGNetError(f"--method must be one of {', '.join(SITE_METHODS)}, not '{method}'")
    if calibration not in KINDS:
        raise ECGNetError(f"--calibration must be one of {', '.join(KINDS)}, not '{calibration}'")
    if not 0 < target_sensitivity <= 1:
        raise ECGNetError(f"--target-sensitivity must be in (0, 1], not {target_sensitivity}")
    if not (np.isfinite(shrinkage) and shrinkage >= 0):
        raise ECGNetError(f"--shrinkage must be a number >= 0 (0: the site's thresholds as fitted), not {shrinkage}")
    if shrinkage > 0 and method in ("sensitivity", "run"):  # the sensitivity asked for would be missed; nothing to pull
        raise ECGNetError(f"--shrinkage applies to --method youden or f1, not {method} "
                          + ("(a shrunk threshold misses the sensitivity asked for)" if method == "sensitivity" else
                             "(it keeps the run's thresholds)"))


def calibrate_site(predictor, collection: Collection, site: str, method: str = "youden",
                   target_sensitivity: float = 0.9, calibration: str = "temperature", folds: int = 5,
                   source: str | None = None, n_boot: int = 1000, seed: int = 0, progress: bool = True,
                   run_dir: Path | None = None, shrinkage: float | None = None,
                   limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Fit, cross-fit and store the profile ``site`` on the run's probabilities of the manifest's records;
    returns it (with ``path`` and ``report`` added). ``shrinkage`` None: :func:`default_shrinkage` of the method."""
    shrinkage = default_shrinkage(method) if shrinkage is None else shrinkage
    check_options(site, method, calibration, target_sensitivity, shrinkage)
    if source is not None:
        rows = collection.sources == source
        if not rows.any():
            raise ECGNetError(f"no record of source '{source}' in the manifest (sources: "
                              f"{', '.join(sorted(set(map(str, collection.sources))))})")
        collection = collection.subset(rows)
    run_dir = Path(run_dir or predictor.run_dir)
    classes = list(predictor.classes)
    table, match = predict_collection(predictor, collection, progress, description="Predicting the site's",
                                      limits=limits)
    ok = (table["error"].fillna("") == "").to_numpy()
    if ok.sum() < 2:
        raise ECGNetError(f"only {int(ok.sum())} of {len(table)} records could be scored; nothing to calibrate on")
    scored = table[ok]
    y = np.stack([scored[f"y_{c}"].to_numpy(float) if c in match.matched else np.full(len(scored), np.nan)
                  for c in classes], axis=1)
    p = scored[[f"p_{c}" for c in classes]].to_numpy(float)
    manifest = collection.info.get("manifest")
    trained = trained_here(predictor, collection)
    in_sample = in_sample_warning(trained, len(collection), IN_SAMPLE_SITE + from_cv_hint(run_dir, site))
    fitted_on = {"probabilities": "the run's own",
                 "statement": "the run's own probabilities (its final model's), predicted by calibrate on the "
                              "manifest's records" + (f" — {trained} of them trained or validated the run: in-sample"
                                                      if trained else "")}
    return fit_profile(predictor, run_dir, site, table, ok, y, p, fitted_on=fitted_on,
                       manifest={"path": manifest, "sha256": sha256_file(manifest) if manifest else None,
                                 "records": len(table), "records_used": int(ok.sum()), "source": source,
                                 "rows_skipped": [{"row": r, "why": w} for r, w in collection.skipped],
                                 "unreadable": table.loc[~ok, ["record", "error"]].to_dict("records"),
                                 "classes_missing": match.missing, "classes_ignored": match.ignored},
                       not_fitted={c: "not labelled in the manifest" for c in match.missing},
                       warnings=(match.warnings, [in_sample] if in_sample else []), long_records=predictor.long_records,
                       method=method, target_sensitivity=target_sensitivity, calibration=calibration, folds=folds,
                       seed=seed, n_boot=n_boot, shrinkage=shrinkage)


def fit_profile(predictor, run_dir: Path, site: str, table, ok: np.ndarray, y: np.ndarray, p: np.ndarray, *,
                fitted_on: dict, manifest: dict, not_fitted: dict, warnings: tuple[list, list], long_records: str,
                method: str, target_sensitivity: float, calibration: str, folds: int, seed: int, n_boot: int,
                shrinkage: float, protocol_note: str = "") -> dict:
    """The profile and its report from labels ``y`` (NaN unknown) and probabilities ``p`` of the rows ``ok`` of
    ``table`` (one row per record: ``record``, ``patient``…; the report's predictions.csv), whichever way the
    probabilities were obtained (``fitted_on`` says which): fitted on every record, cross-fitted for the report,
    stored in ``run_dir``. ``not_fitted``: why a class was not fitted, where the records cannot say it;
    ``warnings``: lines before and after the evaluation's own."""
    classes = list(predictor.classes)
    run_t = predictor.thresholds or {}
    fallback = np.array([run_t.get(c, 0.5) for c in classes])
    patients = table.loc[ok, "patient"].to_numpy()
    site_fit, q, held_t, fold_of, evaluation = fit_and_cross_fit(
        y, p, patients, fallback, classes, method=method, target_sensitivity=target_sensitivity,
        calibration=calibration, folds=folds, seed=seed, n_boot=n_boot, shrinkage=shrinkage)
    if protocol_note:
        evaluation["protocol"] += " " + protocol_note
    from ecgnet.runs.origin import provenance

    origin = provenance()
    fitted = {c: True if site_fit["fitted"][i] else not_fitted.get(c, site_fit["reasons"][i])
              for i, c in enumerate(classes)}
    profile = {"site": site, "run": predictor.info["name"], "weights_sha256": weights_sha256(run_dir),
               "classes": classes,
               "thresholds": dict(zip(classes, site_fit["thresholds"])),
               "calibrators": dict(zip(classes, site_fit["calibrators"])),
               "method": method, "target_sensitivity": target_sensitivity if method == "sensitivity" else None,
               "shrinkage": shrinkage if method != "run" else None,
               "calibration": calibration, "long_records": long_records, "fitted": fitted,
               "run_thresholds": dict(zip(classes, fallback.tolist())),
               "run_thresholds_from": f"the run's val/metrics.json (chosen on {predictor.thresholds_from})" if run_t
               else "none in the run: 0.5", "run_thresholds_chosen_on": predictor.thresholds_from if run_t else None,
               "fitted_on": fitted_on, "manifest": manifest,
               "evaluation": {**evaluation, "warnings": warnings[0] + evaluation.get("warnings", []) + warnings[1]},
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **{key: origin.get(key) for key in ("command", "git_revision", "git_dirty", "source_sha256")}}
    earlier = profiles.profile_path(run_dir, site)
    if earlier.is_file():  # replaced, and said so: a profile fitted on 2 records overwrote one fitted on 46
        try:
            before = json.loads(earlier.read_text())
            profile["replaces"] = {"records": before["manifest"]["records_used"], "date": before.get("date"),
                                   "manifest": before["manifest"].get("path")}
        except (OSError, ValueError, KeyError, TypeError):
            profile["replaces"] = {"records": None, "date": None, "manifest": None}
    out = profiles.report_dir(run_dir, site)
    table = table.copy()
    for i, c in enumerate(classes):  # the held-out view the report scores
        table.loc[ok, f"q_{c}"] = q[:, i]
        table.loc[ok, f"t_{c}"] = held_t[:, i]
    table.loc[ok, "fold"] = fold_of + 1
    with atomic_path(out / "predictions.csv") as tmp:
        for_csv(table).to_csv(tmp, index=False, float_format="%.6f")
    from ecgnet.evaluation.site_report import write_site_report

    report = write_site_report(out, profile, y, p, q)
    path = profiles.save_profile(run_dir, profile)  # last: a profile exists only with its report
    return {**profile, "path": str(path), "report": str(report)}


# --- from the cross-validation's out-of-fold predictions (RUN/cv/predictions.csv: CV_PREDICTIONS) ------------


def from_cv_hint(run_dir: Path, site: str) -> str:
    """For the in-sample warning: ``--from-cv`` where the run was cross-validated (its RUN/cv/predictions.csv
    is there and the run's last training wrote it)."""
    try:
        cross_validation(run_dir)
    except ECGNetError:
        return ""
    return ("; this run was cross-validated, so fit the profile on its out-of-fold predictions instead: "
            f"`ecgnet calibrate {shlex.quote(str(run_dir))} --site {site} --from-cv`")


def cross_validation(run_dir: Path) -> dict:
    """The run's cross-validation as run.json records it (``cv``: kind, folds…), checked to be the one whose
    out-of-fold predictions are RUN/cv/predictions.csv; one clear error for a run that was not cross-validated."""
    run_dir = Path(run_dir)
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        info = {}
    if not (run_dir / CV_PREDICTIONS).is_file():
        raise ECGNetError(f"{run_dir}: no {CV_PREDICTIONS} — the run was trained once, not cross-validated, so "
                          "there are no out-of-fold predictions to fit on: calibrate it with --manifest M.csv on "
                          "records the run has not seen, or train it again with --folds K (`ecgnet train --manifest "
                          "M.csv … --folds 5`) and calibrate that with --from-cv")
    if not isinstance(info.get("cv"), dict):  # cv/ left behind by an earlier training of this name
        raise ECGNetError(f"{run_dir / CV_PREDICTIONS}: from an earlier training of this run — its run.json says "
                          f"the run was last trained without cross-validation ({info.get('split') or 'once'}), so "
                          "these out-of-fold predictions are not of its models: calibrate with --manifest M.csv on "
                          "records the run has not seen, or train it again with --folds K")
    try:
        written = json.loads((run_dir / "cv" / "metrics.json").read_text()).get("protocol")
    except (OSError, ValueError, AttributeError):
        written = None
    same = ("kind", "folds", "seed")  # what makes it another cross-validation (not the wording of its protocol)
    if not isinstance(written, dict) or any(written.get(k) != info["cv"].get(k) for k in same):  # a retraining cut off
        raise ECGNetError(f"{run_dir / CV_PREDICTIONS}: not of the run's last cross-validation (cv/metrics.json "
                          f"describes {json.dumps(written)[:120]}, run.json {json.dumps(info['cv'])[:120]}): its "
                          "training was cut off before writing them — finish it (`ecgnet train … --resume`)")
    return info["cv"]


def read_cv_predictions(run_dir: Path, classes: list[str]):
    """RUN/cv/predictions.csv as (table, y, p, classes not labelled there): the out-of-fold probabilities and
    labels (NaN unknown) in the run's class order. Refused: classes other than the run's, a probability
    missing or outside [0, 1], a label other than 1, 0 or empty."""
    import pandas as pd

    path = Path(run_dir) / CV_PREDICTIONS
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not readable ({e})") from None
    predicted = [col[2:] for col in raw.columns if col.startswith("p_")]
    if sorted(predicted) != sorted(classes):
        raise ECGNetError(f"{path}: its probabilities are of {', '.join(predicted) or 'no class'}, the run predicts "
                          f"{', '.join(classes)} — not this run's cross-validation (train it again with --folds K)")
    lacking = [c for c in ("record", "patient") if c not in raw.columns]
    if lacking or raw.empty:
        raise ECGNetError(f"{path}: " + (f"no column {', '.join(lacking)}" if lacking else "no records"))

    def numbers(column: str) -> np.ndarray:
        try:
            return pd.to_numeric(raw[column].str.strip().replace("", np.nan)).to_numpy(float)
        except ValueError as e:
            raise ECGNetError(f"{path}: column {column}: {e}") from None

    p = np.stack([numbers(f"p_{c}") for c in classes], axis=1)
    bad = ~(np.isfinite(p) & (p >= 0) & (p <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ECGNetError(f"{path}: {int(bad.any(axis=1).sum())} records without an out-of-fold probability in "
                          f"[0, 1] (the first: line {row + 2}, {raw['record'].iloc[row]}): not a finished "
                          "cross-validation")
    unlabelled = [c for c in classes if f"y_{c}" not in raw.columns]
    y = np.stack([numbers(f"y_{c}") if c not in unlabelled else np.full(len(raw), np.nan) for c in classes], axis=1)
    if not np.isin(y[~np.isnan(y)], (0.0, 1.0)).all():
        raise ECGNetError(f"{path}: labels y_<CLASS> must be 1, 0 or empty (unknown)")
    table = raw[[c for c in ("record", "fold", "source", "patient") if c in raw.columns]].rename(
        columns={"fold": "cv_fold"})  # "fold" is the report's cross-fitting fold
    table = pd.concat([table, pd.DataFrame(y, columns=[f"y_{c}" for c in classes]),
                       pd.DataFrame(p, columns=[f"p_{c}" for c in classes])], axis=1)
    return table, y, p, unlabelled


def cv_statement(cv: dict, n: int) -> str:
    """What a profile fitted with ``--from-cv`` was fitted on, in words (profile, report, terminal)."""
    k = len(cv.get("folds") or {}) or "K"
    kind = "" if cv.get("kind") in (None, f"{k}-fold") else f", {cv['kind']}"
    return (f"the cross-validation's out-of-fold predictions ({CV_PREDICTIONS}, {k} fold models{kind}): each of "
            f"the {n} records scored by the fold model that did not train on it — not the final "
            "model's own probabilities, which are in-sample for every record it trained on. predict applies the "
            "profile to the final model's probabilities: the usual cross-fitting approximation (the fold models, "
            "each trained without its fold, stand in for the final model trained on every record)")


def calibrate_from_cv(predictor, site: str, method: str = "youden", target_sensitivity: float = 0.9,
                      calibration: str = "temperature", folds: int = 5, source: str | None = None,
                      n_boot: int = 1000, seed: int = 0, run_dir: Path | None = None,
                      shrinkage: float | None = None) -> dict:
    """The profile ``site`` fitted, as :func:`calibrate_site` fits it, on the out-of-fold probabilities and
    labels of the run's cross-validation (RUN/cv/predictions.csv) instead of the run's own probabilities
    of a manifest: for a site whose every labelled record trained the final model."""
    shrinkage = default_shrinkage(method) if shrinkage is None else shrinkage
    check_options(site, method, calibration, target_sensitivity, shrinkage)
    run_dir = Path(run_dir or predictor.run_dir)
    cv = cross_validation(run_dir)
    classes = list(predictor.classes)
    table, y, p, unlabelled = read_cv_predictions(run_dir, classes)
    if source is not None:
        sources = table["source"].to_numpy() if "source" in table.columns else np.array([""] * len(table))
        rows = sources == source
        if not rows.any():
            raise ECGNetError(f"no record of source '{source}' in {CV_PREDICTIONS} (sources: "
                              f"{', '.join(sorted(set(map(str, sources))))})")
        table, y, p = table[rows].reset_index(drop=True), y[rows], p[rows]
    if len(table) < 2:
        raise ECGNetError(f"{run_dir / CV_PREDICTIONS}: {len(table)} record(s); nothing to calibrate on")
    predictions = run_dir / CV_PREDICTIONS
    trained_on = trained_manifest(predictor.info)
    statement = cv_statement(cv, len(table))
    fitted_on = {"probabilities": "out-of-fold", "predictions": CV_PREDICTIONS,
                 "predictions_sha256": sha256_file(predictions), "cross_validation": cv.get("kind"),
                 "fold_models": len(cv.get("folds") or {}) or None, "records": len(table), "statement": statement}
    chosen_here = "out-of-fold" in str(predictor.thresholds_from or "")
    note = ("The probabilities are the cross-validation's out-of-fold ones (each record's from the fold model that "
            "did not train on it), not the final model's: before and after are both scored on them, and they carry "
            "to the final model's probabilities as far as the fold models stand in for it (the cross-fitting "
            "approximation)." + (" The run's own thresholds (before) were chosen by Youden's J on these same "
                                 "out-of-fold predictions, so before is itself somewhat optimistic." if chosen_here
                                 else ""))
    return fit_profile(predictor, run_dir, site, table, np.ones(len(table), bool), y, p, fitted_on=fitted_on,
                       manifest={"path": trained_on, "sha256": None, "records": len(table),
                                 "records_used": len(table), "source": source, "rows_skipped": [], "unreadable": [],
                                 "classes_missing": unlabelled, "classes_ignored": [],
                                 "recorded_by": "the run's training (run.json: collection.manifest)"},
                       not_fitted={c: f"not labelled in {CV_PREDICTIONS}" for c in unlabelled},
                       warnings=([], []), long_records="segments",  # as the cross-validation scored (SCORED_ON)
                       method=method, target_sensitivity=target_sensitivity, calibration=calibration, folds=folds,
                       seed=seed, n_boot=n_boot, shrinkage=shrinkage, protocol_note=note)


def calibrate_command(run: str | Path, manifest: Path | None, site: str, label_map: Path | None = None,
                      skip_bad: bool = False, copy_to: Path | None = None, progress: bool = True,
                      long_records: str = "segments", from_cv: bool = False, **options) -> dict:
    """What ``ecgnet calibrate`` does: the run (a copy of it with ``copy_to``), the manifest — or, with
    ``from_cv``, the run's out-of-fold predictions — the profile. ``long_records``: how the site's records
    over 10 s are scored (kept in the profile)."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.runs.bundled import resolve_checkpoint

    if options.get("shrinkage") is None:
        options["shrinkage"] = default_shrinkage(options.get("method", "youden"))
    check_options(site, options.get("method", "youden"), options.get("calibration", "temperature"),
                  options.get("target_sensitivity", 0.9), options["shrinkage"])
    if from_cv:
        check_from_cv(manifest, label_map, skip_bad, long_records, options.get("limits", DEFAULT_LIMITS))
    elif manifest is None:
        raise ECGNetError("give the site's labelled records with --manifest M.csv — or, for a run cross-validated "
                          "on them (train --folds K), --from-cv to fit on its out-of-fold predictions")
    path = resolve_checkpoint(run)
    source_dir = path if path.is_dir() else path.parent
    if from_cv:  # refused before anything is copied or written
        cross_validation(source_dir)
        read_cv_predictions(source_dir, list(json.loads((source_dir / "run.json").read_text())["classes"]))
    run_dir = prepare_run_dir(source_dir, copy_to)
    predictor = Predictor(run_dir, long_records=long_records)
    if from_cv:
        return calibrate_from_cv(predictor, site, **{k: v for k, v in options.items() if k != "limits"})
    collection = read_for_run(predictor, manifest, label_map, skip_bad)
    return calibrate_site(predictor, collection, site, progress=progress, **options)


def check_from_cv(manifest, label_map, skip_bad: bool, long_records: str,
                  limits: ReadLimits = DEFAULT_LIMITS) -> None:
    """``--from-cv`` reads no manifest: the options that read one are refused with it."""
    if manifest is not None:
        raise ECGNetError("--from-cv fits on the run's out-of-fold predictions (RUN/cv/predictions.csv), --manifest "
                          "on the run's own probabilities of a manifest: give one of them")
    given = [name for name, on in (("--label-map", label_map is not None), ("--skip-bad", skip_bad),
                                   (f"--long-records {long_records}", long_records != "segments"),
                                   ("--max-seconds/--max-signals/--max-values", limits != DEFAULT_LIMITS)) if on]
    if given:
        raise ECGNetError(f"{', '.join(given)}: not with --from-cv, which reads no records — the labels and "
                          f"probabilities are those of {CV_PREDICTIONS} (long records scored as segments)")
