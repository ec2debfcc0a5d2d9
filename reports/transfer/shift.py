"""Acquisition shifts simulated on PTB-XL fold 10: how much each one costs a run, and whether training
with the augmentations removes the cost.

Each condition applies one augmentation of ``ecgnet.data.augment`` to every fold-10 record (p = 1,
whole 10 s records, seed 0; "all" applies all five), then the run predicts as in evaluation. Δ: paired
bootstrap of macro AUC, first run minus each other run, under the same shift (1,000 resamples).
Fold 10 is only reported here; nothing is selected on it.

    ECGNET_DATA=... .venv/bin/python -m reports.transfer.shift baseline_time robust_time > reports/transfer/shift.md
"""

import sys

import numpy as np
import torch

from ecgnet.data.augment import NAMES, augment
from ecgnet.data.dataset import PTBXL
from ecgnet.data.ptbxl import data_root
from ecgnet.evaluation import metrics as M
from ecgnet.inference.batch import predict_proba
from ecgnet.runs import load_run
from reports import usage

runs = usage.arguments(__doc__, 0, None) or ["robust_time", "baseline_time"]
conditions = ["clean", *NAMES, "all"]
test = PTBXL(data_root(None)).split("test")


def shifted(condition: str) -> np.ndarray:
    if condition == "clean":
        return test.signal
    torch.manual_seed(0)
    names = NAMES if condition == "all" else [condition]
    x = torch.as_tensor(np.asarray(test.signal))
    return torch.cat([augment(x[i:i + 256], names, 100, p=1.0) for i in range(0, len(x), 256)]).numpy()


probs = {}
for condition in conditions:
    x = shifted(condition)
    for run in runs:
        model, config, _ = load_run(f"runs/{run}")
        probs[run, condition] = predict_proba(model, x, test.metadata, config.data.window, config.data.stride,
                                              config.data.aggregate)
        print(f"{run} {condition}", file=sys.stderr)

print(f"# Simulated acquisition shifts on PTB-XL fold 10 ({len(test.y):,} records)\n")
print(f"{usage.made_by()}. "
      "Each shift applied to every record at the strengths documented in `ecgnet/data/augment.py`.\n")
print("| shift | " + " | ".join(f"`{r}` macro AUC" for r in runs)
      + "".join(f" | Δ `{runs[0]}` − `{r}` [90 % CI]" for r in runs[1:]) + " |")
print("|---|" + "---|" * (2 * len(runs) - 1))
for condition in conditions:
    aucs = [M.macro_auc(test.y, probs[r, condition]) for r in runs]
    deltas = [M.paired_bootstrap(test.y, probs[runs[0], condition], probs[r, condition]) for r in runs[1:]]
    print(f"| {condition} | " + " | ".join(f"{a:.4f}" for a in aucs)
          + "".join(f" | {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" for d in deltas) + " |")
