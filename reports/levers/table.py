"""The levers table of issue 9: every lever's committed run against its base on fold 10 — macro AUC with
its 90 % bootstrap interval, the paired-bootstrap difference (the same 1,000 resamples for both runs),
HYP balanced accuracy (fold-9 thresholds), 5-way accuracy, and the cost (parameters, training time).
Runs that are not committed yet are listed as missing. Selection is on fold 9 only (the fold-9 column).

    ECGNET_DATA=... .venv/bin/python reports/levers/table.py > reports/levers/table.md
"""

import json
import sys
from pathlib import Path

import numpy as np

from ecgnet.evaluation import metrics as M
from ecgnet.runs import provenance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # reports/: committed.py
from committed import predictions, task_labels  # noqa: E402

BEST_SINGLE = "intermediate_concat_weighted_bce"
LEVERS = [  # (lever, run, base)
    ("EMA of the weights + bf16 (the recipe of every lever below)", "fast_time", "baseline_time"),
    ("SWA: plain average of the epoch-end weights of epochs 15–20, instead of the EMA", "swa_time", "fast_time"),
    ("mixup, α = 0.2", "mixup_time", "fast_time"),
    ("label smoothing, ε = 0.1", "label_smoothing_time", "fast_time"),
    ("multi-task: a training-only head on all 71 statements", "multitask_time", "fast_time"),
    ("SimCLR pretraining on folds 1–8, then fine-tuning", "simclr_time", "fast_time"),
    ("encoder: xresnet1d (1.7 M parameters, 0.20 G MACs)", "xresnet_time", "fast_time"),
    ("encoder: inception1d (0.25 M parameters, 0.16 G MACs)", "inception_time", "fast_time"),
    ("another seed (1)", "fast_time_seed1", "fast_time"),
    ("another seed (2)", "fast_time_seed2", "fast_time"),
    ("seed ensemble: mean of seeds 0, 1, 2", "ensemble_seeds", "fast_time"),
    ("ensemble: mean of the 11 time/fusion runs of the fusion study", "ensemble_average", BEST_SINGLE),
    ("ensemble: mean of every superdiagnostic run trained on the signal", "ensemble_all", BEST_SINGLE),
]


def main() -> None:
    labels = task_labels()
    mask = labels.split("test")
    y, classes = labels.y[mask], labels.classes
    hyp = classes.index("HYP")

    def load(run):
        p = predictions(run, labels)
        info = json.loads(Path(f"runs/{run}/run.json").read_text())
        per_class = json.loads(Path(f"runs/{run}/test/metrics.json").read_text())["per_class"]
        return p, info, np.array([per_class[c]["threshold"] for c in classes])

    print("# Levers of issue 9, fold 10 (superdiagnostic, 2,163 records)\n")
    print(f"Made by `reports/levers/table.py` at revision {provenance()['git_revision'][:7]} from the committed "
          "runs. Δ: paired bootstrap, 1,000 resamples, 90 % interval. Training time: the run's summed epoch "
          "times on 2 CPU cores (other jobs shared them at times; an ensemble's is its members' sum).\n")
    print("| lever | run | base | fold-9 | fold-10 macro AUC [90 % CI] | Δ vs base [90 % paired CI] | "
          "HYP bal. acc. | 5-way acc. | parameters | training min |")
    print("|---" * 10 + "|")
    for lever, run, base in LEVERS:
        if not Path(f"runs/{run}/test/predictions.csv").is_file():
            print(f"| {lever} | `{run}` | `{base}` | not run | | | | | | |")
            continue
        p, info, thr = load(run)
        p_base = load(base)[0]
        value, low, high = M.bootstrap_ci(y, p)
        d = M.paired_bootstrap(y, p, p_base)
        bal = M.threshold_metrics(y, p, thr)["balanced_accuracy"][hyp]
        print(f"| {lever} | `{run}` | `{base}` | {info['best_val_macro_auc']:.4f} | {value:.4f} [{low:.4f}, {high:.4f}] "
              f"| {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {bal:.3f} | "
              f"{M.single_label_accuracy(y, p)[0]:.3f} | {info['parameters']:,} | {info['training_seconds'] / 60:.0f} |")


if __name__ == "__main__":
    main()
