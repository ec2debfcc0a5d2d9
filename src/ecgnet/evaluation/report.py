"""A run's report: ``report.html`` (self-contained, plots embedded as base64 PNG) and ``report.md``
(same tables, plots in ``figures/`` and linked; written by :mod:`ecgnet.document`), plus a rich table for the
terminal.

``metrics`` dicts are those returned by :func:`ecgnet.evaluation.metrics.evaluate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from ecgnet.document import save_png, write_document
from ecgnet.evaluation.calibration import calibration_summary, reliability_figure
from ecgnet.plotting import plt, roc_figure

_COLUMNS = [  # (header, per-class key, format)
    ("AUC", "auc", "{:.3f}"),
    ("Accuracy", "accuracy", "{:.3f}"),
    ("Bal. acc.", "balanced_accuracy", "{:.3f}"),
    ("Sensitivity", "sensitivity", "{:.3f}"),
    ("Specificity", "specificity", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("Threshold", "threshold", "{:.3f}"),
    ("n pos.", "n_positive", "{}"),
]


def _fmt(value, spec: str = "{:.3f}") -> str:
    return "–" if value is None else spec.format(value)


def _rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows (per class, then macro) shared by the HTML, Markdown and terminal tables."""
    per_class = metrics["per_class"]
    cols = [c for c in _COLUMNS if any(c[1] in v for v in per_class.values())]
    rows = [[name] + [_fmt(v.get(key), spec) for _, key, spec in cols] for name, v in per_class.items()]
    m = metrics["macro_auc"]
    macro = {
        "auc": f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]",
        "balanced_accuracy": _fmt(metrics.get("mean_balanced_accuracy")),
        "f1": _fmt(metrics.get("macro_f1")),
    }
    rows.append(["macro"] + [macro.get(key, "") for _, key, _ in cols])
    return ["Class"] + [c[0] for c in cols], rows


def _summary(metrics: dict) -> list[tuple[str, str]]:
    m, s = metrics["macro_auc"], metrics["single_label_accuracy"]
    out = [
        ("Records", str(metrics["n_records"])),
        (f"Macro AUC ({m['ci']:.0%} CI, {m['n_boot']} bootstrap resamples)",
         f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"),
    ]
    if "macro_f1" in metrics:
        out.append(("Macro F1", _fmt(metrics["macro_f1"], "{:.4f}")))
        out.append(("Mean balanced accuracy", _fmt(metrics.get("mean_balanced_accuracy"), "{:.4f}")))
    out.append((f"Single-label accuracy (n = {s['n']})", _fmt(s["value"], "{:.4f}")))
    return out


def format_table(metrics: dict, title: str | None = None) -> Table:
    """Terminal table: one row per class and a macro row whose AUC carries the bootstrap CI."""
    header, rows = _rows(metrics)
    ci = metrics["macro_auc"]["ci"]
    table = Table(title=title, caption=f"macro AUC with {ci:.0%} bootstrap interval")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for i, row in enumerate(rows):
        table.add_row(*row, end_section=(i == len(rows) - 2))
    return table


def _roc_figure(y_true, y_prob, classes, metrics: dict):
    return roc_figure([(f"{c} (AUC {metrics['per_class'][c]['auc']:.3f})", y_true[:, k], y_prob[:, k])
                       for k, c in enumerate(classes)], "ROC curves, test fold")


def _bar_figure(classes, metrics: dict):
    per_class = metrics["per_class"]
    series = [("AUC", "auc"), ("Balanced accuracy", "balanced_accuracy")]
    series = [s for s in series if all(per_class[c].get(s[1]) is not None for c in classes)]
    x, width = np.arange(len(classes)), 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(classes) + 2), 4))
    for i, (label, key) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [per_class[c][key] for c in classes], width, label=label)
    ax.set_xticks(x, classes, rotation=45 if len(classes) > 8 else 0, ha="right" if len(classes) > 8 else "center")
    ax.set(ylim=(0, 1), ylabel="score", title="Per-class scores, test fold")
    ax.axhline(0.5, ls="--", c="grey", lw=1)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def write_run_report(run_dir: Path, y_true_test, y_prob_test, classes, metrics_test: dict,
                     metrics_val: dict | None, info: dict) -> Path:
    """Write ``report.html`` and ``report.md`` (+ ``figures/*.png``) into ``run_dir``; return the HTML path."""
    run_dir = Path(run_dir)
    y_true, y_prob = np.asarray(y_true_test).reshape(len(y_true_test), -1), np.asarray(y_prob_test, dtype=float)
    classes = [str(c) for c in classes]
    title = str(info.get("name", run_dir.name))
    figures = {
        "roc.png": ("ROC curves",
                    save_png(_roc_figure(y_true, y_prob, classes, metrics_test), run_dir / "figures" / "roc.png")),
        "per_class.png": ("Per-class AUC and balanced accuracy",
                          save_png(_bar_figure(classes, metrics_test), run_dir / "figures" / "per_class.png")),
        "calibration.png": ("Reliability of the predicted probabilities (quantile bins)",
                            save_png(reliability_figure(y_true, y_prob, classes),
                                     run_dir / "figures" / "calibration.png")),
    }
    info_rows = [[str(k), str(v)] for k, v in info.items()]
    sections = [("Run", ["Key", "Value"], info_rows, None)]
    notes = {"Test fold (10)": "Thresholds chosen on the validation fold (Youden's J), applied unchanged.",
             "Validation fold (9)": "Thresholds chosen on this fold (Youden's J); the test fold uses these."}
    for fold, m in (("Test fold (10)", metrics_test), ("Validation fold (9)", metrics_val)):
        if m is not None:
            sections.append((f"{fold}: summary", ["Metric", "Value"], [list(r) for r in _summary(m)], None))
            header, rows = _rows(m)
            sections.append((f"{fold}: per class", header, rows, notes[fold] if "macro_f1" in m else None))
    calibration = calibration_summary(y_true, y_prob, classes)
    sections.append(("Test fold (10): calibration", ["Class", "ECE", "Brier", "Prevalence", "Mean prediction"],
                     [[c, *(f"{v[k]:.3f}" for k in ("ece", "brier", "prevalence", "mean_prediction"))]
                      for c, v in calibration["per_class"].items()]
                     + [["macro", f"{calibration['macro_ece']:.3f}", f"{calibration['macro_brier']:.3f}", "", ""]],
                     "Expected calibration error over 10 equal-width bins (evaluation/calibration.py)."))

    return write_document(run_dir, "report", title, sections, figures)
