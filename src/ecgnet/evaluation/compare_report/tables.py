"""The report's main tables: runs (accuracy and cost), per class, cost, explanations."""

from __future__ import annotations

from ecgnet.evaluation.compare_report.common import (ABBREVIATION_NOTE, MANY_CLASSES, _ci, _delta, _name, _num, _numbered, _strategy,
                        _verdict)
from ecgnet.document import Section


def _runs_section(result: dict) -> Section:
    base = result["baseline"]
    rows = []
    for i, r in _numbered(result):
        a, d, c = r["accuracy"], r["vs_baseline"], r["complexity"]
        me = c.get("macs_per_ecg")
        is_base = r["name"] == base
        rows.append([str(i), _name(r, result), _strategy(r), _num(a["val_macro_auc"], "{:.4f}"), _ci(a["macro_auc"]),
                     "reference" if is_base else _delta(d), "–" if is_base else _num(d["p_value"]),
                     "–" if is_base else _verdict(r, base).replace("not separated", "n.s."),
                     _num(me and me / 1e6, "{:.0f}"),
                     _num(c.get("latency_ms"), "{:.1f}")])
    return Section(
        "Runs: accuracy and cost",
        ["#", "Run", "Strategy", "Fold-9 AUC", "Fold-10 macro AUC [90% CI]", "Δ vs baseline [90% CI]", "p",
         "vs baseline", "M MACs / ECG", "ms / ECG"], rows,
        f"★ = best by {result['best_rule']} (a late-stacking run's fold-9 AUC is out-of-fold: its stack is fitted "
        f"on fold 9). Fold 10: {result['n_test_records']} records. Δ: paired bootstrap against {base} on the same "
        f"{result['n_boot']} resamples of fold 10; p = fraction of resamples where the run is not better; "
        "'vs baseline': the 90% paired interval lies above zero (higher), below it (lower) or across it (n.s., "
        "not separated). "
        f"Strategy: {ABBREVIATION_NOTE}. Latency: one CPU thread; more cost measures under Cost.",
        figures=["tradeoff.png"])


def _auc_cell(run: dict, c: str) -> str:
    return _num(run["accuracy"]["per_class"][c]["auc"])


def _accuracy_cell(run: dict, c: str) -> str:
    m = run["accuracy"]["per_class"][c]
    return f"{_num(m.get('balanced_accuracy'))} / {_num(m.get('accuracy'))}"


def _per_class_tables(classes, runs) -> list:
    """Per-class AUC and balanced accuracy / accuracy: a row per model, or for many classes a row per
    class (with its number of fold-10 positives) and a column per model."""
    titles = ("Per-class AUC (fold 10)", "Per-class balanced accuracy / accuracy (fold 10, fold-9 thresholds)")
    cells = (_auc_cell, _accuracy_cell)
    if len(classes) <= MANY_CLASSES:
        return [(title, ["Model", *classes], [[r["name"], *(cell(r, c) for c in classes)] for r in runs], None)
                for title, cell in zip(titles, cells)]
    positives = {c: str(runs[0]["accuracy"]["per_class"][c].get("n_positive", "–")) for c in classes}
    return [(title, ["Class", "n+", *(r["name"] for r in runs)],
             [[c, positives[c], *(cell(r, c) for r in runs)] for c in classes], None)
            for title, cell in zip(titles, cells)]


