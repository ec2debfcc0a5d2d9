"""Class-imbalance options against plain early fusion on fold 10, paired bootstrap (1,000 resamples, the
same resamples for both models): macro AUC, and HYP balanced accuracy at each model's own fold-9
threshold. Reads only committed run files and the PTB-XL labels.

    ECGNET_DATA=... .venv/bin/python reports/imbalance/paired_vs_early.py > reports/imbalance/paired_vs_early.txt
"""

import json
import os
import subprocess

import numpy as np

from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M

root = data_root(None)
labels = make_labels(read_database(root), read_statements(root), "superdiagnostic")
mask = labels.split("test")
ids_test, y = labels.ecg_ids[mask], labels.y[mask]
classes, h = labels.classes, labels.classes.index("HYP")


def load(run):
    ids, p, _ = M.read_predictions(f"runs/{run}/test/predictions.csv", classes)
    assert (ids == ids_test).all(), run
    return p, json.load(open(f"runs/{run}/test/metrics.json"))["per_class"]["HYP"]["threshold"]


def balanced(yh, ph, thr):
    pred, pos = ph >= thr, yh == 1
    return 0.5 * (pred[pos].mean() + (~pred[~pos]).mean())


print("revision", subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
p_ref, t_ref = load("early")
resamples = M.bootstrap_indices(len(y), 1000, 0, y)
for run in ["early_weighted_bce", "early_focal", "early_oversample"]:
    p, t = load(run)
    auc = M.paired_bootstrap(y, p, p_ref, M.macro_auc, n_boot=1000, seed=0)
    d = np.array([balanced(y[i, h], p[i, h], t) - balanced(y[i, h], p_ref[i, h], t_ref) for i in resamples])
    point = balanced(y[:, h], p[:, h], t) - balanced(y[:, h], p_ref[:, h], t_ref)
    print(f"{run}: macro AUC diff vs early {auc['diff']:+.4f} [{auc['low']:+.4f}, {auc['high']:+.4f}] "
          f"p={auc['p_value']:.3f}; HYP balanced accuracy diff {point:+.4f} "
          f"[{np.percentile(d, 5):+.4f}, {np.percentile(d, 95):+.4f}]")
