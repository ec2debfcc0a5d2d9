"""Where the transfer gap comes from: the committed transfer predictions of a run, re-scored in ways that
each remove one suspected cause. Reads only ``reports/transfer/runs/<run>/predictions.csv`` (written by
``transfer.py``) and, for the coverage rows, re-runs ``evaluate_external`` with the other ways of
covering records longer than 10 s. Nothing here selects a model, threshold or mapping.

- pooled vs **within-source** AUC: the pooled AUC ranks records of different hospitals against each
  other; the within-source AUC counts only positive–negative pairs from the same database, so it is
  blind to a shift of all scores of one database (device, population, label practice);
- without the records whose amplitude the reader could not trust;
- records over 10 s covered by segments (default), by their first 10 s, or by a maximum over all windows.

    .venv/bin/python -m reports.transfer.gap baseline_time robust_time > reports/transfer/gap.md
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.evaluation import metrics as M
from ecgnet.evaluation.external import evaluate_external
from reports import usage

REPO = Path(__file__).resolve().parents[2]
os.chdir(REPO)  # paths in the outputs are relative to the checkout, not this machine
SAMPLES = Path("../shared/external/cinc2021-samples")
OUT = REPO / "reports" / "transfer" / "runs"
CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]
runs = usage.arguments(__doc__, 0, None) or ["baseline_time"]


def scored(path: Path) -> pd.DataFrame:
    t = pd.read_csv(path, keep_default_na=False)
    return t[(t["error"] == "") & t["labeled"].astype(str).eq("True")].reset_index(drop=True)


def pooled(t: pd.DataFrame, c: str) -> float:
    y = t[f"y_{c}"].to_numpy(int)
    return float(M.per_class_auc(y, t[f"p_{c}"].to_numpy(float))[0]) if 0 < y.sum() < len(y) else np.nan


def within_source(t: pd.DataFrame, c: str) -> tuple[float, int]:
    """AUC over positive–negative pairs of the same source database (ties count half), and the pairs."""
    good = total = 0.0
    for _, s in t.groupby("source"):
        p, y = s[f"p_{c}"].to_numpy(float), s[f"y_{c}"].to_numpy(int)
        pos, neg = p[y == 1], p[y == 0]
        if len(pos) and len(neg):
            diff = pos[:, None] - neg[None, :]
            good += (diff > 0).sum() + 0.5 * (diff == 0).sum()
            total += diff.size
    return (good / total if total else np.nan), int(total)


def row(name: str, t: pd.DataFrame, fn) -> str:
    values = [fn(t, c) for c in CLASSES]
    macro = np.nanmean(values)
    return f"| {name} | {len(t)} | {macro:.3f} | " + " | ".join(f"{v:.3f}" for v in values) + " |"


print("# Where the transfer gap comes from\n")
print(f"{usage.made_by()}. "
      "Macro = mean of the five per-class AUCs. Point estimates only: with 92 records and 14–35 positives per "
      "class, differences under ~0.03 are within noise (see the intervals in transfer.md).\n")
for run in runs:
    t = scored(OUT / run / "predictions.csv")
    trusted = t[t["amplitude_trusted"].astype(str).eq("True")]
    print(f"## `{run}`\n")
    print("| scoring | records | macro AUC | " + " | ".join(CLASSES) + " |")
    print("|---|---|---|" + "---|" * len(CLASSES))
    print(row("pooled (as reported)", t, pooled))
    print(row("within-source pairs only", t, lambda d, c: within_source(d, c)[0]))
    print(row("pooled, trusted amplitude only", trusted, pooled))
    for how in ("first", "windows"):
        out = REPO / "outputs" / "transfer_coverage" / f"{run}_{how}"
        if not (out / "predictions.csv").is_file():
            evaluate_external(REPO / "runs" / run, SAMPLES, out, n_boot=10, long_records=how, progress=False)
        print(row(f"pooled, records over 10 s: {'first 10 s' if how == 'first' else 'max over all windows'}",
                  scored(out / "predictions.csv"), pooled))
    pairs = {c: within_source(t, c)[1] for c in CLASSES}
    print(f"\nWithin-source pairs per class: {', '.join(f'{c} {n}' for c, n in pairs.items())}.\n")
    per_source = json.loads((OUT / run / "metrics.json").read_text())["per_source"]
    print("| source | scored | " + " | ".join(f"{c} AUC (pos.)" for c in CLASSES) + " |")
    print("|---|---|" + "---|" * len(CLASSES))
    for src, s in per_source.items():
        cells = [f"{e['auc']:.2f} ({e['n_positive']})" if e["auc"] is not None else f"– ({e['n_positive']})"
                 for e in (s["per_class"][c] for c in CLASSES)]
        print(f"| {src} | {s['n']} | " + " | ".join(cells) + " |")
    print()
