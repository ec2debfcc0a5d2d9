"""Scoring probabilities against labels that may be unknown (NaN, an empty manifest cell): the one
``score`` that ``evaluate --manifest``, ``evaluate-external`` and cross-validation on a manifest share.

A class is *scorable* when it has a known positive and a known negative; it is scored on the records where
its label is known. The macro AUC averages the scorable classes. Its 90 % interval is a percentile
bootstrap over records, keeping only resamples in which every scorable class still has a known positive and
negative (:func:`ecgnet.evaluation.metrics.bootstrap_indices`; without unknown labels these are the draws of
:func:`~ecgnet.evaluation.metrics.bootstrap_ci`, so the intervals are the benchmark's). Given ``groups`` (a
manifest's patients) where some patient has several records, patients are resampled instead, each with all
their records: records of one patient are not independent evidence. Too few positives for valid resamples
gives the point without an interval, never an error.
"""

from __future__ import annotations

import numpy as np

from ecgnet.evaluation import metrics as M

FEW = 10  # a class with fewer known positives (or negatives) than this: its AUC and interval are fragile


def scorable(y: np.ndarray) -> list[int]:
    """Columns of ``y`` with a known positive and a known negative."""
    return [k for k in range(y.shape[1]) if 0 < np.nansum(y[:, k]) < (~np.isnan(y[:, k])).sum()]


def masked_macro_auc(y: np.ndarray, p: np.ndarray, empty: float = float("nan")) -> float:
    """Mean AUC over the scorable columns, each on its known rows; ``empty`` when none is scorable."""
    ok = scorable(y)
    if ok and not np.isnan(y[:, ok]).any():  # every label known: all columns at once
        return M.macro_auc(y[:, ok], p[:, ok])
    aucs = [M.per_class_auc(y[known, k], p[known, k])[0] for k in ok for known in [~np.isnan(y[:, k])]]
    return float(np.mean(aucs)) if aucs else empty


def auc_interval(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int,
                 ci: float = 0.90, groups=None) -> tuple[float, float | None, float | None]:
    """(masked macro AUC, low, high) over columns that must all be scorable; no interval when too few
    positives for valid resamples. ``groups``: resample these (patients), not records."""
    point = masked_macro_auc(y, p)
    try:
        idx = M.bootstrap_indices(len(y), n_boot, seed, y, groups, minimum=M.MIN_GROUPS)
    except ValueError:
        return point, None, None
    values = np.array([masked_macro_auc(y[i], p[i]) for i in idx])
    return (point, *M.percentile_interval(values, ci))


def score(y: np.ndarray, p: np.ndarray, classes: list[str], thresholds: dict | None = None,
          n_boot: int = 1000, seed: int = 0, groups=None) -> dict:
    """Per class: known and positive counts, AUC with its interval, and with ``thresholds`` the balanced
    accuracy, sensitivity and specificity of its calls; the macro AUC (with interval) over the scorable
    classes and the mean balanced accuracy. ``n``: the records given. ``y``: (records, classes) 0/1 with NaN
    for unknown labels; ``p``: probabilities of the same shape; ``classes``: their names, in column order;
    ``groups``: each record's patient (the intervals resample patients when some has several records)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.ndim != 2 or y.shape != p.shape or y.shape[1] != len(classes):
        raise ValueError(f"y {y.shape} and p {p.shape} must be (records, classes) with one column per class "
                         f"of {len(classes)} ({', '.join(map(str, classes))})")
    ok = scorable(y)
    per_class = {}
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        yk, pk = y[known, k].astype(int), p[known, k]
        entry = {"n": int(known.sum()), "n_positive": int(yk.sum()), "auc": None, "low": None, "high": None}
        if k in ok:
            entry["auc"], entry["low"], entry["high"] = auc_interval(y[:, [k]], p[:, [k]], n_boot, seed,
                                                                     groups=groups)
            if thresholds and c in thresholds:
                entry.update(threshold=float(thresholds[c]), **M.decision_rates(yk, pk >= thresholds[c]))
        per_class[c] = entry
    out = {"n": int(len(y)), "classes_scored": [classes[k] for k in ok], "per_class": per_class, "macro_auc": None}
    if ok:
        value, low, high = auc_interval(y[:, ok], p[:, ok], n_boot, seed, groups=groups)
        out["macro_auc"] = {"value": value, "low": low, "high": high, "ci": 0.9, "n_boot": n_boot,
                            "resampled": M.resampled_units(groups, len(y))}
        bal = [per_class[classes[k]]["balanced_accuracy"] for k in ok if "balanced_accuracy" in per_class[classes[k]]]
        if bal:
            out["mean_balanced_accuracy"] = float(np.mean(bal))
    return out


def few_cases(scores: dict) -> str | None:
    """A warning naming the scored classes with fewer than :data:`FEW` known positives or negatives in
    ``scores`` (what :func:`score` returns), or None: a bootstrap interval cannot show how little one or two
    cases tell (one positive ranked first gives AUC 1.000 [1.000, 1.000])."""
    few = few_classes({c: scores["per_class"][c] for c in scores.get("classes_scored", [])})
    if not few:
        return None
    return (f"fewer than {FEW} positives or negatives for {', '.join(few)}: their AUC and interval rest on too "
            "few cases to trust")


def few_classes(entries: dict) -> list[str]:
    """"C (1 positive, 4 negative)" for each class of ``entries`` ({class: {"n", "n_positive", …}}) with fewer
    than :data:`FEW` known positives or negatives."""
    out = []
    for c, e in entries.items():
        positives, negatives = e["n_positive"], e["n"] - e["n_positive"]
        if min(positives, negatives) < FEW:
            out.append(f"{c} ({positives} positive, {negatives} negative)")
    return out


def format_auc(entry: dict | None) -> str:
    """A class's entry of :func:`score` (``auc``) or a macro AUC (``value``) as '0.912 [0.880, 0.940]' (no
    interval when there is none, '–' when there is no AUC)."""
    if not entry or entry.get("auc", entry.get("value")) is None:
        return "–"
    value = entry.get("auc", entry.get("value"))
    return f"{value:.3f}" + (f" [{entry['low']:.3f}, {entry['high']:.3f}]" if entry.get("low") is not None else "")


def format_rate(entry: dict, key: str) -> str:
    """One figure of a class's entry (a threshold, a sensitivity, …) to 3 decimals; '–' when there is none."""
    return "–" if entry.get(key) is None else f"{entry[key]:.3f}"
