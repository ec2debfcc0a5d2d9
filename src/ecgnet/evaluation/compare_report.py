"""The comparison report: ``comparison.json``, ``comparison.md`` (figures in ``figures/``, linked) and
a self-contained ``comparison.html`` (figures embedded as base64 PNG), in the style of the run report.

The page reads like the README's summary: a short conclusion (which fusion strategy, at what cost,
why), then one table of every run's accuracy and cost with the accuracy-vs-complexity figure, what each
modality adds, per-class results, explanations, and an appendix with the per-run detail. Everything
is drawn from the comparison's result (``comparison.json``); only the ROC curves need the runs' saved
fold-10 probabilities and the labels. :func:`render_comparison` re-renders an existing report from its
``comparison.json`` without recomputing anything (``ecgnet compare --render-only OUT``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ecgnet.errors import ECGNetError  # noqa: E402
from ecgnet.evaluation.report import Section, _png, write_document  # noqa: E402
from ecgnet.fileio import write_json  # noqa: E402

# wider page than a run report; numbers never wrap inside a cell (a table too wide scrolls in its box)
_CSS_EXTRA = ("body{max-width:1200px}table{font-size:13px}th,td{padding:3px 7px}td{white-space:nowrap}"
              "td.l{white-space:normal}"
              "tbody tr:last-child{font-weight:normal}li{margin:.35em 0}")
MANY_CLASSES = 10  # above this (e.g. the 71-statement `all` task) per-class tables list classes as rows
MODALITY_ORDER = ("time", "frequency", "spectrogram", "metadata")
ABBREVIATION_NOTE = "t / f / s / m = time / frequency / spectrogram / metadata"
FAMILY_STYLE = {  # colour and marker of each strategy family in the figures
    "single modality": ("#4c72b0", "o"), "early": ("#dd8452", "s"),
    "intermediate": ("#55a868", "D"), "late": ("#c44e52", "^")}


def _ci(m: dict) -> str:
    return f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"


def _delta(d: dict) -> str:
    """A paired-bootstrap difference with its interval: '+0.0010 [+0.0001, +0.0017]'."""
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def _num(x, spec="{:.3f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def _verdict(run: dict, baseline: str) -> str:
    """Whether the run's 90 % paired interval against the baseline lies above, below or across zero."""
    if run["name"] == baseline:
        return "reference"
    d = run["vs_baseline"]
    return "higher" if d["low"] > 0 else "lower" if d["high"] < 0 else "not separated"


def _family(run: dict) -> str:
    head = (run.get("model") or "").split("_")[0]
    return head if head in ("early", "intermediate", "late") else "single modality"


def _strategy(run: dict) -> str:
    """The strategy column: the run's strategy (from its config, saved by compare) + its imbalance option."""
    text = run.get("strategy") or "+".join(run.get("modalities") or []) or (run.get("model") or "–")
    imbalance = run.get("imbalance")
    return text + (f" + {imbalance}" if imbalance and imbalance != "none" else "")


def _numbered(result: dict) -> list[tuple[int, dict]]:
    """(number, run): the numbers of the runs table, shared by every figure and table."""
    return list(enumerate(result["runs"], 1))


def _name(run: dict, result: dict) -> str:
    return run["name"] + (" ★" if run["name"] == result["best"] else "") + (
        " (baseline)" if run["name"] == result["baseline"] else "")


def _auc(run: dict) -> float:
    return run["accuracy"]["macro_auc"]["value"]


# --- conclusion ----------------------------------------------------------------------------

