"""A site's operating points, fitted and honestly scored: probability calibration then per-class thresholds
fitted on the site's labelled records (:func:`fit_site`), and the before/after comparison measured on
held-out records only (:func:`cross_fit`, :func:`before_after`).

Order: the calibration map is fitted first, then the thresholds on the calibrated probabilities — so a
profile is applied as ``calls = calibrate(p) >= thresholds``. A class lacking a known positive or negative
keeps the identity map and the run's own (fold-9) threshold. ``method="run"`` keeps the run's decisions:
each fold-9 threshold is carried through the class's calibration map (the same calls for temperature
scaling, which is strictly increasing; an isotonic map is flat in places, and a threshold inside a flat
piece calls the piece by the nearer end: :func:`~ecgnet.evaluation.recalibration.carry_threshold`), so only
the probabilities are recalibrated.

Honesty. Thresholds chosen on records and scored on those same records are optimistic (they fit the
sample's noise). The comparison is therefore cross-fitted: the records are split into ``k`` folds (by
patient when patients are known), each fold's calibration and thresholds are fitted on the other
``k − 1`` folds and applied to it, and the held-out calls of all folds are pooled. "Before" is the run's
fold-9 thresholds on the raw probabilities, applied to the same records. The profile that is stored is
fitted on all the site's records; the cross-fitted figures estimate how it will do on the site's next
records. Intervals are 90 % percentile bootstraps over records (over patients, each with all their records,
when some patient has several; the held-out calls held fixed), the difference paired on the same resamples.
"""

from __future__ import annotations

import numpy as np

from ecgnet.evaluation.calibration import expected_calibration_error
from ecgnet.evaluation.metrics import MIN_GROUPS, bootstrap_indices, decision_rates, resampled_units
from ecgnet.evaluation.operating_points import METHODS, fit_thresholds, shrink_toward
from ecgnet.evaluation.recalibration import apply_calibrators, carry_threshold, fit_calibrators, raw_threshold

SITE_METHODS = (*METHODS, "run")  # "run": the run's own thresholds, carried through the calibration


def fit_site(y, p, method: str = "youden", target_sensitivity: float = 0.9, calibration: str = "none",
             fallback=None, shrinkage: float = 0.0) -> dict:
    """Calibration maps then thresholds (on calibrated probabilities), per class, on labelled records
    (``y``: 0/1, NaN unknown), each threshold shrunk toward the run's (``fallback``) by ``shrinkage``
    (:mod:`ecgnet.evaluation.operating_points`) — on raw probabilities, where the run's threshold lives
    (the same as on calibrated ones for temperature scaling; an isotonic map's flat pieces would make a
    logit of its 0 or 1 decide) — then carried through the class's map. Lists, one entry per class:
    thresholds, calibrators, fitted, reasons."""
    if method == "run" and fallback is None:
        raise ValueError("method 'run' carries the run's thresholds: give them as fallback")
    calibrators = fit_calibrators(y, p, calibration)
    fallback = np.full(len(calibrators), 0.5) if fallback is None else np.asarray(fallback, dtype=float).reshape(-1)
    run_t = [carry_threshold(t, c) for t, c in zip(fallback, calibrators)]  # on the calibrated scale
    if method == "run":
        return {"thresholds": run_t, "calibrators": calibrators, "fitted": [c["kind"] != "none" for c in calibrators],
                "reasons": ["" if c["kind"] != "none" else "no calibration: the run's threshold" for c in calibrators]}
    fit = fit_thresholds(y, apply_calibrators(p, calibrators), method, target_sensitivity, run_t)
    if shrinkage > 0:
        y = np.asarray(y, dtype=float)
        for k in np.flatnonzero(fit.fitted):
            known = y[~np.isnan(y[:, k]), k]
            minority = int(min(known.sum(), len(known) - known.sum()))
            shrunk = shrink_toward(raw_threshold(fit.values[k], calibrators[k]), fallback[k], minority, shrinkage)
            fit.values[k] = carry_threshold(shrunk, calibrators[k])
    return {"thresholds": fit.values.tolist(), "calibrators": calibrators, "fitted": fit.fitted,
            "reasons": fit.reasons}


