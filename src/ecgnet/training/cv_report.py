"""What a cross-validation leaves in its run (:mod:`ecgnet.training.collection`): the out-of-fold predictions
``RUN/cv/predictions.csv`` (``record, fold, source, patient, y_<CLASS>, p_<CLASS>``; the source model's zero-shot
ones beside them), ``RUN/cv/metrics.json``, the report ``RUN/cv/report.html`` / ``report.md`` with its figures
(also the run's own ``report.html`` / ``report.md``: the protocol, the pooled, zero-shot and per-fold AUCs, ROC
curves fine-tuned against zero-shot), and the final model's thresholds, chosen by Youden's J on the pooled
out-of-fold predictions (``RUN/val/metrics.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.metrics import roc_curve

from ecgnet.config import load_config
from ecgnet.data.collections.base import Collection
from ecgnet.document import Section, save_png, write_document
from ecgnet.evaluation.metrics import resampled_words
from ecgnet.evaluation.labelled import for_csv
from ecgnet.evaluation.scoring import format_auc
from ecgnet.fileio import atomic_path, write_json
from ecgnet.plotting import auc_figure, interval_bar, plt
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
    """RUN/cv/ (predictions, metrics, report), the run's report and the final model's thresholds in RUN/val/;
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
    title, protocol, sections = cv_report(metrics, info, schedule, val["warnings"])
    source = (info.get("finetune") or {}).get("from")
    for folder in (run_dir / "cv", run_dir):  # the cross-validation's own folder, and the run's report
        figures = _figures(folder / "figures", metrics, collection.y, cv["oof"], cv.get("zero_shot_p"), source)
        write_document(folder, "report", title, sections, figures, bullets=("Protocol", protocol), css=_CSS)
    return val["warnings"]


_CSS = "tbody tr:last-child{font-weight:normal}"


def cv_report(metrics: dict, info: dict, schedule=None, warnings=()) -> tuple[str, list[str], list[Section]]:
    """The cross-validation as a document: its title, the protocol (fine-tuning facts and ``schedule``, the
    run's ``TrainingConfig``) as bullets, and the sections: pooled, zero-shot and per-fold AUCs, the paired
    difference, what fine-tuning forgot, ``warnings`` about the final model's thresholds, the files."""
    p = metrics["protocol"]
    classes = list(metrics["pooled"]["per_class"])
    collection = info.get("collection", {})
    protocol = [f"collection: {collection.get('name')} ({collection.get('records')} records, "
                f"{len(collection.get('skipped', []))} skipped)",
                f"model: {info.get('model')} ({info.get('parameters'):,} parameters), seed {p['seed']}",
                f"folds: {', '.join(p['folds'].values())}; {p['grouping']}",
                f"inner validation: {p['inner_validation']}",
                f"scored on: {p.get('scored_on', SCORED_ON)}"]
    ft = info.get("finetune")
    if ft:
        protocol += [f"fine-tuned from {ft['from']} (mode {ft['mode']}): head {ft['head']}; frozen: {ft['frozen']}; "
                     f"{ft['trainable_parameters']:,} trainable, {ft['frozen_parameters']:,} frozen parameters"]
        if ft.get("interpolation"):
            protocol += [f"interpolation: {ft['interpolation']}"]
    else:
        protocol += ["trained from scratch (no --from)"]
    if schedule is not None:
        protocol += [f"schedule (each fold and the final model): lr {schedule.lr:g} (one-cycle), batch "
                     f"{schedule.batch_size}, at most {schedule.epochs} epochs, early stopping after {schedule.patience} "
                     "without a better inner-validation AUC"]
    protocol += [f"final model (this run): {info.get('split')}; epochs {info.get('epochs_run')}, best "
                 f"{info.get('best_epoch')}"]

    def row(name, m):
        return [name, str(m.get("n_records", "")), format_auc(m["macro_auc"]),
                *(format_auc(m["per_class"][c]) for c in classes)]

    rows = [row("pooled (fine-tuned)" if ft else "pooled", metrics["pooled"])]
    if "zero_shot" in metrics:
        rows.append(row(f"zero-shot {ft['from']}", {**metrics["zero_shot"], "n_records": metrics["pooled"].get(
            "n_records")}))
    rows += [row(name, m) for name, m in metrics["per_fold"].items()]
    over = resampled_words((metrics["pooled"].get("macro_auc") or {}).get("resampled"))
    auc = Section("AUC", ["", "n", "macro", *classes], rows,
                  f"AUC with 90 % bootstrap intervals over {over} (pooled out-of-fold predictions; each held-out fold "
                  "alone below them).")
    folds = Section("Folds", ["fold", "held out", "training", "inner validation", "epochs run", "best epoch",
                              *(["zero-shot macro AUC"] if ft and "zero_shot" in metrics else [])],
                    [[name, str(m["n_records"]), str(m.get("train_records", "–")),
                      str(m.get("inner_validation_records", "–")), str(m.get("epochs_run")), str(m.get("best_epoch")),
                      *([format_auc(m.get("zero_shot_macro_auc"))] if ft and "zero_shot" in metrics else [])]
                     for name, m in metrics["per_fold"].items()],
                    "What each fold's model trained on and when early stopping kept it.")
    sections = [auc, folds]
    vs = metrics.get("vs_zero_shot")
    if vs:
        sections.append(Section("Fine-tuned against zero-shot", paragraphs=[
            f"Paired bootstrap, fine-tuned − zero-shot macro AUC over {', '.join(vs['classes'])}: {vs['diff']:+.3f} "
            f"[{vs['low']:+.3f}, {vs['high']:+.3f}] (90 %), one-sided p = {vs['p_value']:.3f}."]))
    sections += [Section("ROC curves", figures=["roc.png"]),
                 Section("AUC per class and per fold", figures=["auc.png", "folds.png"], grid=True)]
    if info.get("forgetting"):
        from ecgnet.training.forgetting import forgetting_lines

        sections.append(Section("What fine-tuning forgot", paragraphs=forgetting_lines(info["forgetting"])))
    if warnings:
        sections.append(Section("Warnings", bullets=[f"{w}." for w in warnings]))
    sections.append(Section("Files", paragraphs=[
        "cv/predictions.csv (record, fold, source, patient, y_<CLASS>, p_<CLASS>), cv/metrics.json; each fold's run "
        "in cv/fold_<k>/. The final model (this run) was trained on every record."]))
    return f"{info.get('name')}: {p['kind']} cross-validation", protocol, sections


