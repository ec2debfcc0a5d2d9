"""The report's conclusion: a few sentences generated from the comparison result."""

from __future__ import annotations

import numpy as np

from ecgnet.evaluation.compare_report.common import _auc, _ci, _delta, _num, _strategy, _verdict


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
        records = sorted({(r.get("ablation") or {}).get("n_records") for r in runs
                          if (r.get("ablation") or {}).get("drop")} - {None})
        loss = f"{min(drops[top]):.3f}" if len(drops[top]) == 1 else f"{min(drops[top]):.3f}–{max(drops[top]):.3f}"
        why.append(f"dropped at test time from the {n} fusion model{'s' if n > 1 else ''}"
                   + (f" ({'/'.join(map(str, records))} fold-10 records)" if records else "")
                   + f", {top} costs {loss} macro AUC"
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