def conclusion(runs: list[dict], baseline: str, best: str | None) -> list[str]:
    """The answer in a few generated sentences: which run is best (chosen on fold 9) and whether it beats
    the baseline, which runs the paired bootstrap separates from it, why (single modalities alone,
    test-time modality drops, gate/attention weights) and at what cost. Per-run detail goes to the tables."""
    by = {r["name"]: r for r in runs}
    base = by[baseline]
    words = {"higher": "higher than the baseline by a margin the paired bootstrap supports",
             "lower": "lower than the baseline", "not separated": "not separated from the baseline by the paired bootstrap"}
    lines = []
    if best is not None:
        b = by[best]
        a = b["accuracy"]
        if best == baseline:
            lines.append(f"Best by fold-9 (validation) macro AUC: the baseline {baseline} itself ({_strategy(b)}; "
                         f"fold-9 {a['val_macro_auc']:.4f}, fold-10 {_ci(a['macro_auc'])}).")
        else:
            d = b["vs_baseline"]
            pc, bpc = a["per_class"], base["accuracy"]["per_class"]
            both = [c for c in pc if c in bpc and pc[c].get("auc") is not None and bpc[c].get("auc") is not None]
            wins = sum(pc[c]["auc"] > bpc[c]["auc"] for c in both)
            lines.append(f"Best by fold-9 (validation) macro AUC: {best} ({_strategy(b)}; fold-9 "
                         f"{a['val_macro_auc']:.4f}). Fold-10 macro AUC {_ci(a['macro_auc'])}, {_delta(d)} vs "
                         f"{baseline} (p = {d['p_value']:.3f}): {words[_verdict(b, baseline)]}"
                         + (f"; its per-class AUC is higher for {wins} of {len(both)} classes." if both else "."))
    fusion = [r for r in runs if len(r.get("modalities") or []) > 1 and r["accuracy"]["val_macro_auc"] is not None]
    if fusion:
        f = max(fusion, key=lambda r: r["accuracy"]["val_macro_auc"])
        if f["name"] != best:
            a, d = f["accuracy"], f["vs_baseline"]
            lines.append(f"Best fusion model (two or more modalities) by fold-9 macro AUC: {f['name']} "
                         f"({_strategy(f)}; fold-9 {a['val_macro_auc']:.4f}): fold-10 {_ci(a['macro_auc'])}, "
                         f"{_delta(d)} vs {baseline}.")
    others = [r for r in runs if r["name"] != baseline]
    if others:
        above = sorted((r for r in others if _verdict(r, baseline) == "higher"), key=lambda r: -r["vs_baseline"]["diff"])
        below = [r for r in others if _verdict(r, baseline) == "lower"]
        level = len(others) - len(above) - len(below)
        text = (f"Against {baseline} (paired 90 % intervals, fold 10): "
                + (f"above it {', '.join(r['name'] + ' ' + _delta(r['vs_baseline']) for r in above)}"
                   + ("" if best in {r['name'] for r in above} or best is None else " (not chosen by fold 9)")
                   if above else "no run is above it"))
        text += f"; below it {', '.join(r['name'] for r in below)}" if below else ""
        text += f"; {level} not separated from it." if level else "."
        lines.append(text)
    singles = sorted((r for r in runs if len(r.get("modalities") or []) == 1), key=lambda r: -_auc(r))
    drops: dict[str, list[float]] = {}
    for r in runs:
        for m, e in ((r.get("ablation") or {}).get("drop") or {}).items():
            drops.setdefault(m, []).append(e["loss"])
    why = []
    if len(singles) > 1:
        why.append("alone, " + ", ".join(f"{r['name']}{'' if r['name'] == r['modalities'][0] else ' (' + r['modalities'][0] + ')'}"
                                         f" {_auc(r):.3f}" for r in singles)
                   + " (fold-10 macro AUC)")
    if drops:
        top = max(drops, key=lambda m: float(np.median(drops[m])))
        rest = [v for m, vs in drops.items() if m != top for v in vs]
        n = max(len(v) for v in drops.values())
        why.append(f"dropped at test time from the {n} fusion model{'s' if n > 1 else ''}, {top} costs "
                   f"{min(drops[top]):.3f}–{max(drops[top]):.3f} macro AUC"
                   + (f", any other single modality at most {max(rest):.3f}" if rest else ""))
    weights = [(r["name"], r["ablation"]["weights"]["all"]) for r in runs
               if ((r.get("ablation") or {}).get("weights") or {}).get("all")]
    if weights:
        why.append("mean gate/attention weights " + "; ".join(
            f"{n}: {max(w, key=w.get)} {max(w.values()):.2f}" for n, w in weights))
    if why:
        lines.append("Why: " + "; ".join(why) + ".")
    b, bc = by.get(best or ""), base["complexity"]
    if b is not None and best != baseline and b["complexity"].get("macs_per_ecg") and bc.get("macs_per_ecg"):
        c = b["complexity"]
        ratio = lambda k: f"{c[k] / bc[k]:.1f}×" if c.get(k) and bc.get(k) else "–"  # noqa: E731
        lines.append(f"Cost of {best}: {_num(c.get('parameters'), '{:,}')} parameters, {c['macs_per_ecg'] / 1e6:.0f} M "
                     f"MACs and {_num(c.get('latency_ms'), '{:.1f}')} ms per ECG (1 thread): {ratio('parameters')}, "
                     f"{ratio('macs_per_ecg')} and {ratio('latency_ms')} the baseline's.")
    low = base["accuracy"]["macro_auc"]["low"]
    eligible = [r for r in runs if _auc(r) >= low and (r["complexity"].get("macs_per_ecg") or 0) > 0]
    if eligible:
        t = max(eligible, key=lambda r: _auc(r) / r["complexity"]["macs_per_ecg"])
        lines.append(f"Best accuracy–cost trade-off: {t['name']}{' (the baseline)' if t['name'] == baseline else ''} — "
                     f"the highest AUC per MAC ({_auc(t):.4f} at {t['complexity']['macs_per_ecg'] / 1e6:.0f} M MACs "
                     f"per ECG) among the runs whose fold-10 macro AUC reaches the lower end of the baseline's "
                     f"interval ({low:.4f}).")
    return lines


