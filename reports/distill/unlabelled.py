"""What unlabelled ECGs add to distillation (``ecgnet distill --unlabelled``), measured the only way this
machine allows: PTB-XL's training folds split in two halves, one labelled, one whose labels are hidden.

Both students are the default student's recipe (``configs/distill_long_time.yaml``, seed 0) on the labelled
half (``data.max_train_records`` = half of folds 1–8, the subset ``PTBXL.split`` draws with the seed):

- ``distill_half``: the labelled half alone (labels + the teacher's soft targets);
- ``distill_half_unlabelled``: the same, plus the other half as an unlabelled manifest (soft targets only).

The difference is what the unlabelled records add (fold 9 selects, fold 10 reported). The teacher (the greedy
ensemble) was trained on all of folds 1–8, labels of the "unlabelled" half included, so its soft targets
there are better than on truly new records: the gain is an upper bound of what a site's unlabelled ECGs add.

    .venv/bin/python -m reports.distill.unlabelled write   # → $ECGNET_CACHE/ptbxl_train_unlabelled_half.csv
    ecgnet train -c configs/distill_long_time.yaml --set name=distill_half --set data.max_train_records=8555
    ecgnet train -c configs/distill_long_time.yaml --set name=distill_half_unlabelled \\
        --set data.max_train_records=8555 --set training.distill_unlabelled=$ECGNET_CACHE/ptbxl_train_unlabelled_half.csv
    .venv/bin/python -m reports.distill.unlabelled         # → reports/distill/unlabelled.json
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks import bench_distill
from benchmarks._common import REPO_ROOT, print_table, write_results
from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.data.signals import cache_dir
from ecgnet.evaluation import metrics as M
from reports import usage

SEED = 0
RUNS = ("distill_half", "distill_half_unlabelled", "distill_long_time")


def halves(labels) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, unlabelled) ecg_ids of folds 1–8: the labelled half is what ``PTBXL.split("train",
    max_records=len // 2, seed=SEED)`` keeps."""
    ids = labels.ecg_ids[labels.split("train")]
    keep = np.zeros(len(ids), bool)
    keep[np.random.default_rng(SEED).choice(len(ids), len(ids) // 2, replace=False)] = True
    return ids[keep], ids[~keep]


def write(path: Path | None = None) -> Path:
    """The unlabelled half as a manifest beside the cache: record paths relative to it, the metadata kept
    (the teacher's fusion members read it), no labels."""
    root = data_root(None)
    database = read_database(root)
    labels = make_labels(database, read_statements(root), "superdiagnostic")
    labelled, unlabelled = halves(labels)
    path = Path(path or cache_dir() / "ptbxl_train_unlabelled_half.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(root, path.parent))
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["record", "patient", "age", "sex", "height", "weight"])
        for e in unlabelled:
            row = database.loc[e]
            cell = lambda v: "" if v != v else f"{v:g}"  # noqa: E731  NaN → empty
            out.writerow([(rel / row["filename_lr"]).as_posix() + ".hea", f"{row['patient_id']:g}", cell(row["age"]),
                          cell(row["sex"]), cell(row["height"]), cell(row["weight"])])
    print(f"{len(unlabelled)} unlabelled records ({len(labelled)} labelled kept) → {path}")
    return path


def main() -> dict:
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), "superdiagnostic")
    y9, y10 = (labels.y[labels.split(s)] for s in ("val", "test"))
    p = {r: {s: bench_distill.fold_predictions(REPO_ROOT / "runs" / r, labels, s) for s in ("val", "test")}
         for r in RUNS}
    figures = {"fold9": {r: M.macro_auc(y9, p[r]["val"]) for r in RUNS},
               "fold10": {r: dict(zip(("value", "low", "high"), M.bootstrap_ci(y10, p[r]["test"], seed=0)))
                          for r in RUNS},
               "fold10_unlabelled_minus_labelled_half": M.paired_bootstrap(y10, p[RUNS[1]]["test"], p[RUNS[0]]["test"], seed=0),
               "fold10_full_labels_minus_unlabelled": M.paired_bootstrap(y10, p[RUNS[2]]["test"], p[RUNS[1]]["test"], seed=0)}
    rows = [[r, f"{figures['fold9'][r]:.4f}", f"{figures['fold10'][r]['value']:.4f} "
             f"[{figures['fold10'][r]['low']:.4f}, {figures['fold10'][r]['high']:.4f}]"] for r in RUNS]
    print_table(["run", "fold 9", "fold 10 [90 % CI]"], rows)
    for k in ("fold10_unlabelled_minus_labelled_half", "fold10_full_labels_minus_unlabelled"):
        d = figures[k]
        print(f"{k}: {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    write_results("unlabelled", figures, {"protocol": __doc__, "seed": SEED, "runs": list(RUNS), "n_boot": 1000},
                  REPO_ROOT / "reports" / "distill" / "unlabelled.json")
    return figures


if __name__ == "__main__":
    if usage.arguments(__doc__, 0, 1) not in ([], ["write"]):
        usage.fail(f"unknown argument {sys.argv[1]} (only `write`)")
    write() if sys.argv[1:] == ["write"] else main()
