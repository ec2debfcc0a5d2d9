"""Probability calibration for a site: maps that turn a run's probabilities into frequencies on that
site's records, fitted per class (each class is its own sigmoid output, with its own miscalibration).

* ``temperature`` — one temperature T per class: p' = σ(logit(p) / T), T fitted by minimising the
  negative log-likelihood (Guo et al. 2017). The logit is that of the record's final probability (after
  ECGNet's windows and segments are aggregated). T > 1 softens over-confident probabilities, T < 1
  sharpens; it never changes a class's ranking, so its AUC is unchanged. T is searched in [0.05, 20]: a
  class whose records are perfectly separated drives T to 0.05 (probabilities pushed to 0 and 1: a site of
  four records called every class 1.000 ≥ 1.000), a sign that there are too few records to calibrate it — such
  a class keeps the identity, its map saying why (``not_fitted``).
* ``isotonic`` — a non-decreasing step-wise map fitted by isotonic regression (scikit-learn's
  ``IsotonicRegression``, interpolated linearly between its knots and clipped outside them). More
  flexible, needs more records; it may tie records that were ranked apart, so AUC can move a little.
* ``none`` — the identity.

A fitted map is a small JSON-ready dict (``{"kind": "temperature", "temperature": T}`` or
``{"kind": "isotonic", "x": [...], "y": [...]}``), so a site profile stores it and applies it without
scikit-learn. Labels may be unknown (NaN); a class without a known positive and negative keeps the
identity.
"""

from __future__ import annotations

import numpy as np  # applying a map needs numpy only (predict's path); fitting imports scipy / sklearn

KINDS = ("temperature", "isotonic", "none")
LOGIT_EPS = 1e-7  # p is clipped to [LOGIT_EPS, 1 − LOGIT_EPS] before its logit (ONNX metadata says so)
IDENTITY = {"kind": "none"}
T_RANGE = (0.05, 20.0)
NOT_FITTED = ("the records separate it perfectly: a temperature would push its probabilities to 0 and 1 (too few "
              "records to calibrate it); left as it is")


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), LOGIT_EPS, 1 - LOGIT_EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))  # = 1 / (1 + e^−z), without overflow


def fit_temperature(y, p) -> float:
    """The T > 0 minimising the mean binary NLL of σ(logit(p) / T) against ``y`` (searched on log T)."""
    from scipy.optimize import minimize_scalar

    z, y = logit(p), np.asarray(y, dtype=float)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, s) - y * s))  # −[y log σ(s) + (1−y) log(1−σ(s))]

    result = minimize_scalar(nll, bounds=(np.log(T_RANGE[0]), np.log(T_RANGE[1])), method="bounded",
                             options={"xatol": 1e-6})
    return float(np.exp(result.x))


def fit_isotonic(y, p) -> dict:
    """The knots of scikit-learn's isotonic fit of ``y`` on ``p`` (non-decreasing, within [0, 1])."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(p, dtype=float), np.asarray(y, dtype=float))
    return {"kind": "isotonic", "x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


def fit_calibrator(y, p, kind: str) -> dict:
    """One class's map (``y`` 0/1/NaN); the identity when ``kind`` is none or the class lacks a
    known positive or negative."""
    if kind not in KINDS:
        raise ValueError(f"calibration must be one of {', '.join(KINDS)}, not '{kind}'")
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    known = ~np.isnan(y)
    y, p = y[known], p[known]
    if kind == "none" or not (0 < y.sum() < len(y)):
        return dict(IDENTITY)
    if kind == "temperature":
        t = fit_temperature(y, p)
        if t <= T_RANGE[0] * 1.001:  # at the search's bound: no temperature fits, the likelihood wants T → 0
            return {**IDENTITY, "not_fitted": NOT_FITTED}
        return {"kind": "temperature", "temperature": t}
    return fit_isotonic(y, p)


def fit_calibrators(y_true, y_prob, kind: str) -> list[dict]:
    """One map per class column."""
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_prob.shape:
        raise ValueError(f"y_true {y_true.shape} and y_prob {y_prob.shape} must have the same 2-D shape")
    return [fit_calibrator(y_true[:, k], y_prob[:, k], kind) for k in range(y_true.shape[1])]


def apply_calibrator(p, calibrator: dict) -> np.ndarray:
    """``p`` (any shape) through one class's map."""
    p = np.asarray(p, dtype=float)
    if not isinstance(calibrator, dict):
        raise ValueError(f"a calibration map is an object with a 'kind', not {type(calibrator).__name__}")
    kind = calibrator.get("kind")
    if kind == "none":
        return p.copy()
    if kind == "temperature":
        t = float(calibrator["temperature"])
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a positive number, got {t}")
        return sigmoid(logit(p) / t)
    if kind == "isotonic":
        x, y = np.asarray(calibrator["x"], dtype=float), np.asarray(calibrator["y"], dtype=float)
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0 or np.any(np.diff(x) < 0):
            raise ValueError("isotonic map needs equally long, non-empty, sorted x and y knots")
        return np.interp(p, x, y)  # constant beyond the end knots, as out_of_bounds="clip"
    raise ValueError(f"unknown calibration kind {kind!r} (expected one of {', '.join(KINDS)})")


