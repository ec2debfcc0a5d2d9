"""Scoring a model on a labelled collection, tolerant of small ones: its probabilities for chosen rows
(:func:`predict`: each record as ``predict`` scores it — a 10 s record from its cached row, a longer one averaged
over its cached 10 s segments, a shorter one at its own length: :func:`ecgnet.inference.batch.predict_proba`), macro and per-class AUC with bootstrap
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
    """Paired bootstrap of macro AUC (a − b) over the scorable classes, each on its known rows — the classes and
    rows of the macro AUCs it is printed beside (:func:`ecgnet.evaluation.scoring.score`); ``groups``: resample
    these (patients), not records. Without unknown labels these are :func:`ecgnet.evaluation.metrics.paired_bootstrap`'s
    draws and figures. ``p_value``: the fraction of resampled differences ≤ 0 (one-sided)."""
    ok = scoring.scorable(y)
    if not ok:
        return None
    y, p_a, p_b = y[:, ok], p_a[:, ok], p_b[:, ok]
    try:
        idx = M.bootstrap_indices(len(y), n_boot, seed, y, groups, minimum=M.MIN_GROUPS)
    except ValueError:
        return None
    diff = scoring.masked_macro_auc(y, p_a) - scoring.masked_macro_auc(y, p_b)
    diffs = np.array([scoring.masked_macro_auc(y[i], p_a[i]) - scoring.masked_macro_auc(y[i], p_b[i]) for i in idx])
    low, high = M.percentile_interval(diffs, 0.9)
    return {"diff": float(diff), "low": float(low), "high": float(high), "p_value": float(np.mean(diffs <= 0)),
            "classes": [classes[k] for k in ok], "ci": 0.9, "n_boot": n_boot,
            "resampled": M.resampled_units(groups, len(y))}


def call_rate_warnings(y: np.ndarray, p: np.ndarray, thresholds: dict[str, float], classes: list[str]) -> list[str]:
    """A class whose threshold calls far more records positive than are (twice its prevalence and 10 points
    more, on its known records): Youden's J puts a weakly ranked rare class's threshold low (a site's HYP at
    0.038 called 65 % of records positive, prevalence 16 %) — said, since every prediction will call it."""
    out = []
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        if c not in thresholds or not known.any():
            continue
        rate, prevalence = float(np.mean(p[known, k] >= thresholds[c])), float(np.mean(y[known, k]))
        if rate > 2 * prevalence + 0.1:
            out.append(f"{c}'s threshold {thresholds[c]:.3f} calls {rate:.0%} of the records positive (prevalence "
                       f"{prevalence:.0%}): a positive {c} means above that threshold, not a probable {c} — "
                       "read the probability, or set the site's operating point with ecgnet calibrate")
    return out
