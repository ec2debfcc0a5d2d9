"""The ROC figure: which runs it draws, and their curves per class."""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from sklearn.metrics import roc_curve

from ecgnet.evaluation.compare_report.common import _auc, _family, _numbered
from ecgnet.plotting import plt


def _roc_runs(result: dict) -> list[str]:
    """The runs drawn in the ROC figure: the baseline, the best run, and per other modality and per fusion
    family the run the selection rule would pick (highest fold-9 macro AUC) — a handful of distinct curves."""
    runs = [r for r in result["runs"] if r["accuracy"]["val_macro_auc"] is not None]
    groups: dict[str, dict] = {}
    for r in runs:
        key = (r["modalities"][0] if len(r.get("modalities") or []) == 1 and _family(r) == "single modality"
               else _family(r))
        if key not in groups or r["accuracy"]["val_macro_auc"] > groups[key]["accuracy"]["val_macro_auc"]:
            groups[key] = r
    chosen = {result["baseline"], result["best"], *(r["name"] for r in groups.values())} - {None}
    return [r["name"] for r in result["runs"] if r["name"] in chosen]


def _roc_figure(y, probs: dict, classes, result):
    n = len(classes)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.7 * rows + 0.6), squeeze=False)
    number = {r["name"]: i for i, r in _numbered(result)}
    auc = {r["name"]: r for r in result["runs"]}
    colours = plt.get_cmap("tab10").colors
    for k, c in enumerate(classes):
        ax = axes.flat[k]
        for j, (name, p) in enumerate(probs.items()):
            fpr, tpr, _ = roc_curve(y[:, k], p[:, k])
            ax.plot(fpr, tpr, lw=2.2 if name == result["best"] else 1.2, color=colours[j % 10],
                    ls="-" if name in (result["best"], result["baseline"]) else (0, (4, 1.5)))
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
        ax.set(title=f"{c} (n+ = {int(y[:, k].sum())})", xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate",
               ylabel="true positive rate")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], color=colours[j % 10], lw=2.2 if name == result["best"] else 1.2,
                      ls="-" if name in (result["best"], result["baseline"]) else (0, (4, 1.5)))
               for j, name in enumerate(probs)]
    labels = [f"{number[name]}  {name}{' ★' if name == result['best'] else ''} — macro AUC {_auc(auc[name]):.3f}"
              + (" (baseline)" if name == result["baseline"] else "") for name in probs]
    fig.tight_layout(rect=(0, 0.1 if n % cols == 0 else 0, 1, 0.95))
    if n % cols:  # the key in the empty panel
        axes.flat[-1].legend(handles, labels, loc="center", fontsize=8.5, frameon=False,
                             title="runs (best of each family by fold 9)", title_fontsize=8.5)
    else:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    fig.suptitle("ROC curves per class, fold 10")
    return fig
