"""Committed runs against a base run on fold 10, paired: the figures every lever write-up needs.

Prints Markdown: each run's macro AUC (90 % bootstrap interval), macro F1, mean and per-class balanced
accuracy, and the 5-way accuracy on single-label records; then paired-bootstrap differences against the
base (1,000 resamples, the same ones for every run). The thresholded metrics use each run's own fold-9
thresholds. Reads only committed run files and the PTB-XL labels. Used by ``reports/levers/paired.py``
and ``reports/imbalance/paired.py``.

    ECGNET_DATA=... .venv/bin/python -m reports.paired_runs BASE RUN [RUN ...] > OUT.md
"""

import json

import numpy as np

from ecgnet.evaluation import metrics as M
from reports import usage
from reports.committed import predictions, task_labels

N_BOOT, CI = 1000, 0.90


def paired_report(base: str, others: list[str], title: str, five_way: bool = True) -> None:
    runs = [base] + list(others)
    labels = task_labels()
    mask = labels.split("test")
    y, classes = labels.y[mask], labels.classes

    def load(run):
        """Fold-10 probabilities and the fold-9 thresholds of a committed run."""
        p = predictions(run, labels)
        per_class = json.load(open(f"runs/{run}/test/metrics.json"))["per_class"]
        return p, np.array([per_class[c]["threshold"] for c in classes])

    def scores(yy, p, thr):
        """The compared figures on one (re)sample."""
        tm = M.threshold_metrics(yy, p, thr)
        out = [M.macro_auc(yy, p), tm["macro_f1"], tm["balanced_accuracy"].mean()]
        out += list(tm["balanced_accuracy"])
        return np.array(out + ([M.single_label_accuracy(yy, p)[0]] if five_way else []))

    names = ["macro AUC", "macro F1", "mean bal. acc."] + [f"{c} bal. acc." for c in classes]
    names += ["5-way acc."] if five_way else []
    loaded = {r: load(r) for r in runs}
    resamples = M.bootstrap_indices(len(y), N_BOOT, 0, y)
    full = {r: scores(y, *loaded[r]) for r in runs}
    boot = {r: np.array([scores(y[i], loaded[r][0][i], loaded[r][1]) for i in resamples]) for r in runs}
    lo, hi = 50 * (1 - CI), 50 * (1 + CI)

    print(f"# {title}, fold 10 ({len(y):,} records)\n")
    print(f"{usage.made_by()}; {N_BOOT:,} paired bootstrap resamples, "
          f"{CI:.0%} percentile intervals; thresholds from fold 9 (Youden's J).\n")
    print("| run | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for r in runs:
        auc_lo, auc_hi = np.percentile(boot[r][:, 0], [lo, hi])
        cells = [f"{full[r][0]:.4f} [{auc_lo:.4f}, {auc_hi:.4f}]"] + [f"{v:.3f}" for v in full[r][1:]]
        print(f"| `{r}` | " + " | ".join(cells) + " |")

    print(f"\nDifference against `{base}` [{CI:.0%} paired interval]:\n")
    print("| run | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for r in runs[1:]:
        d, db = full[r] - full[base], boot[r] - boot[base]
        cells = [f"{d[k]:+.4f} [{np.percentile(db[:, k], lo):+.4f}, {np.percentile(db[:, k], hi):+.4f}]"
                 for k in range(len(names))]
        print(f"| `{r}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    base, *others = usage.arguments(__doc__, 2, None)
    paired_report(base, others, f"{', '.join(others)} against {base}")
