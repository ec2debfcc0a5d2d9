"""What a cross-validation leaves in its run (:mod:`ecgnet.training.collection`): the out-of-fold predictions
``RUN/cv/predictions.csv`` (``record, fold, source, patient, y_<CLASS>, p_<CLASS>``; the source model's zero-shot
ones beside them), ``RUN/cv/metrics.json``, the Markdown report ``RUN/cv/report.md`` (also the run's
``report.md``), and the final model's thresholds, chosen by Youden's J on the pooled out-of-fold predictions
(``RUN/val/metrics.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.config import load_config
from ecgnet.data.collections.base import Collection
from ecgnet.evaluation.metrics import resampled_words
from ecgnet.evaluation.labelled import for_csv
from ecgnet.evaluation.scoring import format_auc
from ecgnet.fileio import atomic_path, write_json, write_text
from ecgnet.training.collection_scoring import call_rate_warnings, score, youden_thresholds

SCORED_ON = ("each record as predict scores it: a record over 10 s in consecutive 10 s segments, their probabilities "
             "averaged (training drew one of its segments each time it drew the record)")


def _write_predictions(path: Path, collection: Collection, folds, p: np.ndarray) -> None:
    """``record, fold, source, patient, y_<CLASS>…, p_<CLASS>…`` (labels 1 / 0 / empty = unknown): the record,
    source, patient, label and probability columns of ``evaluate --manifest``'s predictions, so the file can be
    scored again without the manifest."""
    table = pd.DataFrame({"record": collection.records})
    if folds is not None:
        table["fold"] = folds
    table["source"], table["patient"] = collection.sources, collection.patients
    for k, c in enumerate(collection.classes):
        table[f"y_{c}"] = collection.y[:, k]
    for k, c in enumerate(collection.classes):
        table[f"p_{c}"] = p[:, k]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        for_csv(table).to_csv(tmp, index=False, float_format="%.6f")  # NaN (unknown) → an empty cell


def write_cv(run_dir: Path, collection: Collection, cv: dict, info: dict, seed: int, n_boot: int) -> list[str]:
    """RUN/cv/ (predictions, metrics, report), RUN/report.md and the final model's thresholds in RUN/val/;
    returns warnings about those thresholds (:func:`call_rate_warnings`)."""
    classes = collection.classes
    _write_predictions(run_dir / "cv" / "predictions.csv", collection, cv["folds"], cv["oof"])
    if "zero_shot_p" in cv:
        _write_predictions(run_dir / "cv" / "zero_shot_predictions.csv", collection, cv["folds"], cv["zero_shot_p"])
    metrics = {k: v for k, v in cv.items() if k not in ("folds", "oof", "zero_shot_p")}
    write_json(run_dir / "cv" / "metrics.json", metrics)
    # the final model's thresholds: Youden's J on the pooled out-of-fold predictions
    thresholds = youden_thresholds(collection.y, cv["oof"], classes)
    val = score(collection.y, cv["oof"], classes, thresholds, n_boot, seed, collection.interval_groups)
    val["thresholds_from"] = "pooled out-of-fold predictions of the cross-validation (the same records: optimistic)"
    val["warnings"] = call_rate_warnings(collection.y, cv["oof"], thresholds, classes)
    write_json(run_dir / "val" / "metrics.json", val)
    config = run_dir / "config.yaml"
    schedule = load_config(config).training if config.is_file() else None
    report = cv_report(metrics, info, schedule) + "".join(f"\nWarning: {w}.\n" for w in val["warnings"])
    write_text(run_dir / "cv" / "report.md", report)
    write_text(run_dir / "report.md", report)
    return val["warnings"]


def cv_report(metrics: dict, info: dict, schedule=None) -> str:
    """The cross-validation as Markdown: protocol, fine-tuning facts and ``schedule`` (the run's
    ``TrainingConfig``), pooled and per-fold AUCs."""
    p = metrics["protocol"]
    classes = list(metrics["pooled"]["per_class"])
    lines = [f"# {info.get('name')}: {p['kind']} cross-validation", "",
             f"- collection: {info.get('collection', {}).get('name')} ({info.get('collection', {}).get('records')} records, "
             f"{len(info.get('collection', {}).get('skipped', []))} skipped)",
             f"- model: {info.get('model')} ({info.get('parameters'):,} parameters), seed {p['seed']}",
             f"- folds: {', '.join(p['folds'].values())}; {p['grouping']}",
             f"- inner validation: {p['inner_validation']}",
             f"- scored on: {p.get('scored_on', SCORED_ON)}"]
    ft = info.get("finetune")
    if ft:
        lines += [f"- fine-tuned from `{ft['from']}` (mode **{ft['mode']}**): head {ft['head']}; frozen: {ft['frozen']}; "
                  f"{ft['trainable_parameters']:,} trainable, {ft['frozen_parameters']:,} frozen parameters"]
        if ft.get("interpolation"):
            lines += [f"- interpolation: {ft['interpolation']}"]
    else:
        lines += ["- trained from scratch (no --from)"]
    if schedule is not None:
        lines += [f"- schedule (each fold and the final model): lr {schedule.lr:g} (one-cycle), batch "
                  f"{schedule.batch_size}, at most {schedule.epochs} epochs, early stopping after {schedule.patience} "
                  "without a better inner-validation AUC"]
    lines += [f"- final model (this run): {info.get('split')}; epochs {info.get('epochs_run')}, best "
              f"{info.get('best_epoch')}"]
    over = resampled_words((metrics["pooled"].get("macro_auc") or {}).get("resampled"))
    lines += ["", f"AUC with 90 % bootstrap intervals over {over} (pooled out-of-fold predictions).", "",
              "| | macro | " + " | ".join(classes) + " |", "|---" * (len(classes) + 2) + "|"]

    def row(name, m):
        return f"| {name} | {format_auc(m['macro_auc'])} | " + " | ".join(format_auc(m["per_class"][c]) for c in classes) + " |"

    lines.append(row("**pooled (fine-tuned)**" if ft else "**pooled**", metrics["pooled"]))
    if "zero_shot" in metrics:
        lines.append(row(f"zero-shot `{ft['from']}`", metrics["zero_shot"]))
    for name, m in metrics["per_fold"].items():
        zero = f"; zero-shot {format_auc(m['zero_shot_macro_auc'])}" if m.get("zero_shot_macro_auc") else ""
        lines.append(row(f"{name} (n={m['n_records']}; epochs {m.get('epochs_run')}, best {m.get('best_epoch')}{zero})", m))
    vs = metrics.get("vs_zero_shot")
    if vs:
        lines += ["", f"Paired bootstrap, fine-tuned − zero-shot macro AUC over {', '.join(vs['classes'])}: "
                      f"{vs['diff']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}] (90 %), one-sided p = {vs['p_value']:.3f}."]
    if info.get("forgetting"):
        from ecgnet.training.forgetting import forgetting_lines

        lines += ["", *forgetting_lines(info["forgetting"])]
    lines += ["", "Files: `cv/predictions.csv` (record, fold, source, patient, y_<CLASS>, p_<CLASS>), "
                  "`cv/metrics.json`; each fold's run in `cv/fold_<k>/`. The final model (this run) was trained on "
                  "every record."]
    return "\n".join(lines) + "\n"