# --- tables --------------------------------------------------------------------------------

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
    return [Section("Trained with fewer modalities",
                    ["Modalities", "n", "Model", "Test macro AUC [90% CI]", "Δ vs baseline [90% CI]"], rows,
                    "Each row trained (or refitted) with those modalities, fewest first; rows with metadata follow "
                    "those without at the same number of modalities.", level=3)]


def _modality_sections(result: dict) -> list[Section]:
    runs, base = result["runs"], result["baseline"]
    out = _modality_set_table(runs, base)
    dropped = [(i, r) for i, r in _numbered(result) if (r.get("ablation") or {}).get("drop")]
    if dropped:
        mods = [m for m in MODALITY_ORDER if any(m in r["ablation"]["drop"] for _, r in dropped)]
        mods += sorted({m for _, r in dropped for m in r["ablation"]["drop"]} - set(mods))

        def cell(e):
            return "–" if e is None else f"{e['loss']:+.4f}" + ("*" if e["low"] > 0 or e["high"] < 0 else "")

        rows = [[str(i), r["name"], _num(r["ablation"]["full"]["macro_auc"], "{:.4f}"),
                 *(cell(r["ablation"]["drop"].get(m)) for m in mods)] for i, r in dropped]
        n = sorted({r["ablation"]["n_records"] for _, r in dropped})
        out.append(Section("One modality dropped at test time", ["#", "Run", "Macro AUC, all", *(f"− {m}" for m in mods)],
                           rows, f"Loss of fold-10 macro AUC when the trained model loses one modality (its own "
                                 f"missing-modality representation), on {' / '.join(map(str, n))} fold-10 records; "
                                 "* = the 90% bootstrap interval of the loss excludes zero. Intervals and per-class "
                                 "losses are in the appendix.", level=3))
    weighted = [(i, r) for i, r in _numbered(result) if ((r.get("ablation") or {}).get("weights") or {}).get("all")]
    if weighted:
        mods = [m for m in MODALITY_ORDER if any(m in r["ablation"]["weights"]["all"] for _, r in weighted)]
        out.append(Section("Gate and attention weights", ["#", "Run", *mods],
                           [[str(i), r["name"], *(_num(r["ablation"]["weights"]["all"].get(m), "{:.2f}") for m in mods)]
                            for i, r in weighted],
                           "Mean weight per modality over the fold-10 records (per class: appendix).", level=3))
    if not out:
        return []
    return [Section("What each modality adds", paragraphs=[
        "Two views: models trained on fewer modalities, and a trained fusion model deprived of one modality at "
        "test time."] if dropped else []), *out]


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


def _appendix_sections(result: dict, extra: list[Section]) -> list[Section]:
    classes, out = result["classes"], list(extra)
    ablated = [(i, r) for i, r in _numbered(result) if (r.get("ablation") or {}).get("drop")
               or (r.get("ablation") or {}).get("weights")]
    if ablated:
        n = sorted({r["ablation"].get("n_records") for _, r in ablated} - {None})
        out.append(Section("Modality ablation per run", paragraphs=[
            f"Fold 10 ({' / '.join(map(str, n))} records). Loss = AUC with all modalities − AUC without one (the "
            "model's own missing-modality representation), with its 90% bootstrap interval and p = fraction of "
            "resamples where the loss is not positive. Class columns: the first row gives the per-class AUC with all "
            "modalities, the others the per-class AUC loss. Gate / attention weights: mean weight per modality "
            "(each record: mean over its inference windows), over all records and over those positive for each "
            "class."], level=3))
    for i, r in ablated:
        ab = r["ablation"]
        if ab.get("drop"):
            rows = [["(none dropped)", _num(ab["full"]["macro_auc"], "{:.4f}"), "", "",
                     *(_num(ab["full"]["per_class_auc"][c]) for c in classes)]]
            rows += [[m, _num(e["macro_auc"], "{:.4f}"), f"{e['loss']:+.4f} [{e['low']:+.4f}, {e['high']:+.4f}]",
                      _num(e["p_value"]), *(f"{e['per_class_loss'][c]:+.3f}" for c in classes)]
                     for m, e in ab["drop"].items()]
            out.append(Section(f"{i}. {r['name']}: modality dropped", ["Dropped", "Macro AUC", "Loss [90% CI]",
                                                                        "p (loss ≤ 0)", *classes], rows, level=4))
        if ab.get("weights"):
            w = ab["weights"]
            mods = list(w["all"])
            out.append(Section(f"{i}. {r['name']}: gate / attention weights", ["Records", *mods],
                               [[g if g == "all" else f"positive for {g}", *(f"{w[g][m]:.3f}" for m in mods)] for g in w],
                               level=4))
    notes = [[r["name"], n] for r in result["runs"] for n in r["notes"]]
    if notes:
        out.append(Section("Notes", ["Model", "Note"], notes, level=3))
    prov = result.get("provenance") or {}
    if prov:
        out.append(Section("Provenance", ["Key", "Value"], [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)]
                                                          for k, v in prov.items()], level=3))
    return [Section("Appendix", paragraphs=["Per-run detail behind the tables above."]), *out] if out else []


