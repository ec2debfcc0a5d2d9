"""results.md from results.json, choose_defaults.json, shift.json and interpolate.json (nothing recomputed).

    .venv/bin/python -m reports.own_data.render
"""

from __future__ import annotations

import json

from reports import usage
from reports.own_data.common import OUT

CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]


def fmt(e) -> str:
    if not e:
        return "–"
    v = e.get("auc", e.get("value"))
    if v is None:
        return "–"
    return f"{v:.3f}" if e.get("low") is None else f"{v:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def diff(vs) -> str:
    return "–" if not vs else f"{vs['diff']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}], p = {vs['p_value']:.3f}"


def main() -> None:
    r = json.loads((OUT / "results.json").read_text())
    lines = ["# Own data: zero-shot vs fine-tuning vs from scratch on the Challenge samples", "",
             f"{r['records']} records of `../shared/external/cinc2021-samples` with a PTB-XL superclass "
             f"({len(r['skipped'])} unreadable skipped), six source folders; labels from `#Dx` SNOMED CT codes via "
             "`ecgnet/data/snomed_ptbxl.csv`. AUC with 90 % bootstrap intervals over records (1000 resamples) on "
             "pooled out-of-fold predictions; Δ = paired bootstrap of macro AUC vs zero-shot on the same records "
             "(p: one-sided, fraction of resamples with Δ ≤ 0). Every model, zero-shot included, scores each "
             "record as `predict` does (a record over 10 s: the mean over its consecutive 10 s segments; training "
             "drew one of its segments each time it drew the record), so the zero-shot row is what `ecgnet "
             "evaluate-external` gives on these records (`long_time` 0.798 macro, "
             "`benchmarks/results/bench_distill.json`). Seed 0; commands and revision in `results.json`.", ""]
    for protocol in ("5-fold", "leave-one-source-out"):
        if protocol not in r:
            continue
        lines += [f"## {protocol}", "", "| strategy | macro AUC | " + " | ".join(CLASSES) + " | Δ vs zero-shot |",
                  "|---" * (len(CLASSES) + 3) + "|"]
        d = r.get("default", {})
        default_label = (f"**fine-tune, the CLI default** ({d.get('mode')}, lr {d.get('lr'):g}, α "
                         f"{d.get('finetune_alpha') or 1:g})") if d else ""
        for name in ("zero-shot", "default", "head", "full", "scratch"):
            e = d.get(protocol) if name == "default" else r[protocol].get(name)
            if not e:
                continue
            p = e["pooled"]
            label = {"zero-shot": "zero-shot (long_time)", "default": default_label,
                     "head": "fine-tune head only (lr 1e-2)", "full": "fine-tune full (lr 3e-3, α 1)",
                     "scratch": "from scratch (same architecture)"}[name]
            lines.append(f"| {label} | {fmt(p['macro_auc'])} | " + " | ".join(fmt(p["per_class"][c]) for c in CLASSES)
                         + f" | {diff(e.get('vs_zero_shot'))} |")
        means = r[protocol].get("mean_per_fold_macro_auc")
        if means:
            lines += ["", "Mean of the per-fold macro AUCs (each fold scored on its own; pooling the predictions of "
                      "different fold models also pools their calibration offsets): " + ", ".join(
                          f"{k} {v:.3f}" for k, v in means.items()) + "."]
        folds = r[protocol].get("full", {}).get("per_fold", {})
        if folds:
            lines += ["", "Per fold (fine-tune full): " + "; ".join(
                f"{k}: n={v['n_records']}, train {v['train_records']} + inner val {v['inner_validation_records']}, "
                f"epochs {v['epochs_run']} (best {v['best_epoch']}), AUC {fmt(v['macro_auc'])}" for k, v in folds.items())]
        lines.append("")
    for lc in (r.get("learning_curve"), r.get("learning_curve_default")):
        if not lc:
            continue
        how = lc["mode"] + (f", lr {lc['lr']:g}, α {lc.get('finetune_alpha') or 1:g}" if lc.get("lr") else "")
        lines += [f"## Learning curve (fine-tune {how}, 5-fold; held-out folds whole)", "",
                  "| training records per fold | macro AUC | Δ vs zero-shot |", "|---|---|---|"]
        for label, e in lc["points"].items():
            lines.append(f"| {label} ({'/'.join(map(str, e['records_per_fold']))}) | {fmt(e['pooled']['macro_auc'])} | "
                         f"{diff(e.get('vs_zero_shot'))} |")
        for k, why in lc.get("not_run", {}).items():
            lines.append(f"\n{k} records: not run — {why}.")
        lines.append("")
    f = r.get("forgetting")
    if f:
        lines += ["## What fine-tuning does to PTB-XL (forgetting)", "",
                  "Final models fine-tuned on all records (inner validation 20 % for early stopping), scored on "
                  "PTB-XL fold 10 (superdiagnostic, 2,163 records).", "",
                  "| model | PTB-XL fold-10 macro AUC | epochs (best) | frozen |", "|---|---|---|---|"]
        for name, e in f.items():
            ft = e.get("finetune") or {}
            if name == "zero-shot":
                lines.append(f"| zero-shot (long_time as shipped) | {e['ptbxl_fold10_macro_auc']:.4f} | – | – |")
                continue
            if name == "default":
                name = f"the CLI default ({ft.get('mode')}; {ft.get('interpolation', 'no interpolation')})"
            lines.append(f"| {name} | {e['ptbxl_fold10_macro_auc']:.4f} | "
                         f"{e.get('epochs_run', '–')} ({e.get('best_epoch', '–')}) | {ft.get('frozen', '–')} |")
        lines.append("")
    c = OUT / "choose_defaults.json"
    if c.is_file():
        d = json.loads(c.read_text())
        lines += ["## How the defaults were chosen (PTB-XL only)", "",
                  "Simulated small sites from PTB-XL fold 9, 3-fold CV, pooled out-of-fold macro AUC "
                  "(`choose_defaults.py`, `choose_defaults.json`):", "",
                  "| site | zero-shot | " + " | ".join(next(iter(d["sites"].values()))["strategies"]) + " |",
                  "|---" * (2 + len(next(iter(d["sites"].values()))["strategies"])) + "|"]
        for site, s in d["sites"].items():
            lines.append(f"| {site} | {fmt(s.get('zero_shot_macro_auc'))} | "
                         + " | ".join(fmt(e["pooled_macro_auc"]) for e in s["strategies"].values()) + " |")
        if "chosen" in d:
            lines += ["", f"Chosen then (best mean rank): {d['chosen']} (mean ranks {d['mean_rank']}); superseded by "
                      "the two studies below, whose sites the source had never seen."]
    for name, title, columns in (("shift.json", "Mode and learning rate: PTB-XL recording site 2, held out of the source "
                                  "(`shift.py`; 5-fold CV)", "strategies"),
                                 ("interpolate.json", "Weight interpolation α, (1 − α)·source + α·fine-tuned, of the "
                                  "default fine-tune (`interpolate.py`; 5-fold CV; 'inner': α picked per fold on its "
                                  "inner split)", "alphas")):
        path = OUT / name
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        sites = d["sites"]
        labels = list(next(iter(sites.values()))[columns])
        lines += ["", f"### {title}", "", "| site | zero-shot | " + " | ".join(labels) + " |", "|---" * (2 + len(labels)) + "|"]
        later = d.get("narrow_labels", {}).get("sites", {})  # shift.py narrow: added after the choice
        for site, e in {**sites, **later}.items():
            lines.append(f"| {site}{' (checked later)' if site in later else ''} | {fmt(e.get('zero_shot_macro_auc'))} | "
                         + " | ".join(fmt(e[columns][lab]["pooled_macro_auc"]) for lab in labels) + " |")
        best = d.get("best", d.get("chosen"))
        ranks = lambda r: ", ".join(f"{k} {v:.2f}" for k, v in r.items())  # noqa: E731
        lines += ["", f"Chosen (best mean rank): **{best}** (mean ranks {ranks(d['mean_rank'])})."]
        if later:
            lines += ["", f"Checked later on the four narrow-label sites: mean ranks {ranks(d['narrow_labels']['mean_rank'])}; "
                      f"over all ten sites {ranks(d['narrow_labels']['mean_rank_all_ten'])}."]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print(OUT / "results.md")


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
