"""The levers table of issue 9: every lever's committed run against its base on fold 10 — macro AUC with
its 90 % bootstrap interval, the paired-bootstrap difference (the same 1,000 resamples for both runs),
HYP balanced accuracy (fold-9 thresholds), 5-way accuracy, where it trained, and the cost (training time;
parameters, MACs and latency from costs.json). A second table does the same on all 71 statements.
Runs that are not committed yet are listed as missing. Selection is on fold 9 only (the fold-9 column).

    ECGNET_DATA=... .venv/bin/python -m reports.levers.table > reports/levers/table.md
"""

import json
from pathlib import Path

import numpy as np

from ecgnet.evaluation import metrics as M
from reports import usage
from reports.committed import predictions, task_labels

BEST_SINGLE = "intermediate_concat_weighted_bce"
LEVERS = [  # (lever, run, base)
    ("EMA of the weights + bf16 (the recipe of every lever below)", "fast_time", "baseline_time"),
    ("SWA: plain average of the epoch-end weights of epochs 15–20, instead of the EMA", "swa_time", "fast_time"),
    ("a longer schedule: up to 50 epochs (patience 15) instead of 20", "long_time", "fast_time"),
    ("acquisition augmentation (amplitude, baseline wander, noise, filter, lead mix; the robustness work)",
     "robust_time", "baseline_time"),
    ("mixup, α = 0.2", "mixup_time", "fast_time"),
    ("label smoothing, ε = 0.1", "label_smoothing_time", "fast_time"),
    ("multi-task: a training-only head on all 71 statements", "multitask_time", "fast_time"),
    ("SimCLR pretraining on folds 1–8, then fine-tuning", "simclr_time", "fast_time"),
    ("encoder: xresnet1d (1.7 M parameters, 0.20 G MACs)", "xresnet_time", "fast_time"),
    ("encoder: xresnet1d + squeeze-and-excitation", "se_xresnet_time", "xresnet_time"),
    ("encoder: inception1d (0.25 M parameters, 0.16 G MACs)", "inception_time", "fast_time"),
    ("another seed (1)", "fast_time_seed1", "fast_time"),
    ("another seed (2)", "fast_time_seed2", "fast_time"),
    ("seed ensemble: mean of seeds 0, 1, 2", "ensemble_seeds", "fast_time"),
    ("ensemble: mean of the 11 time/fusion runs of the fusion study", "ensemble_average", BEST_SINGLE),
    ("ensemble: mean of every superdiagnostic run trained on the signal", "ensemble_all", BEST_SINGLE),
    ("ensemble: the same 21 runs stacked per class on fold 9 instead of averaged", "ensemble_stacking",
     "ensemble_all"),
    ("ensemble: greedy forward selection on fold 9 (greedy_ensemble.md)", "ensemble_greedy", "ensemble_all"),
    # trained on the lent H200, compared with a base trained there too
    ("the fast_time recipe on the GPU (same config, seed 0)", "fast_time_gpu", "fast_time"),
    ("fast_time, seed 1, on the GPU", "fast_time_gpu_seed1", "fast_time_gpu"),
    ("fast_time, seed 2, on the GPU", "fast_time_gpu_seed2", "fast_time_gpu"),
    ("the longer schedule (long_time), seed 1, on the GPU", "long_time_seed1", "fast_time_gpu_seed1"),
    ("the longer schedule (long_time), seed 2, on the GPU", "long_time_seed2", "fast_time_gpu_seed2"),
    ("CutMix, α = 1", "cutmix_time", "fast_time_gpu"),
    ("multi-task: a training-only head on the 23 diagnostic subclasses", "multitask_sub_time", "fast_time_gpu"),
    ("hierarchical consistency: that head's subclasses kept under their superclass", "hierarchy_time",
     "multitask_sub_time"),
    ("encoder: S4D state-space model (0.28 M parameters, 0.18 G MACs)", "s4d_time", "fast_time_gpu"),
    ("encoder: Transformer (0.47 M parameters, 0.21 G MACs)", "transformer_time", "fast_time_gpu"),
    ("SimCLR pretraining of the frequency branch", "simclr_frequency", "frequency_gpu"),
    ("SimCLR pretraining of the spectrogram branch", "simclr_spectrogram", "spectrogram_gpu"),
]
ALL_TASK = [  # the same on all 71 statements
    ("the fast_time recipe (EMA + bf16) on all 71 statements", "fast_all_time", "all_time"),
    ("late stacking of the four modalities (fusion study)", "all_late_stacking", "all_time"),
]
COSTS = Path(__file__).with_name("costs.json")  # written by costs.py


