"""The accuracy-vs-complexity figure: fold-10 macro AUC against MACs per ECG, one numbered marker per run."""

from __future__ import annotations

from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ecgnet.evaluation.compare_report.common import _auc, _family, _numbered
from ecgnet.evaluation.compare_report.labels import _place_labels
from ecgnet.plotting import plt

FAMILY_STYLE = {  # colour and marker of each strategy family in the figures
    "single modality": ("#4c72b0", "o"), "early": ("#dd8452", "s"),
    "intermediate": ("#55a868", "D"), "late": ("#c44e52", "^")}


def _low_outliers(values: dict, squash: float = 3.0) -> set:
    """Keys of the values far below the others: the fewest lowest values (fewer than half) without which the
    remaining values span at least ``squash`` times less — e.g. a metadata-only AUC of 0.70 beside
    0.89–0.94, which drawn on the same axis squashes every other run into a line."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    top = items[-1][1] if items else 0.0
    for k in range((len(items) - 1) // 2):  # fewer than half of them
        rest = top - items[k + 1][1]
        if top - items[k][1] > squash * max(rest, 1e-12):
            return {key for key, _ in items[:k + 1]}
    return set()


def _style(run: dict, result: dict) -> dict:
    colour, marker = FAMILY_STYLE[_family(run)]
    best, base = run["name"] == result["best"], run["name"] == result["baseline"]
    return dict(color=colour, marker="*" if best else marker, markersize=13 if best else 6.5,
                markeredgecolor="black" if best or base else colour, markeredgewidth=1.2 if best or base else 0.5)


def _log_axis(ax, lo, hi, pad=1.6):
    ax.set_xscale("log")
    ax.set_xlim(lo / pad, hi * pad)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # labelled within a decade too
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tradeoff_figure(result):
    """Fold-10 macro AUC (90 % CI) against M MACs per ECG, one numbered marker per run (numbers of the runs
    table, key below). The y axis is zoomed to the runs that are not far below the rest; those are marked
    at the bottom edge with their value. When many runs crowd near the baseline, a second panel zooms in on
    them (no intervals there: they are in the first panel and the table)."""
    numbered = [(i, r) for i, r in _numbered(result) if r["complexity"].get("macs_per_ecg")]
    base = next(r for r in result["runs"] if r["name"] == result["baseline"])["accuracy"]["macro_auc"]
    outliers = _low_outliers({i: _auc(r) for i, r in numbered})
    shown = [(i, r) for i, r in numbered if i not in outliers]
    crowd = [(i, r) for i, r in shown if _auc(r) >= base["low"]]
    lows = [r["accuracy"]["macro_auc"]["low"] for _, r in shown] + [base["low"]]
    highs = [r["accuracy"]["macro_auc"]["high"] for _, r in shown] + [base["high"]]
    span = max(highs) - min(lows)
    ylim = (min(lows) - 0.08 * span, max(highs) + 0.05 * span)
    crowd_span = (max(_auc(r) for _, r in crowd) - min(_auc(r) for _, r in crowd)) if crowd else 0
    zoom = len(crowd) >= 5 and crowd_span < 0.25 * span
    crowd_ids = {i for i, _ in crowd}
    fig = plt.figure(figsize=(11.5 if zoom else 8.5, 5.0))
    axes = [fig.add_axes([0.07, 0.12, 0.42, 0.78])] if zoom else [fig.add_axes([0.1, 0.12, 0.86, 0.78])]
    if zoom:
        axes.append(fig.add_axes([0.56, 0.12, 0.42, 0.78]))
    ax = axes[0]
    macs = [r["complexity"]["macs_per_ecg"] / 1e6 for _, r in numbered]
    _log_axis(ax, min(macs), max(macs))
    ax.set_ylim(*ylim)
    ax.axhspan(base["low"], base["high"], color="0.85", zorder=0)
    ax.axhline(base["value"], color="0.5", lw=0.8, ls="--", zorder=0)
    obstacles, label_pts, label_txt = [], [], []
    scale = 72.0 / fig.dpi
    for i, r in shown:
        m, x = r["accuracy"]["macro_auc"], r["complexity"]["macs_per_ecg"] / 1e6
        st = _style(r, result)
        ax.errorbar(x, m["value"], yerr=[[m["value"] - m["low"]], [m["high"] - m["value"]]], capsize=2.5,
                    elinewidth=0.9, ecolor=st["color"], linestyle="none", zorder=2, **st)
        (bx, blo), (_, bhi) = ax.transData.transform([(x, m["low"]), (x, m["high"])]) * scale
        obstacles.append((bx - 3, blo, bx + 3, bhi))
        if not (zoom and i in crowd_ids):
            label_pts.append((x, m["value"]))
            label_txt.append(str(i))
    for j, (i, r) in enumerate(sorted(((i, r) for i, r in numbered if i in outliers), key=lambda ir: -_auc(ir[1]))):
        m, x = r["accuracy"]["macro_auc"], r["complexity"]["macs_per_ecg"] / 1e6
        st = _style(r, result)
        y = ylim[0] + 0.012 * (ylim[1] - ylim[0])
        ax.plot(x, y, marker="v", color=st["color"], markersize=9, markeredgecolor="black", clip_on=False, zorder=4)
        ax.annotate(f"{i} {r['name']}: {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]\nfar below the axis ↓",
                    (x, y), xytext=(8, 8 + 30 * j), textcoords="offset points", fontsize=8, va="bottom", ha="left",
                    bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.6", lw=0.6),
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6) if j else None)
        bx, by = ax.transData.transform((x, y)) * scale
        obstacles.append((bx, by, bx + 190, by + 36 + 30 * j))
    if zoom:
        cx = [r["complexity"]["macs_per_ecg"] / 1e6 for _, r in crowd]
        cy = [_auc(r) for _, r in crowd]
        ypad = max(0.15 * (max(cy) - min(cy)), 0.0004)
        zx, zy = (min(cx) / 1.12, max(cx) * 1.12), (min(cy) - ypad, max(cy) + ypad)
        ax.add_patch(Rectangle((zx[0], zy[0]), zx[1] - zx[0], zy[1] - zy[0], fill=False, ec="0.25", lw=0.9, ls=":",
                               zorder=3))
        (rx0, ry0), (rx1, ry1) = ax.transData.transform([(zx[0], zy[0]), (zx[1], zy[1])]) * scale
        obstacles.append((rx0, ry0, rx1, ry1))
        ax.annotate("zoomed →", (zx[1], zy[1]), xytext=(2, 4), textcoords="offset points", fontsize=8, color="0.25")
    ax.set(xlabel="M MACs per ECG (log scale)", ylabel="fold-10 macro AUC (90% CI)",
           title="All runs" + (" (y axis zoomed; far-below runs marked ▼ at the bottom edge)" if outliers else ""))
    ax.title.set_fontsize(9.5)
    _place_labels(ax, label_pts, label_txt, obstacles)
    if zoom:
        z = axes[1]
        _log_axis(z, zx[0], zx[1], pad=1.0)
        z.set_ylim(*zy)
        z.axhline(base["value"], color="0.5", lw=0.8, ls="--", zorder=0)
        z.text(0.99, 0.015, f"dashed: the baseline's {base['value']:.4f}", transform=z.transAxes, fontsize=7.5,
               color="0.35", va="bottom", ha="right")
        for i, r in crowd:
            z.plot(r["complexity"]["macs_per_ecg"] / 1e6, _auc(r), linestyle="none", zorder=3, **_style(r, result))
        ticks = []
        for x in sorted({round(x) for x in cx}):  # one tick per group of near-equal costs
            if not ticks or x > ticks[-1] * 1.06:
                ticks.append(x)
        z.set_xticks(ticks, [f"{t:g}" for t in ticks])
        z.tick_params(axis="x", labelsize=7.5)
        z.set(xlabel="M MACs per ECG (log scale)", ylabel="fold-10 macro AUC")
        z.set_title(f"Zoom: the {len(crowd)} runs within or above the baseline's interval (intervals: left, table)",
                    fontsize=9.5)
        _place_labels(z, [(r["complexity"]["macs_per_ecg"] / 1e6, _auc(r)) for _, r in crowd],
                      [str(i) for i, _ in crowd])
    handles = [Line2D([], [], linestyle="none", **{**_style(r, result), "markersize": 7 if r["name"] ==
                                                       result["best"] else 5.5}) for _, r in numbered]
    labels = [f"{i}  {r['name']}{' ★' if r['name'] == result['best'] else ''}"
              f"{' (baseline)' if r['name'] == result['baseline'] else ''}{' ▼' if i in outliers else ''}"
              for i, r in numbered]
    ncol = 3 if len(numbered) > 6 else len(numbered)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.015), ncol=ncol, fontsize=8.5,
               frameon=False, handletextpad=0.3, columnspacing=1.5)
    fams = [f for f in FAMILY_STYLE if any(_family(r) == f for _, r in numbered)]
    fig.legend([Line2D([], [], linestyle="none", color=FAMILY_STYLE[f][0], marker=FAMILY_STYLE[f][1]) for f in fams]
               + [Line2D([], [], linestyle="none", marker="*", color="0.6", markeredgecolor="black", markersize=10),
                  Rectangle((0, 0), 1, 1, color="0.85")],
               fams + ["best by fold 9", "baseline 90% CI (dashed: value)"], loc="lower center",
               bbox_to_anchor=(0.5, 0.93), ncol=len(fams) + 2, fontsize=8.5, frameon=False, handletextpad=0.3)
    fig.suptitle("Accuracy vs complexity, fold 10 (numbers: the runs table)", y=1.02)
    return fig
