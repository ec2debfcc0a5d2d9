"""Transfer beyond PTB-XL: the superdiagnostic runs of the transfer study on the shared Challenge samples.

For each run, ``ecgnet evaluate-external`` writes ``reports/transfer/runs/<run>/`` (predictions,
metrics, report); this script then prints one Markdown table: fold-9 and fold-10 macro AUC (PTB-XL)
beside the transfer macro AUC with its 90 % bootstrap interval, the paired difference against the
time-only baseline on the same records, and per-class transfer AUC. The samples are a test set:
nothing here selects anything.

    .venv/bin/python -m reports.transfer.transfer [SAMPLES_DIR] > reports/transfer/transfer.md
"""

import json
import os
import sys
from pathlib import Path

import pandas as pd

from ecgnet.config import load_config
from ecgnet.evaluation import metrics as M
from ecgnet.evaluation.external import evaluate_external
from reports import usage

REPO = Path(__file__).resolve().parents[2]
os.chdir(REPO)  # paths in the outputs are relative to the checkout, not this machine
SAMPLES = Path((usage.arguments(__doc__, 0, 1) or ["../shared/external/cinc2021-samples"])[0])
OUT = REPO / "reports" / "transfer" / "runs"
BASE, N_BOOT = "baseline_time", 1000
CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]

# The study's runs: the superdiagnostic runs committed when it was made (modalities, fusion, imbalance, the
# robustness levers). Runs added later are scored on these records by their own studies (the distilled default:
# reports/distill); so that the table stays the study's, and runs/ holding runs without committed weights
# (ensemble_all) does not stop it, they are named here.
STUDY = ["early", "frequency", "frequency_phase", "intermediate_attention", "intermediate_concat",
         "intermediate_concat_focal", "intermediate_concat_oversample", "intermediate_concat_weighted_bce",
         "intermediate_gated", "late_average", "late_stacking", "late_stacking_no_metadata",
         "late_stacking_time_frequency", "late_stacking_time_metadata", "late_stacking_time_spectrogram", "metadata",
         "robust_time", "robust_time_centered", "robust_time_quality", "spectrogram"]
runs = [BASE] + STUDY
assert all(load_config(REPO / "runs" / r / "config.yaml").data.task == "superdiagnostic" for r in runs)
for run in runs:
    if not (OUT / run / "metrics.json").is_file():
        evaluate_external(REPO / "runs" / run, SAMPLES, OUT / run, n_boot=N_BOOT, progress=False)
        print(f"evaluated {run}", file=sys.stderr)


def scored(run):
    """(records, labels, probabilities) of the records the run scored, in file order."""
    t = pd.read_csv(OUT / run / "predictions.csv", keep_default_na=False)
    t = t[(t["error"] == "") & t["labeled"].astype(str).eq("True")]
    return t["record"].tolist(), t[[f"y_{c}" for c in CLASSES]].to_numpy(int), t[[f"p_{c}" for c in CLASSES]].to_numpy(float)


def ci(entry, digits=3):
    if entry is None:
        return "–"
    value = entry.get("value", entry.get("auc"))
    return f"{value:.{digits}f} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]" if entry.get("low") is not None \
        else f"{value:.{digits}f}"


base_ids, y, p_base = scored(BASE)
first = json.loads((OUT / BASE / "metrics.json").read_text())
print("# Transfer beyond PTB-XL: committed superdiagnostic runs on the shared Challenge samples\n")
positives = ", ".join(f"{c} {first['per_class'][c]['n_positive']}" for c in CLASSES)
print(f"{first['n_records']} records from {len(first['per_source'])} databases "
      f"({', '.join(first['per_source'])}); {first['n_scored']} carry a superclass and are scored "
      f"(positives: {positives}). "
      f"{first['protocol']} Δ: paired bootstrap against `{BASE}` on the same records ({N_BOOT:,} resamples, "
      f"90 % intervals). **A small sample**: intervals are wide, HYP rests on {first['per_class']['HYP']['n_positive']} "
      "positives, and the samples are a test set — no run, threshold or mapping was chosen on them.\n")
print(f"{usage.made_by()}; "
      f"per-run outputs in `reports/transfer/runs/`.\n")
print("| run | fold-9 AUC | fold-10 macro AUC [90 % CI] | transfer macro AUC [90 % CI] | Δ transfer vs time-only | "
      + " | ".join(CLASSES) + " |")
print("|---|---|---|---|---|" + "---|" * len(CLASSES))
for run in runs:
    m = json.loads((OUT / run / "metrics.json").read_text())
    info = json.loads((REPO / "runs" / run / "run.json").read_text())
    test = json.loads((REPO / "runs" / run / "test" / "metrics.json").read_text())["macro_auc"]
    ids, yy, p = scored(run)
    if ids != base_ids or not (yy == y).all():
        raise SystemExit(f"{run}: scored records differ from {BASE}'s")
    d = M.paired_bootstrap(y, p, p_base, n_boot=N_BOOT) if run != BASE else None
    delta = "—" if d is None else f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
    print(f"| `{run}` | {info['best_val_macro_auc']:.4f} | {ci(test, 4)} | {ci(m['macro_auc'])} | {delta} | "
          + " | ".join(f"{m['per_class'][c]['auc']:.3f}" for c in CLASSES) + " |")
