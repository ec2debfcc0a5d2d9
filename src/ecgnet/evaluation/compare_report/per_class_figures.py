"""The per-class figures: a runs × classes AUC heatmap, or for many classes AUC against class frequency."""

from __future__ import annotations

import numpy as np

from ecgnet.evaluation.compare_report.common import _auc, _name, _numbered
from ecgnet.evaluation.compare_report.labels import _place_labels
from ecgnet.plotting import plt


def _per_class_figure(classes, result):
    """Runs × classes heatmap: each cell the fold-10 AUC, coloured by its difference from the baseline's."""
    runs = result["runs"]
    base = next(r for r in runs if r["name"] == result["baseline"])
    cols = [*classes, "macro"]
    value = lambda r, c: _auc(r) if c == "macro" else r["accuracy"]["per_class"][c]["auc"]  # noqa: E731
    auc = np.array([[value(r, c) for c in cols] for r in runs])
    diff = auc - np.array([value(base, c) for c in cols])
    lim = 0.02
    fig, ax = plt.subplots(figsize=(0.85 * len(cols) + 4.2, 0.3 * len(runs) + 1.5))
    image = ax.imshow(np.clip(diff, -lim, lim), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(len(runs)):
        for j in range(len(cols)):
            ax.text(j, i, f"{auc[i, j]:.3f}", ha="center", va="center", fontsize=7.5,
                    color="white" if abs(diff[i, j]) > 0.75 * lim else "black",
                    fontweight="bold" if runs[i]["name"] == result["baseline"] else "normal")
    n_pos = {c: runs[0]["accuracy"]["per_class"][c].get("n_positive") for c in classes}
    ax.set_xticks(range(len(cols)), [f"{c}\n(n+ {n_pos[c]})" if n_pos.get(c) else c for c in cols], fontsize=8)
    ax.set_yticks(range(len(runs)), [f"{i}  {_name(r, result)}" for i, r in _numbered(result)], fontsize=8)
    ax.axvline(len(classes) - 0.5, color="white", lw=3)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    fig.colorbar(image, ax=ax, label=f"AUC − {result['baseline']}'s (clipped at ±{lim})", fraction=0.04, pad=0.02)
    ax.set_title("Per-class AUC, fold 10 (colour: difference from the baseline; bold: the baseline)", fontsize=10,
                 pad=28)
    fig.tight_layout()
    return fig


def _auc_vs_prevalence_figure(classes, result):
    """For many classes: (left) each run's per-class AUC against the class's number of fold-10 positives;
    (right) the best run's per-class AUC minus the baseline's, the largest changes named."""
    runs = result["runs"]
    by = {r["name"]: r for r in runs}
    best, base = by.get(result["best"] or ""), by[result["baseline"]]
    two = best is not None and best is not base
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(12 if two else 7.5, 4.6), squeeze=False)
    ax = axes[0, 0]
    markers = "osD^vPX<>"
    for k, r in enumerate(runs):
        pc = r["accuracy"]["per_class"]
        ax.scatter([pc[c]["n_positive"] for c in classes], [pc[c]["auc"] for c in classes], s=16, alpha=0.75,
                   marker=markers[k % len(markers)], label=f"{r['name']} (macro {_auc(r):.3f})")
    ax.set_xscale("log")
    ax.set(xlabel="positives in fold 10 (log scale)", ylabel="AUC",
           title=f"Per-class AUC vs class frequency ({len(classes)} classes)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    if two:
        z = axes[0, 1]
        n = np.array([base["accuracy"]["per_class"][c]["n_positive"] for c in classes], dtype=float)
        d = np.array([best["accuracy"]["per_class"][c]["auc"] - base["accuracy"]["per_class"][c]["auc"]
                      for c in classes])
        ok = np.isfinite(d)
        z.axhline(0, color="0.5", lw=0.8)
        # the axis fits the classes with at least 10 positives; noisier ones beyond it sit on the edge (▲ ▼)
        steady = ok & (n >= 10)
        lim = 1.15 * float(np.abs(d[steady if steady.any() else ok]).max()) if ok.any() else 0.1
        shown = np.clip(d, -lim * 0.985, lim * 0.985)
        beyond = ok & (np.abs(d) > lim * 0.985)
        colour = np.where(d > 0, "#4c72b0", "#c44e52")
        z.scatter(n[ok & ~beyond], shown[ok & ~beyond], s=18, color=colour[ok & ~beyond])
        for k in np.flatnonzero(beyond):
            z.scatter(n[k], shown[k], s=30, marker="^" if d[k] > 0 else "v", color=colour[k], edgecolors="black",
                      linewidths=0.5, clip_on=False, zorder=4)
        z.set_xscale("log")
        z.set(xlabel="positives in fold 10 (log scale)", ylabel=f"AUC − {base['name']}'s",
              title=f"{best['name']} vs {base['name']}: higher for {int((d[ok] > 0).sum())} of {int(ok.sum())} classes")
        z.set_ylim(-lim, lim)
        if beyond.any():
            z.text(0.99, 0.01, f"▲▼ {int(beyond.sum())} classes beyond the axis (fewer than 10 positives; up to "
                   f"{float(np.abs(d[beyond]).max()):+.2f})", transform=z.transAxes, fontsize=7, color="0.4",
                   ha="right", va="bottom")
        z.set_xlim(n[ok].min() / 1.5, n[ok].max() * 1.5)
        big = np.flatnonzero(ok & (n >= 20))
        named = sorted(big, key=lambda k: -d[k])[:4] + sorted(big, key=lambda k: d[k])[:2]
        named = list(dict.fromkeys(named))
        fig.tight_layout()
        _place_labels(z, [(n[k], d[k]) for k in named], [classes[k] for k in named], fontsize=8)
        z.set_xlabel("positives in fold 10 (log scale); named: the largest changes among classes with ≥ 20 positives",
                     fontsize=9)
        return fig
    fig.tight_layout()
    return fig