# --- figures --------------------------------------------------------------------------------

def _low_outliers(values: dict, squash: float = 3.0) -> set:
    """Keys of the values far below the others: the fewest lowest values (fewer than half) without which the
    remaining values span at least ``squash`` times less — e.g. a metadata-only AUC of 0.70 beside
    0.89–0.94, which drawn on the same axis squashes every other run into a line."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    top = items[-1][1] if items else 0.0
    for k in range((len(items) - 1) // 2):  # fewer than half of them
        rest = top - items[k + 1][1]
        if top - items[k][1] > squash * max(rest, 1e-12):
            return {key for key, _ in items[:k + 1]}
    return set()


def _place_labels(ax, points, labels, obstacles=(), fontsize=8.0, color="black"):
    """Write ``labels`` next to ``points`` (data coordinates) so that no two labels overlap, no label
    covers a marker or an obstacle box (display points) and all stay inside the axes: for each label the
    first free spot on rings of growing radius around its point (right first), with a leader line when
    it had to move away. The axes' limits and size must be final."""
    fig = ax.figure
    scale = 72.0 / fig.dpi
    to_pt = lambda xy: ax.transData.transform(xy) * scale  # noqa: E731
    pts = np.array([to_pt(p) for p in points]) if len(points) else np.zeros((0, 2))
    x0, y0, x1, y1 = (np.array(ax.get_window_extent().extents) * scale).tolist()
    marker, pad = 4.0, 1.0
    boxes = [tuple(b) for b in obstacles]
    angles = np.deg2rad([0, 30, -30, 60, -60, 90, -90, 180, 150, -150, 120, -120])
    crowd = [int(((pts - p) ** 2).sum(1).__lt__(30.0 ** 2).sum()) for p in pts]

    def hits(box):
        bx0, by0, bx1, by1 = box
        n = sum(1 for (ox0, oy0, ox1, oy1) in boxes if bx0 < ox1 + pad and bx1 > ox0 - pad and by0 < oy1 + pad
                and by1 > oy0 - pad)
        n += int(((pts[:, 0] > bx0 - marker) & (pts[:, 0] < bx1 + marker) & (pts[:, 1] > by0 - marker)
                  & (pts[:, 1] < by1 + marker)).sum())
        return n + (0 if bx0 >= x0 + 2 and bx1 <= x1 - 2 and by0 >= y0 + 2 and by1 <= y1 - 2 else 100)

    for k in sorted(range(len(pts)), key=lambda k: -crowd[k]):
        p, text = pts[k], labels[k]
        w, h = 0.62 * fontsize * len(text) + 2, 1.15 * fontsize
        best = None
        for radius in (6, 11, 17, 24, 32, 41, 51, 62):
            for a in angles:
                d = np.array([math.cos(a), math.sin(a)])
                c = p + d * radius + d * np.array([w / 2, h / 2])
                box = (c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2)
                score = hits(box)
                if best is None or score < best[0]:
                    best = (score, c, box, radius)
                if score == 0:
                    break
            if best[0] == 0:
                break
        _, c, box, radius = best
        boxes.append(box)
        ax.annotate(text, xy=points[k], xytext=tuple(c - p), textcoords="offset points", ha="center", va="center",
                    fontsize=fontsize, color=color, zorder=5,
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3) if radius > 6 else None)


def _style(run: dict, result: dict) -> dict:
    colour, marker = FAMILY_STYLE[_family(run)]
    best, base = run["name"] == result["best"], run["name"] == result["baseline"]
    return dict(color=colour, marker="*" if best else marker, markersize=13 if best else 6.5,
                markeredgecolor="black" if best or base else colour, markeredgewidth=1.2 if best or base else 0.5)


