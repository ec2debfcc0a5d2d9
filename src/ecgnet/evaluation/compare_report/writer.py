"""Writing the report: the figures, comparison.json and the sections, as .md and self-contained .html."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.evaluation.compare_report.appendix import _appendix_sections
from ecgnet.evaluation.compare_report.common import MANY_CLASSES
from ecgnet.evaluation.compare_report.modalities import _modality_sections
from ecgnet.evaluation.compare_report.per_class_figures import _auc_vs_prevalence_figure, _per_class_figure
from ecgnet.evaluation.compare_report.roc import _roc_figure, _roc_runs
from ecgnet.evaluation.compare_report.tables import _cost_section, _explanation_sections, _per_class_sections, _runs_section
from ecgnet.evaluation.compare_report.tradeoff import _tradeoff_figure
from ecgnet.document import Section, save_png, write_document
from ecgnet.fileio import write_json

_CSS_EXTRA = ("body{max-width:1200px}table{font-size:13px}th,td{padding:3px 7px}td{white-space:nowrap}"
              "td.l{white-space:normal}"
              "tbody tr:last-child{font-weight:normal}li{margin:.35em 0}")


def write_comparison_report(out_dir: Path, result: dict, y_true=None, probs: dict | None = None,
                            extra_figures: dict | None = None, roc_note: str | None = None) -> Path:
    """Write comparison.json/.md/.html (+ figures/) into ``out_dir``; return the HTML path.
    ``y_true``/``probs``: fold-10 labels and {run: probabilities} for the ROC curves (runs not drawn are
    ignored; None: no ROC figure, ``roc_note`` says why). ``extra_figures``: {file name: (caption,
    matplotlib Figure or PNG bytes)} (the explanation heatmaps)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = result["classes"]
    figs = {}
    if len(classes) <= MANY_CLASSES:
        figs["per_class_auc.png"] = ("Per-class AUC of every run, coloured by its difference from the baseline",
                                     _per_class_figure(classes, result))
        chosen = [n for n in _roc_runs(result) if probs and n in probs]
        if y_true is not None and chosen:
            figs["roc.png"] = ("ROC curves per class: the baseline, the best run and the best run of each other "
                               "modality and fusion family (by fold 9)",
                               _roc_figure(np.asarray(y_true), {n: probs[n] for n in chosen}, classes, result))
    else:
        figs["per_class_auc.png"] = ("Per-class AUC against class frequency, and the best run against the baseline",
                                     _auc_vs_prevalence_figure(classes, result))
    if any(r["complexity"].get("macs_per_ecg") for r in result["runs"]):
        figs["tradeoff.png"] = ("Fold-10 macro AUC against MACs per ECG; numbers as in the runs table",
                                _tradeoff_figure(result))
    figs.update(extra_figures or {})
    figures = {name: (caption, fig if isinstance(fig, bytes) else save_png(fig, out_dir / "figures" / name))
               for name, (caption, fig) in figs.items()}
    write_json(out_dir / "comparison.json", result)

    main_class, appendix_class = _per_class_sections(result)
    roc = ([Section("ROC curves", figures=["roc.png"])] if "roc.png" in figures else
           [Section("ROC curves", paragraphs=[f"Not drawn: {roc_note}"])] if roc_note else [])
    sections = [_runs_section(result), *_modality_sections(result), *main_class, _cost_section(result),
                *_explanation_sections(result), *roc, *_appendix_sections(result, appendix_class)]
    prov = result.get("provenance") or {}
    footer = (f"Computed in {result.get('seconds', 0):.0f} s at revision {str(prov.get('git_revision', '?'))[:10]}"
              f"{' (uncommitted changes)' if prov.get('git_dirty') else ''} on {prov.get('date', '?')}; command and "
              "environment under Provenance. Re-render without recomputing: ecgnet compare --render-only OUT.")
    title = f"Model comparison — {result['task']}"
    return write_document(out_dir, "comparison", title, sections, figures,
                          bullets=("Conclusion", result["conclusion"]), css=_CSS_EXTRA, footer=footer, contents=True)
