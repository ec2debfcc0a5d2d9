"""The comparison report: ``comparison.json``, ``comparison.md`` (figures in ``figures/``, linked) and
a self-contained ``comparison.html`` (figures embedded as base64 PNG), in the style of the run report."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ecgnet.evaluation.report import _png, write_document  # noqa: E402
from ecgnet.fileio import write_json  # noqa: E402

_CSS_EXTRA = "tbody tr:last-child{font-weight:normal}li{margin:.3em 0}"
MANY_CLASSES = 10  # above this (e.g. the 71-statement `all` task) per-class tables list classes as rows


def _ci(m: dict) -> str:
    return f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"


def _delta(d: dict) -> str:
    """A paired-bootstrap difference with its interval: '+0.0010 [+0.0001, +0.0017]'."""
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def _num(x, spec="{:.3f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


# --- tables --------------------------------------------------------------------------------

def _tables(result: dict) -> list[tuple[str, list[str], list[list[str]], str | None]]:
    classes, runs = result["classes"], result["runs"]
    base = result["baseline"]
    out = []
    rows = []
    for r in runs:
        a, d = r["accuracy"], r["vs_baseline"]
        sla = (a.get("single_label_accuracy") or {}).get("value")
        name = r["name"] + (" (baseline)" if r["name"] == base else "") + (" ★" if r["name"] == result["best"] else "")
        is_base = r["name"] == base
        mods = "+".join(r.get("modalities") or []) or "–"
        rows.append([name, mods, r.get("imbalance") or "–", _num(a["val_macro_auc"], "{:.4f}"),
                     _ci(a["macro_auc"]),
                     "reference" if is_base else _delta(d),
                     "–" if is_base else _num(d["p_value"]),
                     _num(a.get("macro_f1")), _num(a.get("mean_balanced_accuracy")), _num(sla)])
    out.append(("Accuracy", ["Model", "Modalities", "Imbalance", "Val macro AUC (fold 9)", "Test macro AUC [90% CI]",
                             "Δ vs baseline [90% CI]", "p (Δ ≤ 0)", "Macro F1", "Mean bal. acc.", "Single-label acc."], rows,
                f"★ = best by {result['best_rule']} (a late-stacking run's fold-9 AUC is out-of-fold: its stack "
                f"is fitted on fold 9). Test = fold 10 ({result['n_test_records']} records). "
                f"Δ: paired bootstrap on the same {result['n_boot']} resamples of fold 10; p = fraction of "
                "resamples where the run is not better. F1 / balanced accuracy at the fold-9 thresholds."))
    out += _modality_set_table(runs, base)
    out += _per_class_tables(classes, runs)
    rows = []
    for r in runs:
        c = r["complexity"]
        mw, me = c.get("macs_per_window"), c.get("macs_per_ecg")
        rows.append([r["name"], _num(c.get("parameters"), "{:,}"), _num(mw and mw / 1e6, "{:.2f}"),
                     _num(me and me / 1e6, "{:.1f}"), _num(c.get("latency_ms"), "{:.1f}"),
                     _num(c.get("epoch_seconds"), "{:.1f}"), _num(c.get("training_seconds"), "{:.0f}"),
                     _num(c.get("epochs_run"), "{}")])
    out.append(("Complexity", ["Model", "Parameters", "M MACs / window", "M MACs / ECG", "Latency ms / ECG (1 thread)",
                               "Mean epoch s", "Training s", "Epochs"], rows,
                "MACs counted by torch's FlopCounterMode (convolutions, matrix products) plus the frontends' FFTs "
                "(radix-2 estimate, 2.5 n log2 n FLOPs per real transform); element-wise ops not counted. An ECG = "
                "all windows of windowed inference. Latency: median wall time of whole-record "
                "inference on one CPU thread, on the machine that ran the comparison."))
    for r in runs:
        ab = r.get("ablation") or {}
        if ab.get("drop"):
            rows = [["(none dropped)", _num(ab["full"]["macro_auc"], "{:.4f}"), "", "",
                     *(_num(ab["full"]["per_class_auc"][c]) for c in classes)]]
            rows += [[m, _num(e["macro_auc"], "{:.4f}"), f"{e['loss']:+.4f} [{e['low']:+.4f}, {e['high']:+.4f}]",
                      _num(e["p_value"]), *(f"{e['per_class_loss'][c]:+.3f}" for c in classes)]
                     for m, e in ab["drop"].items()]
            out.append((f"Modality ablation: {r['name']}", ["Dropped", "Macro AUC", "Loss [90% CI]", "p (loss ≤ 0)",
                                                            *classes], rows,
                        f"Fold 10 ({ab['n_records']} records); loss = AUC with all modalities − AUC without it "
                        "(the model's own missing-modality representation). Class columns: the first row gives "
                        "the per-class AUC with all modalities, the others the per-class AUC loss."))
        if ab.get("weights"):
            w = ab["weights"]
            mods = list(w["all"])
            out.append((f"Gate / attention weights: {r['name']}", ["Records", *mods],
                        [[g if g == "all" else f"positive for {g}", *(f"{w[g][m]:.3f}" for m in mods)] for g in w],
                        f"Mean weight per modality over {ab.get('n_records', 'the')} fold-10 records (each record: "
                        "mean over its inference windows)."))
    ex = result.get("explanation")
    if ex and ex.get("lead_importance", {}).get("classes"):
        t = ex["lead_importance"]
        out.append((f"Lead importance: {ex['run']}", ["Class", "n", *t["leads"]],
                    [[c, str(t["n_records"][c]), *(f"{t['importance'][c][lead]:.3f}" for lead in t["leads"])]
                     for c in t["classes"]], t["method"] + "; fold-10 records positive for the class, each on its "
                                                           "highest-logit window."))
    if ex and ex.get("examples"):
        out.append((f"Explained examples: {ex['run']}", ["Class", "ecg_id", "Labels", "p", "Window start s",
                                                         "IG completeness δ", "Top frequencies Hz"],
                    [[c, str(e["ecg_id"]), ", ".join(e["labels"]), f"{e['probability']:.3f}",
                      f"{e['window_start_s']:.2f}", f"{e['ig_delta']:.2g}",
                      ", ".join(f"{f:.1f}" for f in e.get("top_frequencies_hz", [])) or "–"]
                     for c, e in ex["examples"].items()],
                    "Per class the fold-10 record positive for it (only for it, if any) with the highest predicted "
                    "probability; explained on the window with the highest logit. δ = sum of attributions − "
                    "(logit − baseline logit)."))
    notes = [[r["name"], n] for r in runs for n in r["notes"]]
    if notes:
        out.append(("Notes", ["Model", "Note"], notes, None))
    return out


def _modality_set_table(runs, base: str) -> list:
    """The runs ordered by the modalities they see (fewest first): each modality alone, the pairs,
    all four, with and without metadata — every row a trained (or refitted) model, not a test-time drop."""
    known = [r for r in runs if r.get("modalities")]
    if len({tuple(r["modalities"]) for r in known}) < 2:
        return []
    order = sorted(known, key=lambda r: (len(r["modalities"]), "metadata" in r["modalities"], r["name"]))
    rows = [["+".join(r["modalities"]), str(len(r["modalities"])), r["name"], _ci(r["accuracy"]["macro_auc"]),
             "reference" if r["name"] == base else _delta(r["vs_baseline"])]
            for r in order]
    return [("Ablation by modality set (each row trained or refitted with those modalities)",
             ["Modalities", "n", "Model", "Test macro AUC [90% CI]", "Δ vs baseline [90% CI]"], rows,
             "Rows with metadata follow those without at the same number of modalities. The test-time drop of "
             "one modality from a trained fusion model is in the modality-ablation tables below.")]


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


def conclusion(runs: list[dict], baseline: str, best: str | None) -> list[str]:
    """Short factual statements generated from the numbers."""
    by = {r["name"]: r for r in runs}
    base = by[baseline]["accuracy"]["macro_auc"]
    lines = []
    if best is not None:
        b = by[best]["accuracy"]
        lines.append(f"Best by fold-9 (validation) macro AUC: {best} (val {b['val_macro_auc']:.4f}; fold-10 test "
                     f"{_ci(b['macro_auc'])}).")
    fusion = [r for r in runs if len(r.get("modalities") or []) > 1 and r["accuracy"]["val_macro_auc"] is not None]
    if fusion:
        f = max(fusion, key=lambda r: r["accuracy"]["val_macro_auc"])
        a, d = f["accuracy"], f["vs_baseline"]
        lines.append(f"Best fusion model (two or more modalities) by fold-9 macro AUC: {f['name']} (val "
                     f"{a['val_macro_auc']:.4f}; fold-10 test {_ci(a['macro_auc'])}; {_delta(d)} vs {baseline}, "
                     f"p = {d['p_value']:.3f}).")
    for r in runs:
        if r["name"] == baseline:
            continue
        d = r["vs_baseline"]
        verdict = ("higher than" if d["low"] > 0 else "lower than" if d["high"] < 0 else "not distinguishable from")
        lines.append(f"{r['name']}: fold-10 macro AUC {d['diff']:+.4f} vs {baseline} "
                     f"(90% paired interval [{d['low']:+.4f}, {d['high']:+.4f}], p = {d['p_value']:.3f}) — {verdict} the baseline.")
    eligible = [r for r in runs if r["accuracy"]["macro_auc"]["value"] >= base["low"]
                and (r["complexity"].get("macs_per_ecg") or 0) > 0]
    if eligible:
        t = max(eligible, key=lambda r: r["accuracy"]["macro_auc"]["value"] / r["complexity"]["macs_per_ecg"])
        macs, base_macs = t["complexity"]["macs_per_ecg"], by[baseline]["complexity"].get("macs_per_ecg")
        ratio = (" (the baseline itself)" if t["name"] == baseline else
                 f", {macs / base_macs:.2g}× the baseline's" if base_macs else "")
        lines.append(f"Best accuracy–cost trade-off: {t['name']} — test macro AUC {t['accuracy']['macro_auc']['value']:.4f} "
                     f"at {macs / 1e6:.1f} M MACs per ECG{ratio}; the highest AUC per MAC among the runs whose test "
                     f"macro AUC is at least the lower end of the baseline's 90% interval ({base['low']:.4f}).")
    for r in runs:
        drop = (r.get("ablation") or {}).get("drop")
        if drop:
            m, e = max(drop.items(), key=lambda kv: kv[1]["loss"])
            lines.append(f"{r['name']}: dropping {m} costs the most macro AUC ({e['loss']:+.4f}, "
                         f"[{e['low']:+.4f}, {e['high']:+.4f}]); " + ", ".join(
                             f"{k} {v['loss']:+.4f}" for k, v in drop.items() if k != m) + ".")
        weights = (r.get("ablation") or {}).get("weights", {}).get("all")
        if weights:
            lines.append(f"{r['name']}: mean gate/attention weight " +
                         ", ".join(f"{k} {v:.2f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])) + ".")
    return lines


# --- figures --------------------------------------------------------------------------------

def _roc_figure(y, probs: dict, classes, result):
    n = len(classes)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    auc = {r["name"]: r["accuracy"]["per_class"] for r in result["runs"]}
    for k, c in enumerate(classes):
        ax = axes.flat[k]
        for name, p in probs.items():
            fpr, tpr, _ = roc_curve(y[:, k], p[:, k])
            ax.plot(fpr, tpr, lw=1.3, label=f"{name} ({auc[name][c]['auc']:.3f})")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.set(title=f"{c} (n+ = {int(y[:, k].sum())})", xlim=(0, 1), ylim=(0, 1.01), xlabel="FPR", ylabel="TPR")
        ax.legend(loc="lower right", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("ROC curves per class, fold 10 (legend: AUC)")
    fig.tight_layout()
    return fig


def _per_class_figure(classes, result):
    runs = result["runs"]
    x, width = np.arange(len(classes)), 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(classes) + 0.5 * len(runs) + 2), 4.2))
    for i, r in enumerate(runs):
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, [r["accuracy"]["per_class"][c]["auc"] for c in classes],
               width, label=r["name"])
    lo = min(r["accuracy"]["per_class"][c]["auc"] for r in runs for c in classes)
    ax.set_xticks(x, classes)
    ax.set(ylim=(max(0.0, lo - 0.05), 1), ylabel="AUC", title="Per-class AUC, fold 10")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _auc_vs_prevalence_figure(classes, result):
    """For many classes: each run's per-class AUC against the class's number of fold-10 positives."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in result["runs"]:
        pc = r["accuracy"]["per_class"]
        ax.scatter([pc[c]["n_positive"] for c in classes], [pc[c]["auc"] for c in classes], s=14, alpha=0.7,
                   label=f"{r['name']} (macro {r['accuracy']['macro_auc']['value']:.3f})")
    ax.set_xscale("log")
    ax.set(xlabel="positives in fold 10 (log scale)", ylabel="AUC",
           title=f"Per-class AUC vs class frequency, fold 10 ({len(classes)} classes)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _tradeoff_figure(result):
    runs = [r for r in result["runs"] if r["complexity"].get("macs_per_ecg")]
    base = next(r for r in result["runs"] if r["name"] == result["baseline"])["accuracy"]["macro_auc"]
    panels = [("macs_per_ecg", 1e-6, "M MACs per ECG (log scale)"),
              ("latency_ms", 1.0, "latency ms per ECG, 1 thread (log scale)")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, (key, scale, label) in zip(axes, panels):
        ax.axhspan(base["low"], base["high"], color="grey", alpha=0.2, label="baseline 90% CI")
        xs = []
        for r in runs:
            if r["complexity"].get(key) is None:
                continue
            m, x = r["accuracy"]["macro_auc"], r["complexity"][key] * scale
            xs.append(x)
            ax.errorbar(x, m["value"], yerr=[[m["value"] - m["low"]], [m["high"] - m["value"]]],
                        fmt="o", capsize=3, label=r["name"])
            ax.annotate(r["name"], (x, m["value"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xscale("log")
        if xs:
            ax.set_xlim(min(xs) / 2, max(xs) * 2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=label, ylabel="test macro AUC (90% CI)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Accuracy vs complexity, fold 10")
    fig.tight_layout()
    return fig


# --- writer ---------------------------------------------------------------------------------

def write_comparison_report(out_dir: Path, result: dict, y_true, probs: dict, extra_figures: dict | None = None) -> Path:
    """Write comparison.json/.md/.html (+ figures/) into ``out_dir``; return the HTML path.
    ``extra_figures``: {file name: (caption, matplotlib Figure)} (the explanation heatmaps)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = result["classes"]
    if len(classes) <= MANY_CLASSES:
        figs = {"roc.png": ("ROC curves per class", _roc_figure(np.asarray(y_true), probs, classes, result)),
                "per_class_auc.png": ("Per-class AUC across models", _per_class_figure(classes, result))}
    else:
        figs = {"per_class_auc.png": ("Per-class AUC against class frequency",
                                      _auc_vs_prevalence_figure(classes, result))}
    if any(r["complexity"].get("macs_per_ecg") for r in result["runs"]):
        figs["tradeoff.png"] = ("Macro AUC vs MACs and latency", _tradeoff_figure(result))
    figs.update(extra_figures or {})
    figures = {name: (caption, _png(fig, out_dir / "figures" / name)) for name, (caption, fig) in figs.items()}
    write_json(out_dir / "comparison.json", result)

    title = f"Model comparison — {result['task']}"
    return write_document(out_dir, "comparison", title, _tables(result), figures,
                          bullets=("Conclusion", result["conclusion"]), css=_CSS_EXTRA,
                          footer=f"Generated in {result.get('seconds', 0):.0f} s.")


def format_comparison(result: dict) -> Table:
    """Terminal summary: one row per run (fold-9 and fold-10 macro AUC, Δ vs baseline, cost)."""
    table = Table(title=f"Model comparison — {result['task']} (fold 10 unless noted)",
                  caption=f"★ best by fold-9 macro AUC; Δ: paired bootstrap vs {result['baseline']}, 90% interval")
    for h in ("Model", "Val AUC", "Test macro AUC [90% CI]", "Δ vs baseline", "Params", "M MACs/ECG", "ms/ECG"):
        table.add_column(h, justify="left" if h == "Model" else "right")
    for r in result["runs"]:
        d, c = r["vs_baseline"], r["complexity"]
        me = c.get("macs_per_ecg")
        table.add_row(r["name"] + (" ★" if r["name"] == result["best"] else ""),
                      _num(r["accuracy"]["val_macro_auc"], "{:.4f}"), _ci(r["accuracy"]["macro_auc"]),
                      "reference" if r["name"] == result["baseline"] else _delta(d),
                      _num(c.get("parameters"), "{:,}"), _num(me and me / 1e6, "{:.1f}"),
                      _num(c.get("latency_ms"), "{:.1f}"))
    return table