def cross_fit(y, p, folds: np.ndarray, **fit_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(held-out calibrated probabilities, held-out thresholds), both (n, classes): every record scored
    by the profile fitted on the other folds."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    q, thresholds = np.empty_like(p), np.empty_like(p)
    for fold in np.unique(folds):
        test = folds == fold
        site = fit_site(y[~test], p[~test], **fit_kwargs)
        q[test] = apply_calibrators(p[test], site["calibrators"])
        thresholds[test] = site["thresholds"]
    return q, thresholds


def before_after(y, p, run_thresholds, q, heldout_thresholds, classes, n_boot: int = 1000, ci: float = 0.90,
                 seed: int = 0, n_bins: int = 10, groups=None) -> dict:
    """Per class (known labels only): balanced accuracy, sensitivity and specificity with the run's
    thresholds on ``p`` (before) and the held-out thresholds on the held-out calibrated ``q`` (after),
    bootstrap intervals (over ``groups``, the patients, when given) and the paired difference; ECE and Brier
    score of ``p`` and ``q``."""
    y, p, q = (np.asarray(a, dtype=float) for a in (y, p, q))
    run_thresholds = np.asarray(run_thresholds, dtype=float).reshape(-1)
    lo, hi = 50 * (1 - ci), 50 * (1 + ci)
    per_class = {}
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        yk = y[known, k].astype(int)
        entry = {"n": int(known.sum()), "n_positive": int(yk.sum())}
        if not 0 < yk.sum() < len(yk):
            per_class[c] = {**entry, "skipped": "needs a known positive and a known negative"}
            continue
        before = p[known, k] >= run_thresholds[k]
        after = q[known, k] >= heldout_thresholds[known, k]
        entry["before"], entry["after"] = decision_rates(yk, before), decision_rates(yk, after)
        entry["ece_before"] = expected_calibration_error(yk, p[known, k], n_bins)
        entry["ece_after"] = expected_calibration_error(yk, q[known, k], n_bins)
        entry["brier_before"] = float(np.mean((p[known, k] - yk) ** 2))
        entry["brier_after"] = float(np.mean((q[known, k] - yk) ** 2))
        try:
            idx = bootstrap_indices(len(yk), n_boot, seed, yk, None if groups is None else np.asarray(groups)[known],
                                    minimum=MIN_GROUPS)
        except ValueError:  # too few positives for valid resamples: point estimates only
            idx = None
        diff = entry["after"]["balanced_accuracy"] - entry["before"]["balanced_accuracy"]
        entry["difference"] = {"value": float(diff), "low": None, "high": None}
        if idx is not None:
            b = np.array([decision_rates(yk[i], before[i])["balanced_accuracy"] for i in idx])
            a = np.array([decision_rates(yk[i], after[i])["balanced_accuracy"] for i in idx])
            for name, values in (("before", b), ("after", a)):
                entry[name]["low"], entry[name]["high"] = (float(v) for v in np.percentile(values, [lo, hi]))
            entry["difference"]["low"], entry["difference"]["high"] = (float(v) for v in np.percentile(a - b, [lo, hi]))
        per_class[c] = entry
    scored = [e for e in per_class.values() if "before" in e]

    def mean(key, sub=None):
        values = [e[key][sub] if sub else e[key] for e in scored]
        return float(np.mean(values)) if values else None

    return {"per_class": per_class, "ci": ci, "n_boot": n_boot, "n_bins": n_bins,
            "resampled": resampled_units(groups, len(y)),
            "classes_scored": [c for c, e in per_class.items() if "before" in e],
            "mean_balanced_accuracy": {"before": mean("before", "balanced_accuracy"),
                                       "after": mean("after", "balanced_accuracy")},
            "macro_ece": {"before": mean("ece_before"), "after": mean("ece_after")},
            "macro_brier": {"before": mean("brier_before"), "after": mean("brier_after")}}