def hardware(info: dict) -> str:
    h = info.get("hardware", {})
    return h.get("device_name", "?") if h.get("accelerator") in ("cuda", "gpu") else "2 CPU cores"


def table(task: str, levers: list, costs: dict) -> None:
    labels = task_labels(task)
    mask = labels.split("test")
    y, classes = labels.y[mask], labels.classes
    hyp = classes.index("HYP") if "HYP" in classes else None

    def load(run):
        p = predictions(run, labels)
        info = json.loads(Path(f"runs/{run}/run.json").read_text())
        per_class = json.loads(Path(f"runs/{run}/test/metrics.json").read_text())["per_class"]
        return p, info, np.array([per_class[c]["threshold"] for c in classes])

    print(f"## {task}: fold 10 ({mask.sum():,} records)\n")
    accuracy = "HYP bal. acc. | 5-way acc. | " if hyp is not None else ""
    print(f"| lever | run | base | fold-9 | fold-10 macro AUC [90 % CI] | Δ vs base [90 % paired CI] | {accuracy}"
          "trained on | training min | parameters | G MACs / ECG | 1-thread ms |")
    print("|---" * (13 if hyp is not None else 11) + "|")
    for lever, run, base in levers:
        if not Path(f"runs/{run}/test/predictions.csv").is_file():
            print(f"| {lever} | `{run}` | `{base}` | not run |" + " |" * (9 if hyp is not None else 7))
            continue
        p, info, thr = load(run)
        p_base = load(base)[0]
        value, low, high = M.bootstrap_ci(y, p)
        d = M.paired_bootstrap(y, p, p_base)
        acc = ""
        if hyp is not None:
            bal = M.threshold_metrics(y, p, thr)["balanced_accuracy"][hyp]
            acc = f"{bal:.3f} | {M.single_label_accuracy(y, p)[0]:.3f} | "
        c = costs.get(run)
        cost = (f"{c['parameters']:,} | {c['macs_per_ecg'] / 1e9:.2f} | {c['latency_ms']:.0f}" if c else
                f"{info['parameters']:,} | | ")
        print(f"| {lever} | `{run}` | `{base}` | {info['best_val_macro_auc']:.4f} | {value:.4f} [{low:.4f}, {high:.4f}] "
              f"| {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {acc}{hardware(info)} | "
              f"{info['training_seconds'] / 60:.0f} | {cost} |")
    print()


def main() -> None:
    costs = json.loads(COSTS.read_text())["runs"] if COSTS.is_file() else {}
    print("# Levers of issue 9, fold 10\n")
    print(f"{usage.made_by()}, from the committed runs. Δ: paired bootstrap, 1,000 resamples, 90 % interval; "
          "a lever is compared with a base trained on the same hardware. Training time: the run's summed epoch "
          "times (2 CPU cores, other jobs sharing them at times; on the H200, 11 runs shared the GPU and its 16 "
          "cores); an ensemble's is its members' sum. "
          "Cost columns from `costs.json` (`reports/levers/costs.py`): parameters, multiply–accumulates per 10 s "
          "ECG, median whole-record latency on 1 CPU thread; an ensemble's is its members' sum.\n")
    table("superdiagnostic", LEVERS, costs)
    table("all", ALL_TASK, costs)


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
