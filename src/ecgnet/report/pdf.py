"""Draw the clinical report: one A4 landscape PDF page — the 3×4 layout and a lead II rhythm strip at
25 mm/s and 10 mm/mV on a millimetre grid (:mod:`ecgnet.report.layout`), the patient fields the file
carries, ECGNet's probabilities with their thresholds and calls (and what makes a call: the run's thresholds
and where they were chosen, or a site profile's), the device's own statements, the per-lead quality flags,
the model's name and weights hash, and the over-read notice.

:func:`render` takes what was already computed (the record, predict's result, the run's identity); it
reads no files and runs no model, so a test can draw any signal and measure it on the page.
"""

from __future__ import annotations

import io
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ecgnet.data.quality import DESCRIPTIONS, summary
from ecgnet.data.records import LEADS, ECGRecord
from ecgnet.fileio import atomic_path
from ecgnet.report import layout as L
from ecgnet.report.fields import patient_lines

DISCLAIMER = "Computer-assisted interpretation — requires physician over-read"
MINOR_COLOR, MAJOR_COLOR, TRACE_COLOR, FLAG_COLOR = "#f6c9c9", "#e38b8b", "black", "#c00000"
PT = 1 / 72 * 25.4  # one typographic point in mm
MAX_CLASSES = 10  # classes listed (all positives first, then the most probable)


def render(record: ECGRecord, result: dict, model: dict, out: str | Path, signal: np.ndarray | None = None,
           rate: float | None = None) -> Path:
    """Write the report of ``record`` to ``out`` (atomically). ``result``: predict's result for it
    (:meth:`~ecgnet.inference.predictor.Predictor.predict_record`); ``model``: ``name`` and
    ``weights_sha256`` of the run (:func:`model_identity`); ``signal``/``rate``: what to draw (default: the
    record's signal; pass the signal at its source rate for the sharpest trace)."""
    fig = page(record, result, model, signal, rate)
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="pdf", metadata=_metadata(record))
    return out


def pdf_bytes(record: ECGRecord, result: dict, model: dict, signal: np.ndarray | None = None,
              rate: float | None = None) -> bytes:
    """The same page as :func:`render`, as PDF bytes (for the viewer)."""
    buffer = io.BytesIO()
    page(record, result, model, signal, rate).savefig(buffer, format="pdf", metadata=_metadata(record))
    return buffer.getvalue()


def model_identity(predictor) -> dict:
    """What the page shows of the model: the run's name and weights' SHA-256 (``run.json``) and what makes
    a call positive (the run's thresholds and where they were chosen, or a site profile's)."""
    return {"name": predictor.info.get("name"), "weights_sha256": predictor.info.get("weights_sha256"),
            "calls": predictor.calls_rule()}


def _metadata(record: ECGRecord) -> dict:
    return {"Title": f"ECG report: {Path(str(record.path)).name}", "Creator": "ECGNet", "Subject": DISCLAIMER}


def page(record: ECGRecord, result: dict, model: dict, signal: np.ndarray | None = None,
         rate: float | None = None) -> Figure:
    """The report's figure (see :func:`render`)."""
    signal = record.signal if signal is None else signal
    rate = record.sampling_rate if rate is None else rate
    w, h = L.PAGE_MM
    fig = Figure(figsize=(w / 25.4, h / 25.4))
    FigureCanvasPdf(fig)
    grid = fig.add_axes((L.GRID_X / w, L.GRID_Y / h, L.GRID_W / w, L.GRID_H / h))
    grid.set_xlim(0, L.GRID_W)
    grid.set_ylim(0, L.GRID_H)
    grid.set_axis_off()
    _grid(grid)
    _traces(grid, signal, rate, {q.lead: q.flags for q in (record.quality or []) if q.flags})
    text = fig.add_axes((0, 0, 1, 1))  # text, placed in page millimetres
    text.set_xlim(0, w)
    text.set_ylim(0, h)
    text.set_axis_off()
    text.patch.set_alpha(0)
    _header(text, record, result, model)
    _footer(text, rate)
    return fig


def _text(ax, x: float, y: float, text: str, **kwargs):
    """``ax.text`` drawing the text as written: a file's ``$…$`` is not TeX (its math parser failed on a statement
    ``ST $\\foo$``, a 500 from the viewer; a process-wide setting would race between the viewer's threads)."""
    return ax.text(x, y, text, parse_math=False, **kwargs)