def _log_axis(ax, lo, hi, pad=1.6):
    ax.set_xscale("log")
    ax.set_xlim(lo / pad, hi * pad)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tradeoff_figure(result):
    """Fold-10 macro AUC (90 % CI) against M MACs per ECG, one numbered marker per run (numbers of the runs
    table, key below). The y axis is zoomed to the runs that are not far below the rest; those are marked
    at the bottom edge with their value. When many runs crowd near the baseline, a second panel zooms in on
    them (no intervals there: they are in the first panel and the table)."""
    numbered = [(i, r) for i, r in _numbered(result) if r["complexity"].get("macs_per_ecg")]
    base = next(r for r in result["runs"] if r["name"] == result["baseline"])["accuracy"]["macro_auc"]
    outliers = _low_outliers({i: _auc(r) for i, r in numbered})
    shown = [(i, r) for i, r in numbered if i not in outliers]
    crowd = [(i, r) for i, r in shown if _auc(r) >= base["low"]]
    lows = [r["accuracy"]["macro_auc"]["low"] for _, r in shown] + [base["low"]]
    highs = [r["accuracy"]["macro_auc"]["high"] for _, r in shown] + [base["high"]]
    span = max(highs) - min(lows)
    ylim = (min(lows) - 0.08 * span, max(highs) + 0.05 * span)
    crowd_span = (max(_auc(r) for _, r in crowd) - min(_auc(r) for _, r in crowd)) if crowd else 0
    zoom = len(crowd) >= 5 and crowd_span < 0.25 * span
    crowd_ids = {i for i, _ in crowd}
    fig = plt.figure(figsize=(11.5 if zoom else 8.5, 5.0))
    axes = [fig.add_axes([0.07, 0.12, 0.42, 0.78])] if zoom else [fig.add_axes([0.1, 0.12, 0.86, 0.78])]
    if zoom:
        axes.append(fig.add_axes([0.56, 0.12, 0.42, 0.78]))
    ax = axes[0]
    macs = [r["complexity"]["macs_per_ecg"] / 1e6 for _, r in numbered]
    _log_axis(ax, min(macs), max(macs))
    ax.set_ylim(*ylim)
    ax.axhspan(base["low"], base["high"], color="0.85", zorder=0)
    ax.axhline(base["value"], color="0.5", lw=0.8, ls="--", zorder=0)
    obstacles, label_pts, label_txt = [], [], []
    scale = 72.0 / fig.dpi
    for i, r in shown:
        m, x = r["accuracy"]["macro_auc"], r["complexity"]["macs_per_ecg"] / 1e6
        st = _style(r, result)
        ax.errorbar(x, m["value"], yerr=[[m["value"] - m["low"]], [m["high"] - m["value"]]], capsize=2.5,
                    elinewidth=0.9, ecolor=st["color"], linestyle="none", zorder=2, **st)
        (bx, blo), (_, bhi) = ax.transData.transform([(x, m["low"]), (x, m["high"])]) * scale
        obstacles.append((bx - 3, blo, bx + 3, bhi))
        if not (zoom and i in crowd_ids):
            label_pts.append((x, m["value"]))
            label_txt.append(str(i))
    for j, (i, r) in enumerate(sorted(((i, r) for i, r in numbered if i in outliers), key=lambda ir: -_auc(ir[1]))):
        m, x = r["accuracy"]["macro_auc"], r["complexity"]["macs_per_ecg"] / 1e6
        st = _style(r, result)
        y = ylim[0] + 0.012 * (ylim[1] - ylim[0])
        ax.plot(x, y, marker="v", color=st["color"], markersize=9, markeredgecolor="black", clip_on=False, zorder=4)
        ax.annotate(f"{i} {r['name']}: {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]\nfar below the axis ↓",
                    (x, y), xytext=(8, 8 + 30 * j), textcoords="offset points", fontsize=8, va="bottom", ha="left",
                    bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.6", lw=0.6),
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6) if j else None)
        bx, by = ax.transData.transform((x, y)) * scale
        obstacles.append((bx, by, bx + 190, by + 36 + 30 * j))
    if zoom:
        cx = [r["complexity"]["macs_per_ecg"] / 1e6 for _, r in crowd]
        cy = [_auc(r) for _, r in crowd]
        ypad = max(0.15 * (max(cy) - min(cy)), 0.0004)
        zx, zy = (min(cx) / 1.12, max(cx) * 1.12), (min(cy) - ypad, max(cy) + ypad)
        ax.add_patch(Rectangle((zx[0], zy[0]), zx[1] - zx[0], zy[1] - zy[0], fill=False, ec="0.25", lw=0.9, ls=":",
                               zorder=3))
        (rx0, ry0), (rx1, ry1) = ax.transData.transform([(zx[0], zy[0]), (zx[1], zy[1])]) * scale
        obstacles.append((rx0, ry0, rx1, ry1))
        ax.annotate("zoomed →", (zx[1], zy[1]), xytext=(2, 4), textcoords="offset points", fontsize=8, color="0.25")
    ax.set(xlabel="M MACs per ECG (log scale)", ylabel="fold-10 macro AUC (90% CI)",
           title="All runs" + (" (y axis zoomed; far-below runs marked ▼ at the bottom edge)" if outliers else ""))
    ax.title.set_fontsize(9.5)
    _place_labels(ax, label_pts, label_txt, obstacles)
    if zoom:
        z = axes[1]
        _log_axis(z, zx[0], zx[1], pad=1.0)
        z.set_ylim(*zy)
        z.axhline(base["value"], color="0.5", lw=0.8, ls="--", zorder=0)
        z.text(0.99, 0.015, f"dashed: the baseline's {base['value']:.4f}", transform=z.transAxes, fontsize=7.5,
               color="0.35", va="bottom", ha="right")
        for i, r in crowd:
            z.plot(r["complexity"]["macs_per_ecg"] / 1e6, _auc(r), linestyle="none", zorder=3, **_style(r, result))
        ticks = []
        for x in sorted({round(x) for x in cx}):  # one tick per group of near-equal costs
            if not ticks or x > ticks[-1] * 1.06:
                ticks.append(x)
        z.set_xticks(ticks, [f"{t:g}" for t in ticks])
        z.tick_params(axis="x", labelsize=7.5)
        z.set(xlabel="M MACs per ECG (log scale)", ylabel="fold-10 macro AUC")
        z.set_title(f"Zoom: the {len(crowd)} runs within or above the baseline's interval (intervals: left, table)",
                    fontsize=9.5)
        _place_labels(z, [(r["complexity"]["macs_per_ecg"] / 1e6, _auc(r)) for _, r in crowd],
                      [str(i) for i, _ in crowd])
    handles = [Line2D([], [], linestyle="none", **{**_style(r, result), "markersize": 7 if r["name"] ==
                                                       result["best"] else 5.5}) for _, r in numbered]
    labels = [f"{i}  {r['name']}{' ★' if r['name'] == result['best'] else ''}"
              f"{' (baseline)' if r['name'] == result['baseline'] else ''}{' ▼' if i in outliers else ''}"
              for i, r in numbered]
    ncol = 3 if len(numbered) > 6 else len(numbered)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.015), ncol=ncol, fontsize=8.5,
               frameon=False, handletextpad=0.3, columnspacing=1.5)
    fams = [f for f in FAMILY_STYLE if any(_family(r) == f for _, r in numbered)]
    fig.legend([Line2D([], [], linestyle="none", color=FAMILY_STYLE[f][0], marker=FAMILY_STYLE[f][1]) for f in fams]
               + [Line2D([], [], linestyle="none", marker="*", color="0.6", markeredgecolor="black", markersize=10),
                  Rectangle((0, 0), 1, 1, color="0.85")],
               fams + ["best by fold 9", "baseline 90% CI (dashed: value)"], loc="lower center",
               bbox_to_anchor=(0.5, 0.93), ncol=len(fams) + 2, fontsize=8.5, frameon=False, handletextpad=0.3)
    fig.suptitle("Accuracy vs complexity, fold 10 (numbers: the runs table)", y=1.02)
    return fig