def apply_calibrators(y_prob, calibrators: list[dict]) -> np.ndarray:
    """(n, classes) probabilities through each class's map."""
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim != 2 or y_prob.shape[1] != len(calibrators):
        raise ValueError(f"{len(calibrators)} calibration maps for probabilities of shape {y_prob.shape}")
    return np.stack([apply_calibrator(y_prob[:, k], c) for k, c in enumerate(calibrators)], axis=1)


def carry_threshold(t: float, calibrator: dict) -> float:
    """A threshold ``t`` on raw probabilities as a threshold on the map's output that makes the same calls
    (``p >= t``). An isotonic map is flat in places, so ``t`` inside a flat piece cannot be kept exactly: the
    piece is called positive when ``t`` is nearer its start, negative when nearer its end (the end pieces reach
    to 0 and 1) — carrying ``t`` to the piece's value would call the whole piece, and for the bottom piece,
    whose value is often 0, every record."""
    v = float(apply_calibrator(t, calibrator))
    if calibrator.get("kind") != "isotonic":
        return v
    x, y = np.asarray(calibrator["x"], dtype=float), np.asarray(calibrator["y"], dtype=float)
    flat = np.flatnonzero(y == v)  # contiguous: the knots are non-decreasing
    if len(flat) == 0:  # t is on a rising stretch
        return v
    start = x[flat[0]] if flat[0] > 0 else 0.0
    end = x[flat[-1]] if flat[-1] < len(x) - 1 else 1.0
    if end <= start or t <= start:
        return v
    if t - start <= end - t:
        return v
    above = y[y > v]  # the piece out: half-way to the next value the map takes, a threshold that survives rounding
    return float((v + above.min()) / 2) if len(above) else float(np.nextafter(v, np.inf))


def raw_threshold(threshold: float, calibrator: dict) -> float:
    """The inverse of :func:`carry_threshold`: the lowest raw probability the map takes to ``threshold`` or
    above; where every one is, or none, a point of the end piece that :func:`carry_threshold` takes back to the
    same calls (not 0 or 1, whose logits a shrinkage would clip)."""
    kind = calibrator.get("kind")
    if kind == "none":
        return float(threshold)
    if kind == "temperature":
        return float(sigmoid(logit(threshold) * float(calibrator["temperature"])))
    x, y = np.asarray(calibrator["x"], dtype=float), np.asarray(calibrator["y"], dtype=float)
    above = np.flatnonzero(y >= threshold)
    if len(above) == 0:  # calls nothing: nearer the top piece's end
        return float(x[-1] + 0.75 * (1.0 - x[-1]))
    j = int(above[0])
    if j == 0:  # calls everything: nearer the bottom piece's start
        return float(0.25 * x[0])
    return float(x[j - 1] + (threshold - y[j - 1]) * (x[j] - x[j - 1]) / (y[j] - y[j - 1]))
