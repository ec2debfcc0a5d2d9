"""Scoring a model on a labelled collection, tolerant of small ones: its probabilities for chosen rows
(:func:`predict`: each record's cached 10 s, as training sees it), macro and per-class AUC with bootstrap
intervals (:func:`score`: :func:`ecgnet.evaluation.scoring.score`, the scoring ``evaluate --manifest``
uses, with cv/metrics.json's key names), Youden thresholds, and a paired bootstrap of two models on the
same records (:func:`paired_vs`).

A class without a positive or a negative among the scored records (or with unknown labels only) is reported
as not scorable instead of failing; unknown labels (NaN) leave that class's score for those records out.
"""

from __future__ import annotations

import numpy as np

from ecgnet.config import Config
from ecgnet.data.collections.base import Collection
from ecgnet.evaluation import metrics as M
from ecgnet.evaluation import scoring


def predict(model, collection: Collection, rows: np.ndarray, scaler, config: Config) -> np.ndarray:
    from ecgnet.inference.batch import predict_proba

    sub = collection.subset(rows)
    return predict_proba(model, sub.signal, scaler.transform(sub.metadata), config.data.window,
                         config.data.stride, config.data.aggregate)


def score(y: np.ndarray, p: np.ndarray, classes: list[str], thresholds: dict | None = None,
          n_boot: int = 1000, seed: int = 0, groups=None) -> dict:
    """:func:`ecgnet.evaluation.scoring.score`, its record count under cv/metrics.json's name ``n_records``."""
    out = scoring.score(y, p, classes, thresholds, n_boot, seed, groups)
    return {"n_records": out.pop("n"), **out}


def youden_thresholds(y: np.ndarray, p: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Per scorable class (known labels only), the threshold maximising Youden's J."""
    out = {}
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        yk = y[known, k]
        if 0 < yk.sum() < len(yk):
            out[c] = float(M.choose_thresholds(yk[:, None].astype(int), p[known, k][:, None])[0])
    return out


def paired_vs(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, classes: list[str], n_boot: int, seed: int,
              groups=None) -> dict | None:
    """Paired bootstrap of macro AUC (a − b) over the classes scorable on every record (no unknowns);
    ``groups``: resample these (patients), not records."""
    ok = [k for k in range(len(classes)) if not np.isnan(y[:, k]).any() and 0 < y[:, k].sum() < len(y)]
    if not ok:
        return None
    try:
        out = M.paired_bootstrap(y[:, ok].astype(int), p_a[:, ok], p_b[:, ok], n_boot=n_boot, seed=seed,
                                 groups=groups)
    except ValueError:
        return None
    return {**out, "classes": [classes[k] for k in ok], "ci": 0.9, "n_boot": n_boot,
            "resampled": M.resampled_units(groups, len(y))}
