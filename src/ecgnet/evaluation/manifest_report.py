"""The report of ``ecgnet evaluate RUN --manifest M.csv`` (``evaluation.html`` / ``evaluation.md``): what
was scored and what was not, per-class AUC with intervals and the decisions at the thresholds used, per
source, ROC curves and the AUC intervals as figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from ecgnet.evaluation.scoring import few_cases, format_auc, format_rate
from ecgnet.document import save_png, write_document
from ecgnet.evaluation.metrics import resampled_words
from ecgnet.runs.origin import made_by_line
from ecgnet.plotting import plt


def write_evaluation_report(out_dir: Path, result: dict, y: np.ndarray, p: np.ndarray) -> Path:
    classes = result["classes_matched"]
    summary = [["manifest", str(result["manifest"])], ["records", str(result["n_records"])],
               ["scored", str(result["n_scored"])], ["unreadable", str(len(result["unreadable"]))],
               ["rows skipped (--skip-bad)", str(len(result["skipped_rows"]))],
               ["scored with untrustworthy amplitude", str(result["untrusted_amplitude"])],
               ["macro AUC [90 % CI]", format_auc(result["macro_auc"])],
               ["classes in the macro AUC", ", ".join(result["classes_scored"]) or "–"],
               ["classes of the run not labelled in the manifest (skipped)", ", ".join(result["classes_missing"]) or "–"],
               ["classes of the manifest the run does not predict", ", ".join(result["classes_ignored"]) or "–"],
               ["thresholds", result["thresholds_from"] or "none (the run has no thresholds)"]]
    summary += [["warning", w] for w in result.get("class_warnings", [])]
    summary += [made_by_line(result.get("made_by"))] if result.get("made_by") else []
    if result.get("mean_balanced_accuracy") is not None:
        summary.append(["mean balanced accuracy", f"{result['mean_balanced_accuracy']:.3f}"])
    per_class = [[c, format_auc(e), str(e["n"]), str(e["n_positive"]),
                  *(format_rate(e, k) for k in ("threshold", "balanced_accuracy", "sensitivity", "specificity"))]
                 for c, e in result["per_class"].items()]
    few = few_cases(result)
    per_source = [[src, str(s["n"]), format_auc(s["macro_auc"]),
                   *(f"{format_auc(s['per_class'][c])} ({s['per_class'][c]['n_positive']})" for c in classes)]
                  for src, s in result.get("per_source", {}).items()]
    over = resampled_words((result.get("macro_auc") or {}).get("resampled"))
    note = ("Unknown labels are left out class by class (n = records where the class is known). AUC intervals: "
            f"90 % percentile bootstrap over {over}.")
    if result.get("site"):
        note += (f" Probabilities calibrated and thresholded by the site profile '{result['site']}'; if it was "
                 "fitted on these records, the decisions are optimistic (see the profile's cross-fitted report).")
    sections = [("Summary", ["what", "value"], summary, note),
                ("Per class", ["class", "AUC [90 % CI]", "n", "n positive", "threshold", "balanced accuracy",
                               "sensitivity", "specificity"], per_class, few and few[0].upper() + few[1:] + "."),
                ("Per source", ["source", "n", "macro AUC", *(f"{c} AUC (n pos.)" for c in classes)], per_source,
                 "Small sources give wide intervals, or none where a class has too few positives or the source "
                 "holds fewer than 10 records (patients).")]
    if result["unreadable"]:
        sections.append(("Unreadable records", ["record", "error"],
                         [[r["record"], r["error"]] for r in result["unreadable"]], None))
    if result["skipped_rows"]:
        sections.append(("Manifest rows skipped", ["row", "why"],
                         [[r["row"], r["why"]] for r in result["skipped_rows"]], None))
    figures = {}
    if result["classes_scored"]:
        folder = Path(out_dir) / "figures"
        figures["roc.png"] = ("ROC curves (known labels per class)", save_png(_roc(result, y, p), folder / "roc.png"))
        figures["auc.png"] = ("Per-class AUC with 90 % intervals", save_png(_auc(result), folder / "auc.png"))
    name = Path(str(result["manifest"])).name
    return write_document(out_dir, "evaluation", f"{result['run']} on {name}", sections, figures,
                          css="tbody tr:last-child{font-weight:normal}")


def _roc(result: dict, y: np.ndarray, p: np.ndarray):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, c in enumerate(result["classes_matched"]):
        if c not in result["classes_scored"]:
            continue
        known = ~np.isnan(y[:, k])
        fpr, tpr, _ = roc_curve(y[known, k], p[known, k])
        ax.plot(fpr, tpr, lw=1.5, label=f"{c} (AUC {result['per_class'][c]['auc']:.3f}, n={known.sum()})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def _auc(result: dict):
    entries = [(c, e) for c, e in result["per_class"].items() if e["auc"] is not None]
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(entries) + 2), 3))
    for i, (c, e) in enumerate(entries):
        err = [[e["auc"] - e["low"]], [e["high"] - e["auc"]]] if e["low"] is not None else None
        ax.errorbar(i, e["auc"], yerr=err, fmt="o", capsize=4, color="C0")
    ax.set_xticks(range(len(entries)), [f"{c}\n(n pos={e['n_positive']})" for c, e in entries],
                  rotation=45 if len(entries) > 8 else 0)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0.3, 1.0)
    ax.set_ylabel("AUC")
    fig.tight_layout()
    return fig
