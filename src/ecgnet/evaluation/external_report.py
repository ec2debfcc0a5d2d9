"""The report of ``ecgnet evaluate-external``: transfer per class and per source database, what could not be
scored, and a figure of per-class AUC with intervals (``external.html`` / ``external.md``)."""

from __future__ import annotations

from pathlib import Path

from ecgnet.document import save_png, write_document
from ecgnet.evaluation.scoring import format_auc, format_rate
from ecgnet.runs.origin import made_by_line
from ecgnet.plotting import plt


def write_external_report(out_dir: Path, result: dict) -> Path:
    classes = list(result["per_class"])
    summary = [["records found", str(result["n_records"])], ["scored (readable, with a superclass)", str(result["n_scored"])],
               ["unreadable", str(len(result["unreadable"]))], ["without a superdiagnostic label", str(len(result["unlabeled"]))],
               ["scored with untrustworthy amplitude", str(result["untrusted_amplitude"])],
               ["macro AUC [90 % CI]", format_auc(result["macro_auc"])], ["classes in the macro AUC", ", ".join(result["classes_scored"])]]
    summary += [made_by_line(result.get("made_by"))] if result.get("made_by") else []
    per_class = [[c, format_auc(e), str(e["n_positive"]), format_rate(e, "sensitivity"), format_rate(e, "specificity")]
                 for c, e in result["per_class"].items()]
    per_source = [[src, str(s["n"]), format_auc(s["macro_auc"]),
                   *(f"{format_auc(s['per_class'][c])} ({s['per_class'][c]['n_positive']})" for c in classes)]
                  for src, s in result["per_source"].items()]
    sections = [("Summary", ["what", "value"], summary, result["protocol"]),
                ("Per class", ["class", "AUC [90 % CI]", "n positive", "sensitivity", "specificity"], per_class,
                 f"Sensitivity and specificity at the run's thresholds, chosen on "
                 f"{result.get('thresholds_from') or 'fold 9'}."),
                ("Per source database", ["source", "n", "macro AUC", *(f"{c} AUC (n pos.)" for c in classes)],
                 per_source, "Small samples: intervals are wide, and missing where a class has too few positives "
                 "or the source holds fewer than 10 records.")]
    if result["unreadable"]:
        sections.append(("Unreadable records", ["record", "error"],
                         [[r["record"], r["error"]] for r in result["unreadable"]], None))
    if result["unlabeled"]:
        sections.append(("Records without a superdiagnostic label (left out)", ["record"],
                         [[r] for r in result["unlabeled"]], None))
    figures = {"external_auc.png": ("Per-class AUC with 90 % intervals",
                                    save_png(_figure(result), Path(out_dir) / "figures" / "external_auc.png"))}
    return write_document(out_dir, "external", f"{result['run']} on {Path(result['dataset']).name}", sections, figures,
                          css="tbody tr:last-child{font-weight:normal}")  # no summary row in these tables


def _figure(result: dict):
    fig, ax = plt.subplots(figsize=(6, 3))
    entries = [(c, e) for c, e in result["per_class"].items() if e["auc"] is not None]
    for i, (c, e) in enumerate(entries):
        err = [[e["auc"] - e["low"]], [e["high"] - e["auc"]]] if e["low"] is not None else None
        ax.errorbar(i, e["auc"], yerr=err, fmt="o", capsize=4, color="C0")
    ax.set_xticks(range(len(entries)), [f"{c}\n(n={e['n_positive']})" for c, e in entries])
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("AUC")
    fig.tight_layout()
    return fig
