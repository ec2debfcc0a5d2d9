"""Operating points: one decision threshold per class, chosen on a site's labelled records.

Three rules, each a point on the class's ROC or precision–recall curve (predictions are
``probability >= threshold``, scikit-learn's rule):

* ``youden`` — maximise Youden's J = sensitivity + specificity − 1 (= balanced accuracy): a missed
  finding and a false alarm weigh the same, and a rare class is not ignored. The rule ECGNet's fold-9
  thresholds use (:func:`ecgnet.evaluation.metrics.choose_thresholds`).
* ``f1`` — maximise F1 = 2·precision·recall / (precision + recall): depends on the site's prevalence,
  so it suits a site whose case mix is the one it will see.
* ``sensitivity`` — the highest threshold whose sensitivity reaches ``target_sensitivity`` (so, of the
  thresholds that find that share of cases, the one with the fewest false alarms): a screening rule.

Labels may be unknown (NaN): each class is fitted on the records where it is known. A class without a
positive and a negative among them cannot be fitted; :func:`fit_thresholds` leaves it at the fallback
threshold (the run's own) and says so. Thresholds chosen on records and scored on the same records are
optimistic — score them on held-out records (:mod:`ecgnet.evaluation.site_calibration` cross-fits).

Shrinkage. A threshold fitted on a handful of positives is mostly noise. With ``shrinkage`` = s > 0 each
fitted threshold is pulled toward the fallback (the run's own) in logit space, the site's weight being
m / (m + s), where m = min(positives, negatives) of the class — the count that limits how well the site's
threshold is known: a class with 5 positives and s = 20 moves a fifth of the way to the site's threshold,
one with 200 positives nine tenths. s = 0 is the site's threshold as fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

METHODS = ("youden", "f1", "sensitivity")
TIE = 1e-12  # J or F1 values this close are equal, written two ways (1/6 as 5/6 − 2/3 and as 1/6 − 0)


def _finite(threshold: float, scores: np.ndarray) -> float:
    """roc_curve's first threshold is +inf ("call nothing"): keep a finite, JSON-friendly value that still
    calls nothing here."""
    return float(min(threshold, np.nextafter(scores.max(), np.inf)))


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold of maximal sensitivity + specificity − 1 (the first, i.e. highest, on ties)."""
    fpr, tpr, thr = roc_curve(y, p)
    j = tpr - fpr  # thresholds fall along the curve: the first of the best is the highest
    return _finite(thr[int(np.flatnonzero(j >= j.max() - TIE)[0])], p)


def f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold of maximal F1 (the highest on ties)."""
    precision, recall, thr = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = np.flatnonzero(f1 >= f1.max() - TIE)
    return float(thr[best.max()])  # thresholds increase along the curve: the highest of the tied ones


def sensitivity_threshold(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """The highest threshold with sensitivity >= ``target``."""
    if not 0 < target <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    _, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    return _finite(thr[int(np.flatnonzero(tpr >= target - 1e-12)[0])], p)


def shrink_toward(site: float, fallback: float, n_minority: int, shrinkage: float) -> float:
    """The threshold ``n_minority / (n_minority + shrinkage)`` of the way from ``fallback`` to ``site``, in
    logit space (both clipped to [1e-6, 1 − 1e-6])."""
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
    if shrinkage == 0:
        return float(site)
    w = n_minority / (n_minority + shrinkage)
    a, b = (float(np.clip(v, 1e-6, 1 - 1e-6)) for v in (site, fallback))
    z = w * np.log(a / (1 - a)) + (1 - w) * np.log(b / (1 - b))
    return float(1 / (1 + np.exp(-z)))


@dataclass
class Thresholds:
    """Per-class thresholds, and for each class whether it was fitted (else: why not)."""

    values: np.ndarray
    fitted: list[bool]
    reasons: list[str]


def fit_thresholds(y_true, y_prob, method: str = "youden", target_sensitivity: float = 0.9,
                   fallback=None, shrinkage: float = 0.0) -> Thresholds:
    """Per class, the ``method``'s threshold on the records whose label is known (not NaN), shrunk toward
    the fallback by ``shrinkage`` (module docstring; 0: none).

    ``fallback`` (one value per class, e.g. the run's fold-9 thresholds; default 0.5) is kept for a
    class that lacks a known positive or negative."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not '{method}'")
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_prob.shape:
        raise ValueError(f"y_true {y_true.shape} and y_prob {y_prob.shape} must have the same 2-D shape")
    if not np.isfinite(y_prob).all():
        raise ValueError("y_prob contains NaN or infinite values")
    n_classes = y_true.shape[1]
    fallback = np.full(n_classes, 0.5) if fallback is None else np.asarray(fallback, dtype=float).reshape(-1)
    if fallback.shape != (n_classes,):
        raise ValueError(f"need {n_classes} fallback thresholds, got {fallback.shape[0]}")
    values, fitted, reasons = fallback.copy(), [False] * n_classes, [""] * n_classes
    for k in range(n_classes):
        known = ~np.isnan(y_true[:, k])
        y, p = y_true[known, k].astype(int), y_prob[known, k]
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"labels of class column {k} must be 0, 1 or NaN (unknown)")
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            reasons[k] = f"{n_pos} positive(s) of {len(y)} known: kept the run's (fallback) threshold"
            continue
        if method == "youden":
            values[k] = youden_threshold(y, p)
        elif method == "f1":
            values[k] = f1_threshold(y, p)
        else:
            values[k] = sensitivity_threshold(y, p, target_sensitivity)
        values[k] = shrink_toward(values[k], fallback[k], min(n_pos, len(y) - n_pos), shrinkage)
        fitted[k] = True
    return Thresholds(values, fitted, reasons)
