"""Evaluation as in the PTB-XL benchmark (Strodthoff et al. 2021).

* Ranking quality: macro AUC over classes, with a bootstrap interval in which the test set is
  resampled and only resamples where every class has at least one positive and one negative are
  kept (otherwise a class's AUC is undefined and the resample would be biased by dropping it).
* Decisions: one threshold per class, chosen on the validation fold (fold 9) and applied unchanged
  to the test fold (fold 10). Nothing here chooses a threshold on the data it then scores.

All functions take ``y_true`` (n_records × n_classes, 0/1) and ``y_prob`` (same shape, finite) and
raise ``ValueError`` with a clear message on anything else.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ecgnet.errors import ECGNetError
from ecgnet.evaluation.operating_points import youden_threshold
from ecgnet.fileio import atomic_path

MetricFn = Callable[[np.ndarray, np.ndarray], float]
MIN_GROUPS = 10  # fewer records (or patients) than this: resampling them says little (one: every resample is the set)


def _check(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return both as 2-D arrays (a 1-D input is one class)."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=float)
    y_true = y_true.reshape(-1, 1) if y_true.ndim == 1 else y_true
    y_prob = y_prob.reshape(-1, 1) if y_prob.ndim == 1 else y_prob
    if y_true.ndim != 2 or y_true.shape != y_prob.shape:
        raise ValueError(f"y_true {y_true.shape} and y_prob {y_prob.shape} must have the same 2-D shape")
    if y_true.shape[0] == 0:
        raise ValueError("no records to evaluate")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must be binary (0/1)")
    if not np.isfinite(y_prob).all():
        raise ValueError("y_prob contains NaN or infinite values")
    return y_true.astype(int), y_prob


def per_class_auc(y_true, y_prob) -> np.ndarray:
    """ROC AUC of each class; every class needs at least one positive and one negative.

    Computed as the Mann–Whitney U statistic from average ranks, which equals sklearn's
    ``roc_auc_score`` exactly (ties included; checked in the tests) but is several times faster —
    it runs once per bootstrap resample.
    """
    y_true, y_prob = _check(y_true, y_prob)
    n_pos = y_true.sum(axis=0)
    n_neg = len(y_true) - n_pos
    bad = np.flatnonzero((n_pos == 0) | (n_neg == 0))
    if bad.size:
        raise ValueError(f"AUC undefined: class column(s) {bad.tolist()} lack a positive or a negative")
    ranks = rankdata(y_prob, axis=0)
    return ((ranks * y_true).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def macro_auc(y_true, y_prob) -> float:
    """Unweighted mean of per-class AUCs (= sklearn ``roc_auc_score(average="macro")``), the
    benchmark's headline metric."""
    return float(per_class_auc(y_true, y_prob).mean())


def bootstrap_indices(n: int, n_boot: int, seed: int, y_true, groups=None,
                      minimum: int = 1) -> list[np.ndarray] | np.ndarray:
    """``n_boot`` resamples (rows of indices, with replacement) in which every class has ≥1 positive
    and ≥1 negative. Invalid draws are discarded and redrawn, as in the benchmark code. Unknown labels
    (NaN, as in a manifest) count as neither: each class must keep a *known* positive and negative, and
    without unknowns the draws are the same.

    ``groups`` (one label per row, e.g. the patient): resample groups, each drawn group bringing all its rows
    (a cluster bootstrap; a patient's records are not independent, and resampling them one by one makes
    the interval too narrow). The resamples then differ in length (a list of index arrays). When every row
    is its own group the draws are exactly those without ``groups``. Fewer than :data:`MIN_GROUPS` groups, or
    fewer than ``minimum`` records, give no interval (``ValueError``): resampling two patients has three
    outcomes, one patient none (the scoring of small collections passes ``minimum=MIN_GROUPS``)."""
    y_true = np.asarray(y_true, dtype=float)
    y_true = y_true.reshape(-1, 1) if y_true.ndim == 1 else y_true
    if len(y_true) != n or n == 0 or n_boot < 1:
        raise ValueError(f"need n == len(y_true) > 0 and n_boot >= 1 (n={n}, len={len(y_true)}, n_boot={n_boot})")
    members = _group_members(groups, n)
    units, least = (n, minimum) if members is None else (len(members), max(minimum, MIN_GROUPS))
    if units < least:  # 4 records gave "1.000 [1.000, 1.000]"
        raise ValueError(f"cannot bootstrap over {units} {'records' if members is None else 'patients'} "
                         f"(at least {least})")
    known = ~np.isnan(y_true)
    masked = not known.all()
    y_true = np.where(known, y_true, 0.0)
    pos = y_true.sum(axis=0)
    if ((pos == 0) | (pos == known.sum(axis=0))).any():
        raise ValueError("cannot bootstrap: some class has no positive or no negative in the data"
                         + (" (among its known labels)" if masked else ""))
    rng = np.random.default_rng(seed)
    out, tries, max_tries = [], 0, max(1000, 100 * n_boot)
    while len(out) < n_boot:
        if tries >= max_tries:
            raise ValueError(f"only {len(out)} of {n_boot} valid resamples in {max_tries} draws; a class is too rare")
        tries += 1
        if members is None:
            idx = rng.integers(0, n, size=n)
        else:
            idx = members.draw(rng)
        p = y_true[idx].sum(axis=0)
        if (p > 0).all() and (p < (known[idx].sum(axis=0) if masked else len(idx))).all():
            out.append(idx)
    return np.stack(out) if members is None else out