def _grid(ax) -> None:
    """1 mm minor and 5 mm major lines over the whole grid."""
    minor, major = [], []
    for x in np.arange(0, L.GRID_W + 1e-9, L.MINOR_MM):
        (major if round(x) % L.MAJOR_MM == 0 else minor).append([(x, 0), (x, L.GRID_H)])
    for y in np.arange(0, L.GRID_H + 1e-9, L.MINOR_MM):
        (major if round(y) % L.MAJOR_MM == 0 else minor).append([(0, y), (L.GRID_W, y)])
    ax.add_collection(LineCollection(minor, colors=MINOR_COLOR, linewidths=0.25))
    ax.add_collection(LineCollection(major, colors=MAJOR_COLOR, linewidths=0.6))


def _traces(ax, signal: np.ndarray, rate: float, flags: dict[str, tuple]) -> None:
    lw = 0.7
    for row in range(L.ROWS):  # the calibration pulse at the start of every row
        b = L.row_baseline(row)
        x0, x1, top = L.PULSE_X, L.PULSE_X + L.PULSE_S * L.MM_PER_S, b + L.PULSE_MV * L.MM_PER_MV
        ax.plot([x0 - 2, x0, x0, x1, x1, x1 + 2], [b, b, top, top, b, b], color=TRACE_COLOR, lw=lw,
                solid_joinstyle="miter")
    for t in L.traces():
        i = LEADS.index(t.lead)
        a, z = int(round(t.start_s * rate)), int(round((t.start_s + t.seconds) * rate))
        piece = np.asarray(signal[i, a:z], dtype=np.float64)
        label_y = t.baseline_mm + 0.36 * L.ROW_MM
        name = L.display_name(t.lead)
        if piece.size:
            x = t.x_mm + np.arange(piece.size) / rate * L.MM_PER_S
            y = t.baseline_mm + (piece - np.median(piece)) * L.MM_PER_MV  # centred on its own baseline
            ax.plot(x, y, color=TRACE_COLOR, lw=lw, solid_joinstyle="round")
        if t.x_mm > L.CALIBRATION_MM and t.seconds < L.SECONDS_SHOWN:  # a bar where the columns meet
            ax.plot([t.x_mm, t.x_mm], [t.baseline_mm - 2.5, t.baseline_mm + 2.5], color=TRACE_COLOR, lw=lw)
        lead_flags = flags.get(t.lead, ())
        _text(ax, t.x_mm + 1.2, label_y, name, fontsize=8, fontweight="bold", va="bottom",
              color=FLAG_COLOR if lead_flags else TRACE_COLOR)
        if lead_flags:
            _text(ax, t.x_mm + 1.2 + (len(name) + 1) * 1.9, label_y, " · ".join(DESCRIPTIONS[f] for f in lead_flags),
                  fontsize=6, color=FLAG_COLOR, va="bottom")
        if t.seconds == L.SECONDS_SHOWN:
            _text(ax, t.x_mm + 1.2, label_y - 4.2, "rhythm", fontsize=6, va="bottom")


def _lines(ax, x: float, y: float, title: str, lines: list[str], width: int, size: float = 6.5,
           most: int = 12, color: str = "black") -> float:
    """A titled block of text lines (wrapped at ``width`` characters, at most ``most`` printed lines, then
    "…") from (x, y) down; returns the y below it."""
    _text(ax, x, y, title, fontsize=7.5, fontweight="bold", va="top")
    y -= 4.2
    step = size * PT * 1.3
    shown = 0
    for line in lines:
        for part in textwrap.wrap(line, width) or [""]:
            if shown == most:
                _text(ax, x, y, "…", fontsize=size, va="top")
                return y - step
            _text(ax, x, y, part, fontsize=size, va="top", color=color)
            y -= step
            shown += 1
    return y - 1.5