def _per_class_sections(result: dict) -> tuple[list[Section], list[Section]]:
    """(main sections, appendix sections): for many classes the long tables go to the appendix."""
    classes, runs = result["classes"], result["runs"]
    tables = [Section(t, h, rows, note, level=3) for t, h, rows, note in _per_class_tables(classes, runs)]
    other = Section("Other accuracy measures", ["#", "Run", "Imbalance", "Macro F1", "Mean bal. acc.",
                                                "Single-label acc."],
                    [[str(i), r["name"], r.get("imbalance") or "–", _num(r["accuracy"].get("macro_f1")),
                      _num(r["accuracy"].get("mean_balanced_accuracy")),
                      _num((r["accuracy"].get("single_label_accuracy") or {}).get("value"))] for i, r in _numbered(result)],
                    "F1 and balanced accuracy at the fold-9 thresholds (Youden's J per class); single-label accuracy "
                    "over the fold-10 records with exactly one label.", level=3)
    if len(classes) <= MANY_CLASSES:
        return [Section("Per class", paragraphs=["The figure gives every per-class AUC (also as a table in the "
                                                 "appendix)."], figures=["per_class_auc.png"]), tables[1], other], [tables[0]]
    return ([Section("Per class", paragraphs=[f"{len(classes)} classes: the per-class tables are in the appendix."],
                     figures=["per_class_auc.png"]), other], tables)


def _cost_section(result: dict) -> Section:
    rows = []
    for i, r in _numbered(result):
        c = r["complexity"]
        mw, me = c.get("macs_per_window"), c.get("macs_per_ecg")
        rows.append([str(i), r["name"], _num(c.get("parameters"), "{:,}"), _num(mw and mw / 1e6, "{:.2f}"),
                     _num(me and me / 1e6, "{:.1f}"), _num(c.get("latency_ms"), "{:.1f}"),
                     _num(c.get("epoch_seconds"), "{:.0f}"), _num(c.get("training_seconds"), "{:.0f}"),
                     _num(c.get("epochs_run"), "{}")])
    return Section("Cost", ["#", "Run", "Parameters", "M MACs / window", "M MACs / ECG", "ms / ECG (1 thread)",
                            "Mean epoch s", "Training s", "Epochs"], rows,
                   "MACs counted by torch's FlopCounterMode (convolutions, matrix products) plus the frontends' FFTs "
                   "(radix-2 estimate, 2.5 n log2 n FLOPs per real transform); element-wise ops not counted. An ECG = "
                   "all windows of windowed inference. Latency: median wall time of whole-record inference on one "
                   "CPU thread, on the machine that ran the comparison. A late-fusion run was not trained as a "
                   "whole (its members were), hence no epochs.")


def _explanation_sections(result: dict) -> list[Section]:
    ex = result.get("explanation")
    if not ex:
        return []
    out = [Section(f"Explanations: {ex['run']}", paragraphs=[
        "Integrated Gradients of each class's logit, on the best run (by fold 9). A sketch on a few records per "
        "class, not a study."])]
    if ex.get("lead_importance", {}).get("classes"):
        t = ex["lead_importance"]
        out.append(Section("Lead importance", ["Class", "n", *t["leads"]],
                           [[c, str(t["n_records"][c]), *(f"{t['importance'][c][lead]:.3f}" for lead in t["leads"])]
                            for c in t["classes"]],
                           t["method"] + "; fold-10 records positive for the class, each on its highest-logit window.",
                           figures=["lead_importance.png"], level=3))
    if ex.get("examples"):
        classes = list(ex["examples"])
        out.append(Section("Explained examples", ["Class", "ecg_id", "Labels", "p", "Window start s",
                                                  "IG completeness δ", "Top frequencies Hz"],
                           [[c, str(e["ecg_id"]), ", ".join(e["labels"]), f"{e['probability']:.3f}",
                             f"{e['window_start_s']:.2f}", f"{e['ig_delta']:.2g}",
                             ", ".join(f"{f:.1f}" for f in e.get("top_frequencies_hz", [])) or "–"]
                            for c, e in ex["examples"].items()],
                           "Per class the fold-10 record positive for it (only for it, if any) with the highest "
                           "predicted probability; explained on the window with the highest logit. δ = sum of "
                           "attributions − (logit − baseline logit). Heatmaps below: over leads × time, then over "
                           "leads × frequency (if the run has a frequency frontend).",
                           figures=[f"time_{c}.png" for c in classes] + [f"frequency_{c}.png" for c in classes],
                           level=3, grid=True))
    return out
