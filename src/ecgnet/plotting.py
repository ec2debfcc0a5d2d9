"""matplotlib, set up once: every figure ECGNet draws goes to a file, so the backend is Agg (no display,
no GUI toolkit, works on a headless server) — unless the user chose one already (a notebook's inline
backend, MPLBACKEND, matplotlib.use before importing ecgnet), which importing ECGNet leaves as it was.
Import ``plt`` from here, never ``matplotlib.pyplot`` directly, and the backend is chosen before pyplot loads:

    from ecgnet.plotting import plt

Modules import this where they draw (reports, calibration, attributions, sweeps), so commands that draw
nothing (``predict``, ``--help``) never load matplotlib.
"""

from __future__ import annotations

import sys

import matplotlib
import numpy as np

_chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
if _chosen is None and "matplotlib.pyplot" not in sys.modules:  # nobody chose: files only, headless-safe
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "interval_bar", "roc_figure", "auc_figure"]


def interval_bar(e: dict, key: str = "auc"):
    """Matplotlib's ``yerr`` for an estimate ``e[key]`` with its interval ``low``/``high`` (None without one)."""
    return [[e[key] - e["low"]], [e["high"] - e[key]]] if e.get("low") is not None else None


def roc_figure(curves, title: str):
    """ROC curves, one per (label, labels, probabilities) of ``curves``, with the chance diagonal."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(6, 5.5))
    for label, y, p in curves:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.5, label=label)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="False positive rate (1 − specificity)", ylabel="True positive rate (sensitivity)",
           title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return fig


def auc_figure(series, classes: list[str], ylim: tuple[float, float] = (0.3, 1.0)):
    """Per-class AUC with its interval, side by side for each (label, {class: estimate}, colour) of ``series``
    (an estimate: ``auc``, ``low``, ``high``; a class without an AUC is left out), chance dashed."""
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(classes) + 2), 3.2))
    shifts = np.linspace(-0.12, 0.12, len(series)) if len(series) > 1 else [0.0]
    for (label, per_class, color), shift in zip(series, shifts):
        shown = False
        for i, c in enumerate(classes):
            e = per_class.get(c) or {}
            if e.get("auc") is None:
                continue
            ax.errorbar(i + shift, e["auc"], yerr=interval_bar(e), fmt="o", capsize=3, color=color,
                        label=None if shown else label)
            shown = True
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 8 else 0)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(ylim=ylim, ylabel="AUC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