def _header(ax, record: ECGRecord, result: dict, model: dict) -> None:
    top = L.PAGE_MM[1] - 8
    _text(ax, L.GRID_X, top, "12-lead ECG", fontsize=13, fontweight="bold", va="top")
    _text(ax, L.GRID_X + 33, top - 0.8, "with ECGNet's computer-assisted interpretation", fontsize=8, va="top")
    y = top - 9
    lines = patient_lines(record)
    age_sex = ", ".join(x for x in (None if record.age is None else f"{record.age:g} years", record.sex) if x)
    if age_sex:
        lines.append(f"Age, sex: {age_sex}")
    if not lines:
        lines.append("No patient fields in the file")
    name = Path(str(record.path)).name
    lines.append(f"Record: {name}")
    lines.append(f"Format: {record.format}, {record.source_rate:g} Hz, {record.seconds:.1f} s"
                 + (f" (first {L.SECONDS_SHOWN:g} s shown)" if record.seconds > L.SECONDS_SHOWN + 1e-6 else ""))
    if record.derived_leads:
        lines.append(f"Derived (not recorded): {', '.join(L.display_name(d) for d in record.derived_leads)}")
    used = result.get("metadata") or {}
    if used:  # what a metadata model was given (the file's fields, or what the user passed)
        lines.append("Model's metadata: " + ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                                      for k, v in used.items()))
    _lines(ax, L.GRID_X, y, "Patient and recording", lines, width=56, most=12)

    x_mid = 104
    sha = model.get("weights_sha256") or "unknown"
    diagnoses = result.get("diagnoses", [])
    # where the thresholds come from (the run's, and on which records; or a site profile's): 1–2 lines, each
    # taking a class row's room, so the block never reaches the grid
    calls = textwrap.wrap(f"Positive: {model['calls']}", 90)[:2] if model.get("calls") else []
    shown = sorted(diagnoses, key=lambda d: (not d.get("positive"), -d["probability"]))[:MAX_CLASSES - len(calls)]
    _text(ax, x_mid, y, f"ECGNet: {model.get('name', '?')}", fontsize=7.5, fontweight="bold", va="top")
    _text(ax, x_mid, y - 3.6, f"weights sha256 {sha[:16]}…", fontsize=5.5, va="top", family="DejaVu Sans Mono")
    ty = y - 8
    for part in calls:
        _text(ax, x_mid, ty + 1.4, part, fontsize=5.5, va="top")
        ty -= 2.6
    ty -= 1.0 if calls else 0.0
    cols = (x_mid, x_mid + 46, x_mid + 62, x_mid + 78)
    for x, head in zip(cols, ("class", "probability", "threshold", "call")):
        _text(ax, x, ty, head, fontsize=6, fontweight="bold", va="top", color="#444444")
    ty -= 3.4
    for d in shown:
        positive = d.get("positive")
        call = "—" if positive is None else ("POSITIVE" if positive else "negative")
        weight = "bold" if positive else "normal"
        desc = (d.get("description") or "")[:30]
        _text(ax, cols[0], ty, f"{d['class']}" + (f"  {desc}" if desc else ""), fontsize=6.3, va="top",
              fontweight=weight)
        _text(ax, cols[1] + 12, ty, f"{d['probability']:.2f}", fontsize=6.3, va="top", ha="right", fontweight=weight)
        thr = d.get("threshold")
        _text(ax, cols[2] + 11, ty, "—" if thr is None else f"{thr:.2f}", fontsize=6.3, va="top", ha="right")
        _text(ax, cols[3], ty, call, fontsize=6.3, va="top", fontweight=weight,
              color=FLAG_COLOR if positive else "black")
        ty -= 3.2
    if len(diagnoses) > len(shown):
        _text(ax, cols[0], ty, f"(+{len(diagnoses) - len(shown)} classes below their thresholds not listed)",
              fontsize=5.5, va="top")
        ty -= 3.2
    positives = result.get("positives", [])
    verdict = ("Positive: " + ", ".join(positives)) if positives else (
        "No positive call" if any(d.get("positive") is not None for d in diagnoses) else "No calls (see warnings)")
    _text(ax, x_mid, ty - 0.6, verdict, fontsize=7, fontweight="bold", va="top")

    x_right = 200
    statements = list(record.statements or []) or ["none in the file"]
    yr = _lines(ax, x_right, y, "Device statements (not an ECGNet input)", statements, width=60, most=6)
    flagged = summary(record.quality or [], L.display_name)
    yr = _lines(ax, x_right, yr, "Signal quality per lead", flagged or ["no lead flagged"], width=60, most=4,
                color=FLAG_COLOR if flagged else "black")
    warnings = result.get("warnings", [])  # routine notes ("resampled: …") are kept apart, not printed
    if warnings:
        _lines(ax, x_right, yr, "Warnings", warnings, width=60, most=5, color=FLAG_COLOR)


def _footer(ax, rate: float) -> None:
    y = 9.0
    _text(ax, L.GRID_X, y, f"{L.MM_PER_S:g} mm/s   {L.MM_PER_MV:g} mm/mV   grid {L.MINOR_MM:g} mm / {L.MAJOR_MM:g} mm"
          f"   trace {rate:g} Hz, unfiltered, each lead centred on its median", fontsize=6, va="center")
    _text(ax, L.PAGE_MM[0] / 2, 4.8, DISCLAIMER, fontsize=9, fontweight="bold", va="center", ha="center")
    from ecgnet import __version__

    printed = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    _text(ax, L.GRID_X + L.GRID_W, y, f"ECGNet {__version__} · {printed}", fontsize=6, va="center", ha="right")
    _text(ax, L.GRID_X + L.GRID_W, 4.8, "print at 100 % (no fit-to-page) for true millimetres", fontsize=5.5,
          va="center", ha="right", color="#555555")