def _per_class_figure(classes, result):
    """Runs × classes heatmap: each cell the fold-10 AUC, coloured by its difference from the baseline's."""
    runs = result["runs"]
    base = next(r for r in runs if r["name"] == result["baseline"])
    cols = [*classes, "macro"]
    value = lambda r, c: _auc(r) if c == "macro" else r["accuracy"]["per_class"][c]["auc"]  # noqa: E731
    auc = np.array([[value(r, c) for c in cols] for r in runs])
    diff = auc - np.array([value(base, c) for c in cols])
    lim = 0.02
    fig, ax = plt.subplots(figsize=(0.85 * len(cols) + 4.2, 0.3 * len(runs) + 1.5))
    image = ax.imshow(np.clip(diff, -lim, lim), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(len(runs)):
        for j in range(len(cols)):
            ax.text(j, i, f"{auc[i, j]:.3f}", ha="center", va="center", fontsize=7.5,
                    color="white" if abs(diff[i, j]) > 0.75 * lim else "black",
                    fontweight="bold" if runs[i]["name"] == result["baseline"] else "normal")
    n_pos = {c: runs[0]["accuracy"]["per_class"][c].get("n_positive") for c in classes}
    ax.set_xticks(range(len(cols)), [f"{c}\n(n+ {n_pos[c]})" if n_pos.get(c) else c for c in cols], fontsize=8)
    ax.set_yticks(range(len(runs)), [f"{i}  {_name(r, result)}" for i, r in _numbered(result)], fontsize=8)
    ax.axvline(len(classes) - 0.5, color="white", lw=3)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    fig.colorbar(image, ax=ax, label=f"AUC − {result['baseline']}'s (clipped at ±{lim})", fraction=0.04, pad=0.02)
    ax.set_title("Per-class AUC, fold 10 (colour: difference from the baseline; bold: the baseline)", fontsize=10,
                 pad=28)
    fig.tight_layout()
    return fig


def _auc_vs_prevalence_figure(classes, result):
    """For many classes: (left) each run's per-class AUC against the class's number of fold-10 positives;
    (right) the best run's per-class AUC minus the baseline's, the largest changes named."""
    runs = result["runs"]
    by = {r["name"]: r for r in runs}
    best, base = by.get(result["best"] or ""), by[result["baseline"]]
    two = best is not None and best is not base
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(12 if two else 7.5, 4.6), squeeze=False)
    ax = axes[0, 0]
    markers = "osD^vPX<>"
    for k, r in enumerate(runs):
        pc = r["accuracy"]["per_class"]
        ax.scatter([pc[c]["n_positive"] for c in classes], [pc[c]["auc"] for c in classes], s=16, alpha=0.75,
                   marker=markers[k % len(markers)], label=f"{r['name']} (macro {_auc(r):.3f})")
    ax.set_xscale("log")
    ax.set(xlabel="positives in fold 10 (log scale)", ylabel="AUC",
           title=f"Per-class AUC vs class frequency ({len(classes)} classes)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    if two:
        z = axes[0, 1]
        n = np.array([base["accuracy"]["per_class"][c]["n_positive"] for c in classes], dtype=float)
        d = np.array([best["accuracy"]["per_class"][c]["auc"] - base["accuracy"]["per_class"][c]["auc"]
                      for c in classes])
        ok = np.isfinite(d)
        z.axhline(0, color="0.5", lw=0.8)
        # the axis fits the classes with at least 10 positives; noisier ones beyond it sit on the edge (▲ ▼)
        steady = ok & (n >= 10)
        lim = 1.15 * float(np.abs(d[steady if steady.any() else ok]).max()) if ok.any() else 0.1
        shown = np.clip(d, -lim * 0.985, lim * 0.985)
        beyond = ok & (np.abs(d) > lim * 0.985)
        colour = np.where(d > 0, "#4c72b0", "#c44e52")
        z.scatter(n[ok & ~beyond], shown[ok & ~beyond], s=18, color=colour[ok & ~beyond])
        for k in np.flatnonzero(beyond):
            z.scatter(n[k], shown[k], s=30, marker="^" if d[k] > 0 else "v", color=colour[k], edgecolors="black",
                      linewidths=0.5, clip_on=False, zorder=4)
        z.set_xscale("log")
        z.set(xlabel="positives in fold 10 (log scale)", ylabel=f"AUC − {base['name']}'s",
              title=f"{best['name']} vs {base['name']}: higher for {int((d[ok] > 0).sum())} of {int(ok.sum())} classes")
        z.set_ylim(-lim, lim)
        if beyond.any():
            z.text(0.99, 0.01, f"▲▼ {int(beyond.sum())} classes beyond the axis (fewer than 10 positives; up to "
                   f"{float(np.abs(d[beyond]).max()):+.2f})", transform=z.transAxes, fontsize=7, color="0.4",
                   ha="right", va="bottom")
        z.set_xlim(n[ok].min() / 1.5, n[ok].max() * 1.5)
        big = np.flatnonzero(ok & (n >= 20))
        named = sorted(big, key=lambda k: -d[k])[:4] + sorted(big, key=lambda k: d[k])[:2]
        named = list(dict.fromkeys(named))
        fig.tight_layout()
        _place_labels(z, [(n[k], d[k]) for k in named], [classes[k] for k in named], fontsize=8)
        z.set_xlabel("positives in fold 10 (log scale); named: the largest changes among classes with ≥ 20 positives",
                     fontsize=9)
        return fig
    fig.tight_layout()
    return fig


def _roc_runs(result: dict) -> list[str]:
    """The runs drawn in the ROC figure: the baseline, the best run, and per other modality and per fusion
    family the run the selection rule would pick (highest fold-9 macro AUC) — a handful of distinct curves."""
    runs = [r for r in result["runs"] if r["accuracy"]["val_macro_auc"] is not None]
    groups: dict[str, dict] = {}
    for r in runs:
        key = (r["modalities"][0] if len(r.get("modalities") or []) == 1 and _family(r) == "single modality"
               else _family(r))
        if key not in groups or r["accuracy"]["val_macro_auc"] > groups[key]["accuracy"]["val_macro_auc"]:
            groups[key] = r
    chosen = {result["baseline"], result["best"], *(r["name"] for r in groups.values())} - {None}
    return [r["name"] for r in result["runs"] if r["name"] in chosen]


def _roc_figure(y, probs: dict, classes, result):
    n = len(classes)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.7 * rows + 0.6), squeeze=False)
    number = {r["name"]: i for i, r in _numbered(result)}
    auc = {r["name"]: r for r in result["runs"]}
    colours = plt.get_cmap("tab10").colors
    for k, c in enumerate(classes):
        ax = axes.flat[k]
        for j, (name, p) in enumerate(probs.items()):
            fpr, tpr, _ = roc_curve(y[:, k], p[:, k])
            ax.plot(fpr, tpr, lw=2.2 if name == result["best"] else 1.2, color=colours[j % 10],
                    ls="-" if name in (result["best"], result["baseline"]) else (0, (4, 1.5)))
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
        ax.set(title=f"{c} (n+ = {int(y[:, k].sum())})", xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate",
               ylabel="true positive rate")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], color=colours[j % 10], lw=2.2 if name == result["best"] else 1.2,
                      ls="-" if name in (result["best"], result["baseline"]) else (0, (4, 1.5)))
               for j, name in enumerate(probs)]
    labels = [f"{number[name]}  {name}{' ★' if name == result['best'] else ''} — macro AUC {_auc(auc[name]):.3f}"
              + (" (baseline)" if name == result["baseline"] else "") for name in probs]
    fig.tight_layout(rect=(0, 0.1 if n % cols == 0 else 0, 1, 0.95))
    if n % cols:  # the key in the empty panel
        axes.flat[-1].legend(handles, labels, loc="center", fontsize=8.5, frameon=False,
                             title="runs (best of each family by fold 9)", title_fontsize=8.5)
    else:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    fig.suptitle("ROC curves per class, fold 10")
    return fig


