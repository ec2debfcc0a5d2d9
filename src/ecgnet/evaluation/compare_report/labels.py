"""Point labels that neither overlap each other nor cover markers, for the scatter figures."""

from __future__ import annotations

import math

import numpy as np


def _place_labels(ax, points, labels, obstacles=(), fontsize=8.0, color="black"):
    """Write ``labels`` next to ``points`` (data coordinates) so that no two labels overlap, no label
    covers a marker or an obstacle box (display points) and all stay inside the axes: for each label the
    first free spot on rings of growing radius around its point (right first), with a leader line when
    it had to move away. The axes' limits and size must be final."""
    fig = ax.figure
    scale = 72.0 / fig.dpi
    to_pt = lambda xy: ax.transData.transform(xy) * scale  # noqa: E731
    pts = np.array([to_pt(p) for p in points]) if len(points) else np.zeros((0, 2))
    x0, y0, x1, y1 = (np.array(ax.get_window_extent().extents) * scale).tolist()
    marker, pad = 4.0, 1.0
    boxes = [tuple(b) for b in obstacles]
    angles = np.deg2rad([0, 30, -30, 60, -60, 90, -90, 180, 150, -150, 120, -120])
    crowd = [int(((pts - p) ** 2).sum(1).__lt__(30.0 ** 2).sum()) for p in pts]

    def hits(box):
        bx0, by0, bx1, by1 = box
        n = sum(1 for (ox0, oy0, ox1, oy1) in boxes if bx0 < ox1 + pad and bx1 > ox0 - pad and by0 < oy1 + pad
                and by1 > oy0 - pad)
        n += int(((pts[:, 0] > bx0 - marker) & (pts[:, 0] < bx1 + marker) & (pts[:, 1] > by0 - marker)
                  & (pts[:, 1] < by1 + marker)).sum())
        return n + (0 if bx0 >= x0 + 2 and bx1 <= x1 - 2 and by0 >= y0 + 2 and by1 <= y1 - 2 else 100)

    for k in sorted(range(len(pts)), key=lambda k: -crowd[k]):
        p, text = pts[k], labels[k]
        w, h = 0.62 * fontsize * len(text) + 2, 1.15 * fontsize
        best = None
        for radius in (6, 11, 17, 24, 32, 41, 51, 62):
            for a in angles:
                d = np.array([math.cos(a), math.sin(a)])
                c = p + d * radius + d * np.array([w / 2, h / 2])
                box = (c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2)
                score = hits(box)
                if best is None or score < best[0]:
                    best = (score, c, box, radius)
                if score == 0:
                    break
            if best[0] == 0:
                break
        _, c, box, radius = best
        boxes.append(box)
        ax.annotate(text, xy=points[k], xytext=tuple(c - p), textcoords="offset points", ha="center", va="center",
                    fontsize=fontsize, color=color, zorder=5,
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3) if radius > 6 else None)
