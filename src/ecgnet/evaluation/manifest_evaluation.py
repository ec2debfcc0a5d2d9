"""Any run on any labelled manifest (``ecgnet evaluate RUN --manifest M.csv``): macro and per-class AUC
with bootstrap intervals, balanced accuracy, sensitivity and specificity at the run's thresholds (chosen
on fold 9, or on its own manifest for a run trained on one; or a site profile's, after its calibration), per source, written as predictions.csv, metrics.json and a
report with ROC curves.

Unknown labels (empty cells) are left out class by class (:mod:`ecgnet.evaluation.scoring`, the scoring
cross-validation and ``evaluate-external`` share).

A manifest is a test set here: nothing is chosen on it. Thresholds fitted on the same records (a site
profile calibrated on this manifest) give optimistic figures — the report says which thresholds it used.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecgnet.checksum import sha256_file
from ecgnet.data.collections.base import Collection
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.evaluation.labelled import (ClassMatch, for_csv, in_sample_warning, predict_collection, read_for_run,
                                        trained_here)
from ecgnet.evaluation.scoring import score
from ecgnet.fileio import atomic_path, write_json
from ecgnet.inference.predictor import Predictor
from ecgnet.runs.origin import made_by


IN_SAMPLE = ("these figures are in-sample, optimistic (a run trained with --folds K has honest out-of-fold figures "
             "in RUN/cv/metrics.json)")


def evaluate_collection(predictor: Predictor, collection: Collection, out_dir: str | Path, profile=None,
                        n_boot: int = 1000, seed: int = 0, progress: bool = True,
                        table: pd.DataFrame | None = None, match: ClassMatch | None = None,
                        limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Predict (unless ``table``/``match`` are given) and score ``collection``; write predictions.csv,
    metrics.json and the report (evaluation.html/.md) into ``out_dir``. ``profile``: a
    :class:`~ecgnet.runs.profiles.SiteProfile` whose calibration and thresholds replace the run's."""
    if table is None:
        table, match = predict_collection(predictor, collection, progress, limits=limits)
    classes = match.matched
    scored = table[table["error"].fillna("") == ""]
    y = scored[[f"y_{c}" for c in classes]].to_numpy(float)
    p_all = scored[[f"p_{c}" for c in predictor.classes]].to_numpy(float)
    if profile is not None and len(scored):
        p_all = profile.calibrate(p_all)
        table = table.copy()
        for i, c in enumerate(predictor.classes):  # what the figures score, beside the run's own p_ (calibrate's q_)
            table.loc[scored.index, f"q_{c}"] = p_all[:, i]
        thresholds, source = profile.thresholds, f"site profile '{profile.site}'"
    else:
        thresholds, source = predictor.thresholds, f"the run's thresholds (chosen on {predictor.thresholds_from})"
    p = p_all[:, [list(predictor.classes).index(c) for c in classes]]
    manifest = collection.info.get("manifest")
    in_sample = in_sample_warning(trained_here(predictor, collection), len(collection), IN_SAMPLE)
    result = {"run": predictor.info["name"], "manifest": manifest,
              "manifest_sha256": sha256_file(manifest) if manifest and Path(manifest).is_file() else None,
              "n_records": len(table), "n_scored": len(scored), "classes_matched": classes,
              "classes_missing": match.missing, "classes_ignored": match.ignored,
              "class_warnings": match.warnings + ([in_sample] if in_sample else []),
              "skipped_rows": [{"row": r, "why": w} for r, w in collection.skipped],
              "unreadable": table.loc[table["error"].fillna("") != "", ["record", "error"]].to_dict("records"),
              "untrusted_amplitude": int((~scored["amplitude_trusted"].astype(bool)).sum()),
              "thresholds_from": source if thresholds else None, "site": None if profile is None else profile.site,
              "long_records": predictor.long_records,
              "made_by": made_by(predictor.run.weights_sha256, predictor.engine_name)}
    if len(scored):
        patients = scored["patient"].to_numpy()  # the intervals resample patients when some has several records
        result.update(score(y, p, classes, thresholds, n_boot, seed, patients))
        sources = scored["source"].to_numpy()
        result["per_source"] = {s: score(y[sources == s], p[sources == s], classes, thresholds, n_boot, seed,
                                         patients[sources == s])
                                for s in sorted(set(sources))}
    else:
        result.update({"n": 0, "classes_scored": [], "per_class": {}, "macro_auc": None, "per_source": {}})
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        for_csv(table).to_csv(tmp, index=False, float_format="%.6f")
    write_json(out_dir / "metrics.json", result)
    from ecgnet.evaluation.manifest_report import write_evaluation_report

    result["report"] = str(write_evaluation_report(out_dir, result, y, p))
    return result


def evaluate_manifest(run: str | Path, manifest: Path, out_dir: Path | None = None, label_map: Path | None = None,
                      skip_bad: bool = False, site: str | None = None, n_boot: int = 1000, seed: int = 0,
                      progress: bool = True, limits: ReadLimits = DEFAULT_LIMITS, long_records: str = "segments") -> dict:
    """What ``ecgnet evaluate RUN --manifest M.csv`` does; ``out_dir`` defaults to
    ``outputs/<run>/<manifest name>`` (``…-<site>`` with a site profile). ``long_records``: how records over
    10 s are scored (:class:`~ecgnet.inference.predictor.Predictor`)."""
    from ecgnet.runs.profiles import load_profile

    predictor = Predictor(run, long_records=long_records)
    profile = load_profile(predictor.run_dir, site, list(predictor.classes)) if site else None
    collection = read_for_run(predictor, manifest, label_map, skip_bad)
    if out_dir is None:
        out_dir = Path("outputs") / Path(predictor.run_dir).name / (Path(manifest).stem + (f"-{site}" if site else ""))
    return evaluate_collection(predictor, collection, out_dir, profile=profile, n_boot=n_boot, seed=seed,
                               progress=progress, limits=limits)