def _figures(folder: Path, metrics: dict, y: np.ndarray, oof: np.ndarray, zero, source: str | None) -> dict:
    """ROC curves per class (fine-tuned solid, zero-shot dashed), per-class AUC with intervals and per-fold
    macro AUC, each against the source model's zero-shot figure where there is one; saved under ``folder``."""
    classes = list(metrics["pooled"]["per_class"])
    scored = [c for c in classes if metrics["pooled"]["per_class"][c].get("auc") is not None]
    figures = {}
    if scored:
        figures["roc.png"] = ("ROC curves, pooled out-of-fold" + (f" (dashed: zero-shot {source})" if zero is not None
                                                                  else ""), _roc(scored, classes, y, oof, zero, source))
        figures["auc.png"] = ("Per-class AUC with 90 % intervals", _auc(metrics, scored, source))
    figures["folds.png"] = ("Macro AUC per held-out fold", _folds(metrics, source))
    return {name: (caption, save_png(fig, folder / name)) for name, (caption, fig) in figures.items()}


def _roc(scored, classes, y, oof, zero, source):
    cols = min(len(scored), 5)
    rows = -(-len(scored) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols + 0.4, 2.4 * rows + 0.3), squeeze=False)
    for ax in axes.flat[len(scored):]:
        ax.axis("off")
    for ax, c in zip(axes.flat, scored):
        k = classes.index(c)
        known = ~np.isnan(y[:, k])
        for p, style, label in ((oof, "-", "fine-tuned" if source else "cross-validated"),
                                (zero, "--", f"zero-shot {source}")):
            if p is not None and np.isfinite(p[known, k]).all():
                fpr, tpr, _ = roc_curve(y[known, k], p[known, k])
                ax.plot(fpr, tpr, ls=style, lw=1.4, color="C0" if style == "-" else "C1",
                        label=label if c == scored[0] else None)
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
        ax.set(title=f"{c} (n pos={int(np.nansum(y[known, k]))})", xlim=(0, 1), ylim=(0, 1.01))
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.supxlabel("1 − specificity", fontsize=9)
    fig.supylabel("sensitivity", fontsize=9)
    fig.tight_layout()
    return fig


def _auc(metrics, scored, source):
    series = [("fine-tuned" if source else "cross-validated", metrics["pooled"]["per_class"], "C0")]
    series += [(f"zero-shot {source}", metrics["zero_shot"]["per_class"], "C1")] if "zero_shot" in metrics else []
    return auc_figure(series, scored)


def _folds(metrics, source):
    folds = list(metrics["per_fold"].items())
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(folds) + 2), 3))
    for i, (_, m) in enumerate(folds):
        e, z = m.get("macro_auc") or {}, m.get("zero_shot_macro_auc")
        if e.get("value") is not None:
            ax.errorbar(i - 0.1, e["value"], yerr=interval_bar(e, "value"), fmt="o", capsize=3, color="C0",
                        label=("fine-tuned" if source else "cross-validated") if i == 0 else None)
        if z and z.get("value") is not None:
            ax.plot(i + 0.1, z["value"], "s", color="C1", label=f"zero-shot {source}" if i == 0 else None)
    pooled = (metrics["pooled"].get("macro_auc") or {}).get("value")
    if pooled is not None:
        ax.axhline(pooled, color="C0", lw=0.8, ls="--", label=f"pooled {pooled:.3f}")
    ax.set_xticks(range(len(folds)), [f"{name}\n(n={m['n_records']})" for name, m in folds],
                  rotation=45 if len(folds) > 8 else 0)
    ax.set(ylim=(0.3, 1.0), ylabel="macro AUC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
