"""What the report scripts read from committed runs: the PTB-XL labels of a task and a run's predictions
on a fold, checked to be the fold's records in the labels' order (a script compares runs row by row, so
a file with other records or another order must stop it, not skew it).
"""

import numpy as np

from ecgnet.data.ptbxl import Labels, data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M


def on_ptbxl_folds(info: dict) -> bool:
    """Whether a run (its run.json) trained on PTB-XL's folds 1–8 and was scored on folds 9 and 10 whole, not
    on a manifest's records (PTB-XL without one recording site, a foreign collection): only such runs are
    ranked against each other."""
    return "collection" not in info


def task_labels(task: str = "superdiagnostic") -> Labels:
    root = data_root(None)
    return make_labels(read_database(root), read_statements(root), task)


def predictions(run: str, labels: Labels, split: str = "test") -> np.ndarray:
    """(records, classes) probabilities of ``runs/<run>/<split>/predictions.csv`` in ``labels``' class and
    record order; SystemExit naming the file when its records are not the split's."""
    path = f"runs/{run}/{split}/predictions.csv"
    ids, p, _ = M.read_predictions(path, labels.classes)
    if not np.array_equal(ids, labels.ecg_ids[labels.split(split)]):
        raise SystemExit(f"{path}: records differ from the {split} fold's")
    return p