# --- writer ---------------------------------------------------------------------------------

def _run_dir(result: dict, run: dict, out_dir: Path) -> Path | None:
    """A run's directory as saved in the comparison (relative to where compare ran: the working
    directory, else the repository holding ``out_dir``)."""
    p = Path(run["run_dir"])
    for candidate in (p, *(parent / p for parent in Path(out_dir).resolve().parents)):
        if (candidate / "test" / "predictions.csv").is_file():
            return candidate
    return None


def _saved_roc_inputs(result: dict, out_dir: Path, data_root) -> tuple:
    """(fold-10 labels, {run: probabilities}) of the ROC runs, from their saved predictions and PTB-XL."""
    from ecgnet.data import ptbxl
    from ecgnet.evaluation import metrics as M

    root = ptbxl.data_root(data_root)
    labels = ptbxl.make_labels(ptbxl.read_database(root), ptbxl.read_statements(root), result["task"])
    if list(labels.classes) != list(result["classes"]):
        raise ECGNetError(f"the classes of task '{result['task']}' in {root} differ from the report's")
    mask = labels.split("test")
    ids, y = labels.ecg_ids[mask], labels.y[mask].astype(int)
    row = {int(e): i for i, e in enumerate(ids)}
    probs = {}
    for run in result["runs"]:
        if run["name"] not in _roc_runs(result):
            continue
        d = _run_dir(result, run, out_dir)
        if d is None:
            raise ECGNetError(f"{run['run_dir']}/test/predictions.csv not found")
        pids, p, _ = M.read_predictions(d / "test" / "predictions.csv", result["classes"])
        if sorted(map(int, pids)) != sorted(row):
            raise ECGNetError(f"{d / 'test' / 'predictions.csv'}: its records are not fold 10")
        out = np.empty_like(p)
        out[[row[int(e)] for e in pids]] = p
        probs[run["name"]] = out
    return y, probs


