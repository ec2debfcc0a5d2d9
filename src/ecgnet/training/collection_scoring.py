"""Scoring a model on a labelled collection, tolerant of small ones: its probabilities for chosen rows
(:func:`predict`), macro and per-class AUC with bootstrap intervals (:func:`score`), Youden thresholds, and
a paired bootstrap of two models on the same records (:func:`paired_vs`).

A class without a positive or a negative among the scored records (or with unknown labels only) is reported
as not scorable instead of failing; unknown labels (NaN) leave that class's score for those records out.
"""

from __future__ import annotations

import numpy as np

from ecgnet.config import Config
from ecgnet.data.collections.base import Collection
from ecgnet.evaluation import metrics as M


def predict(model, collection: Collection, rows: np.ndarray, scaler, config: Config) -> np.ndarray:
    from ecgnet.inference.batch import predict_proba

    sub = collection.subset(rows)
    return predict_proba(model, sub.signal, scaler.transform(sub.metadata), config.data.window,
                         config.data.stride, config.data.aggregate)


def score(y: np.ndarray, p: np.ndarray, classes: list[str], thresholds: dict | None = None,
          n_boot: int = 1000, seed: int = 0) -> dict:
    """Macro and per-class AUC with 90 % bootstrap intervals over the scorable classes (a positive and a
    negative among the records whose label is known); sensitivity, specificity and balanced accuracy at
    ``thresholds`` when given."""
    per_class, ok = {}, []
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        yk, pk = y[known, k].astype(int), p[known, k]
        entry = {"auc": None, "low": None, "high": None, "n": int(known.sum()), "n_positive": int(yk.sum())}
        if 0 < yk.sum() < len(yk):
            ok.append(k)
            entry["auc"], entry["low"], entry["high"] = _ci(yk[:, None], pk[:, None], n_boot, seed)
            if thresholds and c in thresholds:
                entry.update(threshold=float(thresholds[c]), **M.decision_rates(yk, pk >= thresholds[c]))
        per_class[c] = entry
    out = {"n_records": int(len(y)), "classes_scored": [classes[k] for k in ok], "per_class": per_class,
           "macro_auc": None}
    if ok:
        sub_y, sub_p = y[:, ok], p[:, ok]
        if np.isnan(sub_y).any():  # unknown labels: the point is the mean of the per-class AUCs, no interval
            value, low, high = float(np.mean([per_class[classes[k]]["auc"] for k in ok])), None, None
        else:
            value, low, high = _ci(sub_y.astype(int), sub_p, n_boot, seed)
        out["macro_auc"] = {"value": value, "low": low, "high": high, "ci": 0.9, "n_boot": n_boot}
    return out


def _ci(y, p, n_boot, seed):
    try:
        return M.bootstrap_ci(y, p, M.macro_auc, n_boot=n_boot, seed=seed)
    except ValueError:  # too few positives for valid resamples
        return M.macro_auc(y, p), None, None


def youden_thresholds(y: np.ndarray, p: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Per scorable class (known labels only), the threshold maximising Youden's J."""
    out = {}
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        yk = y[known, k]
        if 0 < yk.sum() < len(yk):
            out[c] = float(M.choose_thresholds(yk[:, None].astype(int), p[known, k][:, None])[0])
    return out


def paired_vs(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, classes: list[str], n_boot: int, seed: int) -> dict | None:
    """Paired bootstrap of macro AUC (a − b) over the classes scorable on every record (no unknowns)."""
    ok = [k for k in range(len(classes)) if not np.isnan(y[:, k]).any() and 0 < y[:, k].sum() < len(y)]
    if not ok:
        return None
    try:
        out = M.paired_bootstrap(y[:, ok].astype(int), p_a[:, ok], p_b[:, ok], n_boot=n_boot, seed=seed)
    except ValueError:
        return None
    return {**out, "classes": [classes[k] for k in ok], "ci": 0.9, "n_boot": n_boot}