class _Groups:
    """Rows by group: group ``g`` (numbered in order of first appearance, so the draws do not depend on how
    groups are labelled) is ``rows[start[g]:start[g] + size[g]]``."""

    def __init__(self, groups, n: int):
        groups = np.asarray(groups, dtype=object).reshape(-1)
        if len(groups) != n:
            raise ValueError(f"{len(groups)} group labels for {n} rows")
        if any(g is None or (isinstance(g, float) and np.isnan(g)) or str(g) == "" for g in groups):
            raise ValueError("a group label is missing (None, NaN or empty): every row needs its patient")
        _, first, inverse = np.unique(groups.astype(str), return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=int)
        rank[np.argsort(first)] = np.arange(len(first))
        number = rank[inverse.reshape(-1)]
        self.rows = np.argsort(number, kind="stable")
        self.size = np.bincount(number, minlength=len(first))
        self.start = np.cumsum(self.size) - self.size

    def __len__(self) -> int:
        return len(self.size)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        g = rng.integers(0, len(self), size=len(self))
        size = self.size[g]
        offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        return self.rows[np.repeat(self.start[g], size) + offset]


def _group_members(groups, n: int) -> _Groups | None:
    """The rows of each group; None when there are no groups or every row is its own."""
    if groups is None:
        return None
    members = _Groups(groups, n)
    return None if len(members) == n else members


def resampled_units(groups, n: int) -> str:
    """What an interval resamples, for reports: 'records', or 'patients' when some patient has several."""
    return "records" if _group_members(groups, n) is None else "patients"


def resampled_words(units: str | None) -> str:
    """``resampled_units`` in a report's words: "records", or "patients, each with all their records"."""
    return "patients, each with all their records" if units == "patients" else "records"


