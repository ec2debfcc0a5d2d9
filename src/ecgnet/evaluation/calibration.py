"""How far predicted probabilities can be read as frequencies: per-class reliability curves, expected
calibration error (ECE) and Brier score on a held-out fold.

ECE here is the usual binned estimate: records grouped into ``n_bins`` equal-width bins of predicted
probability, and the gaps |observed rate − mean prediction| averaged with the bins' record counts as
weights. A model selected on AUC (ranking) may still be miscalibrated: weighted losses, focal loss,
mixup and label smoothing all move probabilities away from frequencies without changing the ranking
much. The thresholds ECGNet applies are chosen on fold 9, so calibration matters for reading a
probability, not for the thresholded metrics.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from ecgnet.plotting import plt


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> float:
    """Binned ECE of one class: Σ_bins (n_bin / n) · |mean(y) − mean(p)|, bins of equal width on [0, 1].
    ``y_true`` 0/1 and ``y_prob`` probabilities in [0, 1], one class's records (1-D, the same length)."""
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    if y_true.ndim != 1 or y_true.shape != y_prob.shape or not len(y_true):
        raise ValueError(f"y_true {y_true.shape} and y_prob {y_prob.shape} must be one class's records: the same "
                         "non-empty 1-D shape (calibration_summary takes every class)")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must be binary (0/1)")
    if not (np.isfinite(y_prob).all() and ((y_prob >= 0) & (y_prob <= 1)).all()):
        raise ValueError("y_prob must be probabilities in [0, 1]")
    bins = np.minimum((y_prob * n_bins).astype(int), n_bins - 1)
    gaps = [abs(y_true[bins == b].mean() - y_prob[bins == b].mean()) * (bins == b).sum()
            for b in range(n_bins) if (bins == b).any()]
    return float(sum(gaps) / len(y_true))


def calibration_summary(y_true, y_prob, classes, n_bins: int = 10) -> dict:
    """Per class: ECE, Brier score, prevalence and mean prediction; plus their macro means."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    per_class = {c: {"ece": expected_calibration_error(y_true[:, k], y_prob[:, k], n_bins),
                     "brier": float(brier_score_loss(y_true[:, k], y_prob[:, k])),
                     "prevalence": float(y_true[:, k].mean()), "mean_prediction": float(y_prob[:, k].mean())}
                 for k, c in enumerate(classes)}
    return {"n_bins": n_bins, "per_class": per_class,
            "macro_ece": float(np.mean([v["ece"] for v in per_class.values()])),
            "macro_brier": float(np.mean([v["brier"] for v in per_class.values()]))}


def reliability_figure(y_true, y_prob, classes, title: str = "Reliability, test fold", n_bins: int = 10):
    """One panel per class: observed rate against mean prediction per bin (quantile bins, so each point
    holds as many records), with the diagonal of perfect calibration."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    fig, axes = _panels(len(classes), 2.6)
    for k, c in enumerate(classes):
        ax = axes.flat[k]
        observed, predicted = calibration_curve(y_true[:, k], y_prob[:, k], n_bins=n_bins, strategy="quantile")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.plot(predicted, observed, marker="o", ms=3, lw=1.2)
        ax.set_title(f"{c} (ECE {expected_calibration_error(y_true[:, k], y_prob[:, k]):.3f})", fontsize=9)
        ax.set(xlim=(0, 1), ylim=(0, 1))
    return _finish(fig, axes, len(classes), title)


def reliability_comparison(y_true, curves: dict, classes, title: str = "Reliability", n_bins: int = 5):
    """Like :func:`reliability_figure`, several probability sets per panel (``curves``: label → (n,
    classes) probabilities, e.g. before/after recalibration) against the same labels, unknown labels
    (NaN) left out class by class; the legend gives each curve's ECE. A class without a known positive
    and negative gets an empty panel saying so."""
    y_true = np.asarray(y_true, dtype=float)
    fig, axes = _panels(len(classes), 2.8)
    for k, c in enumerate(classes):
        ax = axes.flat[k]
        known = ~np.isnan(y_true[:, k])
        y = y_true[known, k]
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_title(f"{c} (n={len(y)}, {int(y.sum())} pos.)", fontsize=9)
        if not 0 < y.sum() < len(y):
            ax.text(0.5, 0.5, "no positive\nor negative", ha="center", va="center", fontsize=8)
            continue
        for i, (label, probs) in enumerate(curves.items()):
            p = np.asarray(probs, dtype=float)[known, k]
            observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
            ax.plot(predicted, observed, marker="o", ms=3, lw=1.2, color=f"C{i}",
                    label=f"{label} (ECE {expected_calibration_error(y, p):.3f})")
        ax.legend(fontsize=6, loc="upper left")
    return _finish(fig, axes, len(classes), title)


def _panels(n: int, inches: float):
    """A grid of ``n`` square panels, at most 5 a row, sharing their axes."""
    cols = min(n, 5)
    rows = int(np.ceil(n / cols))
    return plt.subplots(rows, cols, figsize=(inches * cols, inches * rows), squeeze=False, sharex=True, sharey=True)


def _finish(fig, axes, n: int, title: str):
    """Unused panels hidden, the shared axis labels and the title set."""
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.supxlabel("mean predicted probability")
    fig.supylabel("observed frequency")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