def _saved_explanation_figures(result: dict, out_dir: Path) -> dict:
    """The explain step's PNGs already in ``out_dir/figures`` (they need the model to redraw)."""
    ex, out = result.get("explanation") or {}, {}
    names = {"lead_importance.png": "Lead importance per class (share of mean |IG|)"}
    for c in ex.get("examples") or {}:
        names[f"time_{c}.png"] = f"Integrated Gradients over leads × time for {c}"
        names[f"frequency_{c}.png"] = f"Layer Integrated Gradients over leads × frequency for {c}"
    for name, caption in names.items():
        path = Path(out_dir) / "figures" / name
        if path.is_file():
            out[name] = (caption, path.read_bytes())
    return out


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
    figures = {name: (caption, fig if isinstance(fig, bytes) else _png(fig, out_dir / "figures" / name))
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


def render_comparison(out_dir: Path, data_root=None) -> Path:
    """Re-render ``out_dir``'s report from its ``comparison.json`` (nothing recomputed): the tables, the
    conclusion and the figures from the saved result, the ROC curves from the runs' saved fold-10
    predictions and the PTB-XL labels (``data_root`` or $ECGNET_DATA; skipped with a note if missing),
    the attribution heatmaps reused from ``figures/``. Returns the HTML path."""
    from ecgnet.evaluation.compare import run_config, run_strategy

    out_dir = Path(out_dir)
    path = out_dir / "comparison.json"
    if not path.is_file():
        raise ECGNetError(f"{path}: missing — run `ecgnet compare … --out {out_dir}` first")
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not valid JSON ({e})") from None
    for run in result["runs"]:  # reports written before the strategy was saved
        if not run.get("strategy"):
            d = _run_dir(result, run, out_dir)
            run["strategy"] = run_strategy(run_config(d)) if d is not None else None
    result["conclusion"] = conclusion(result["runs"], result["baseline"], result["best"])
    y = probs = note = None
    if len(result["classes"]) <= MANY_CLASSES:
        try:
            y, probs = _saved_roc_inputs(result, out_dir, data_root)
        except ECGNetError as e:
            note = f"the runs' fold-10 predictions or the labels were not available when rendering ({e})."
    return write_comparison_report(out_dir, result, y, probs, _saved_explanation_figures(result, out_dir), note)


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