def percentile_interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ``ci`` percentile interval of resampled ``values`` (every bootstrap interval here)."""
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    low, high = np.percentile(values, [50 * (1 - ci), 50 * (1 + ci)])
    return float(low), float(high)


def bootstrap_ci(y_true, y_prob, metric_fn: MetricFn = macro_auc, n_boot: int = 1000, ci: float = 0.90,
                 seed: int = 0, groups=None) -> tuple[float, float, float]:
    """(point on the full set, low, high): percentile interval over valid resamples of the test set (of its
    ``groups``, e.g. patients, when given: :func:`bootstrap_indices`)."""
    y_true, y_prob = _check(y_true, y_prob)
    point = float(metric_fn(y_true, y_prob))
    idx = bootstrap_indices(len(y_true), n_boot, seed, y_true, groups)
    values = np.array([metric_fn(y_true[i], y_prob[i]) for i in idx])
    return (point, *percentile_interval(values, ci))


def paired_bootstrap(y_true, prob_a, prob_b, metric_fn: MetricFn = macro_auc, n_boot: int = 1000,
                     ci: float = 0.90, seed: int = 0, groups=None) -> dict:
    """Compare two models on the *same* resamples (their errors are correlated, so pairing is tighter).

    ``diff`` = metric(a) − metric(b) on the full set; ``low``/``high`` the percentile interval of the
    resampled differences; ``p_value`` the fraction of resamples with diff ≤ 0 — a one-sided bootstrap
    p-value for "a is better than b" (near 0 when a is clearly better, around 0.5 for models of equal skill,
    1 for identical predictions, whose every difference is 0). ``groups``: resample these (e.g. patients)
    rather than rows (:func:`bootstrap_indices`).
    """
    y_true, prob_a = _check(y_true, prob_a)
    _, prob_b = _check(y_true, prob_b)
    diff = float(metric_fn(y_true, prob_a) - metric_fn(y_true, prob_b))
    idx = bootstrap_indices(len(y_true), n_boot, seed, y_true, groups)
    diffs = np.array([metric_fn(y_true[i], prob_a[i]) - metric_fn(y_true[i], prob_b[i]) for i in idx])
    low, high = percentile_interval(diffs, ci)
    return {"diff": diff, "low": low, "high": high, "p_value": float(np.mean(diffs <= 0))}


def choose_thresholds(y_true, y_prob) -> np.ndarray:
    """Per class, the threshold maximising Youden's J = sensitivity + specificity − 1.

    Maximising J is maximising balanced accuracy, so it does not reward ignoring a rare class and
    weighs a missed finding and a false alarm equally (no clinical cost asymmetry is assumed).
    Call it on the validation fold only; predictions are ``y_prob >= threshold`` (roc_curve's rule).
    """
    y_true, y_prob = _check(y_true, y_prob)
    per_class_auc(y_true, y_prob)  # every class needs positives and negatives
    return np.array([youden_threshold(y_true[:, k], y_prob[:, k]) for k in range(y_true.shape[1])])


def decision_rates(y, calls) -> dict:
    """Sensitivity, specificity and balanced accuracy of one class's ``calls`` (positive: True or 1) against
    its 0/1 labels ``y`` (both present, same length); the one-class, known-labels-only counterpart of
    :func:`threshold_metrics`."""
    y, calls = np.asarray(y), np.asarray(calls)
    if y.ndim != 1 or y.shape != calls.shape:
        raise ValueError(f"y {y.shape} and calls {calls.shape} must be one class's records: the same 1-D shape")
    if not np.isin(y, (0, 1)).all() or not np.isin(calls, (0, 1)).all():
        raise ValueError("y and calls must be binary (0/1 or booleans)")
    if not 0 < y.sum() < len(y):
        raise ValueError("sensitivity and specificity need a positive and a negative record in y")
    y, calls = y.astype(bool), calls.astype(bool)  # ~ on integer 0/1 calls is -1/-2, not their negation
    sens, spec = float(calls[y].mean()), float((~calls[~y]).mean())
    return {"sensitivity": sens, "specificity": spec, "balanced_accuracy": (sens + spec) / 2}


def threshold_metrics(y_true, y_prob, thresholds) -> dict:
    """Per-class accuracy, balanced accuracy, sensitivity, specificity, F1 (arrays) and macro F1,
    for predictions ``y_prob >= thresholds``. A rate with no cases to count is NaN."""
    y_true, y_prob = _check(y_true, y_prob)
    thresholds = np.asarray(thresholds, dtype=float).reshape(-1)
    if thresholds.shape != (y_true.shape[1],) or not np.isfinite(thresholds).all():
        raise ValueError(f"need {y_true.shape[1]} finite thresholds, got {thresholds.shape[0]}")
    pred = (y_prob >= thresholds).astype(int)
    tp = (pred & y_true).sum(0)
    fp = (pred & (1 - y_true)).sum(0)
    fn = ((1 - pred) & y_true).sum(0)
    tn = ((1 - pred) & (1 - y_true)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {
        "thresholds": thresholds,
        "accuracy": (tp + tn) / len(y_true),
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
        "f1": f1,
        "macro_f1": float(f1.mean()),
    }


def single_label_accuracy(y_true, y_prob) -> tuple[float, int]:
    """The benchmark's "5-way accuracy": on records with exactly one positive class, the fraction
    where argmax(prob) is that class. Multi-label and unlabelled records are excluded. (NaN, 0) if none."""
    y_true, y_prob = _check(y_true, y_prob)
    keep = y_true.sum(axis=1) == 1
    n = int(keep.sum())
    if n == 0:
        return float("nan"), 0
    return float(np.mean(y_prob[keep].argmax(1) == y_true[keep].argmax(1))), n


def _num(x) -> float | None:
    """float for JSON; NaN → None (JSON has no NaN)."""
    x = float(x)
    return None if np.isnan(x) else x


def evaluate(y_true, y_prob, classes: Sequence[str], thresholds=None, n_boot: int = 1000,
             ci: float = 0.90, seed: int = 0) -> dict:
    """All metrics as a JSON-ready dict. Threshold-based entries appear only when ``thresholds``
    (chosen on the validation fold) are given."""
    y_true, y_prob = _check(y_true, y_prob)
    classes = [str(c) for c in classes]
    if len(classes) != y_true.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y_true.shape[1]} columns")
    point, low, high = bootstrap_ci(y_true, y_prob, macro_auc, n_boot=n_boot, ci=ci, seed=seed)
    aucs = per_class_auc(y_true, y_prob)
    tm = threshold_metrics(y_true, y_prob, thresholds) if thresholds is not None else None
    per_class = {}
    for k, c in enumerate(classes):
        entry = {"auc": float(aucs[k]), "n_positive": int(y_true[:, k].sum())}
        if tm is not None:
            for key in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"):
                entry[key] = _num(tm[key][k])
            entry["threshold"] = float(tm["thresholds"][k])
        per_class[c] = entry
    sla, n_single = single_label_accuracy(y_true, y_prob)
    out = {
        "n_records": int(len(y_true)),
        "classes": classes,
        "macro_auc": {"value": point, "low": low, "high": high, "ci": ci, "n_boot": n_boot},
        "per_class": per_class,
    }
    if tm is not None:
        out["macro_f1"] = tm["macro_f1"]
        out["mean_balanced_accuracy"] = _num(np.nanmean(tm["balanced_accuracy"]))
    out["single_label_accuracy"] = {"value": _num(sla), "n": n_single}
    return out


def write_predictions(path: str | os.PathLike, ecg_ids, y_prob, classes: Sequence[str]) -> None:
    """CSV ``ecg_id,<class…>`` with probabilities to 6 decimals, written atomically."""
    y_prob = np.asarray(y_prob, dtype=float)
    ecg_ids = np.asarray(ecg_ids).reshape(-1)
    classes = [str(c) for c in classes]
    if y_prob.ndim != 2 or y_prob.shape != (len(ecg_ids), len(classes)):
        raise ValueError(f"y_prob {y_prob.shape} must be (len(ecg_ids)={len(ecg_ids)}, len(classes)={len(classes)})")
    if len(set(classes)) != len(classes) or "ecg_id" in classes:
        raise ValueError(f"class names must be unique and not 'ecg_id': {classes}")
    if not np.isfinite(y_prob).all():
        raise ValueError("y_prob contains NaN or infinite values")
    df = pd.DataFrame(y_prob, columns=classes)
    df.insert(0, "ecg_id", ecg_ids)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f")


def read_predictions(path: str | os.PathLike, classes: Sequence[str] | None = None):
    """(ecg_ids, probs, classes) from a :func:`write_predictions` file. With ``classes`` given the
    file must hold exactly those class columns; they are returned in the requested order."""
    if not os.path.isfile(path):
        raise ECGNetError(f"{path}: predictions file not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not a readable predictions CSV ({e})") from None
    cols = [str(c) for c in df.columns]
    if not cols or cols[0] != "ecg_id" or len(cols) < 2:
        raise ECGNetError(f"{path}: expected header 'ecg_id,<class…>', got {','.join(cols)!r}")
    found = cols[1:]
    if classes is not None:
        classes = [str(c) for c in classes]
        if sorted(found) != sorted(classes):
            raise ECGNetError(f"{path}: class columns {found} do not match the expected {classes}")
        found = classes
    try:
        probs = df[found].to_numpy(dtype=float)
    except ValueError:
        raise ECGNetError(f"{path}: probability columns must be numeric") from None
    if not np.isfinite(probs).all():
        raise ECGNetError(f"{path}: probabilities contain missing or non-finite values")
    return df["ecg_id"].to_numpy(), probs, list(found)
