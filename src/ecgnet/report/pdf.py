"""Draw the clinical report: one A4 landscape PDF page — the 3×4 layout and a lead II rhythm strip at
25 mm/s and 10 mm/mV on a millimetre grid (:mod:`ecgnet.report.layout`), the patient fields the file
carries, ECGNet's probabilities with their thresholds and calls (and what makes a call: the run's thresholds
and where they were chosen, or a site profile's), the device's own statements, the per-lead quality flags,
the model's name and weights hash, and the over-read notice.

:func:`render` takes what was already computed (the record, predict's result, the run's identity); it
reads no files and runs no model, so a test can draw any signal and measure it on the page.
"""

from __future__ import annotations

import functools
import io
import textwrap
import warnings
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

# matplotlib's "Glyph … missing from font(s)" on stderr: the page itself says which characters (undrawable)
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
DISCLAIMER = "Computer-assisted interpretation — requires physician over-read"
MINOR_COLOR, MAJOR_COLOR, TRACE_COLOR, FLAG_COLOR = "#f6c9c9", "#e38b8b", "black", "#c00000"
PT = 1 / 72 * 25.4  # one typographic point in mm
MAX_CLASSES = 10  # classes listed (all positives first, then the most probable)
# drawn where DejaVu Sans has no glyph (Chinese, Japanese, Korean names), those of them that are installed
FALLBACK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
                  "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "Noto Sans")


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
    ``ST $\\foo$``, a 500 from the viewer; a process-wide setting would race between the viewer's threads);
    in DejaVu Sans, falling back glyph by glyph on the installed fonts of :data:`FALLBACK_FONTS`."""
    kwargs.setdefault("family", _families())
    return ax.text(x, y, text, parse_math=False, **kwargs)


@functools.cache
def _families() -> tuple[str, ...]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(f for f in FALLBACK_FONTS if f in installed))


@functools.cache
def _glyph_sets() -> tuple:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return tuple(set(FT2Font(font_manager.findfont(f, fallback_to_default=False)).get_charmap())
                 for f in _families())


def undrawable(texts) -> list[str]:
    """The characters of ``texts`` that no font of the page can draw (they would print as empty boxes)."""
    chars = dict.fromkeys(c for t in texts for c in str(t) if c.isprintable() and not c.isspace())
    return [c for c in chars if not any(ord(c) in glyphs for glyphs in _glyph_sets())]


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
    """The calibration pulses and the leads. A wave taller than its row's room runs into the next row, as on
    paper, rather than being cut flat at the grid's edge (an R wave's height is read from the page)."""
    lw = 0.7
    for row in range(L.ROWS):  # the calibration pulse at the start of every row
        b = L.row_baseline(row)
        x0, x1, top = L.PULSE_X, L.PULSE_X + L.PULSE_S * L.MM_PER_S, b + L.PULSE_MV * L.MM_PER_MV
        ax.plot([x0 - 2, x0, x0, x1, x1, x1 + 2], [b, b, top, top, b, b], color=TRACE_COLOR, lw=lw,
                solid_joinstyle="miter")
    for t in L.traces(signal.shape[-1] / rate):
        i = LEADS.index(t.lead)
        a, z = int(round(t.start_s * rate)), int(round((t.start_s + t.seconds) * rate))
        piece = np.asarray(signal[i, a:z], dtype=np.float64)
        label_y = t.baseline_mm + 0.36 * L.ROW_MM
        name = L.display_name(t.lead)
        if piece.size:
            x = t.x_mm + np.arange(piece.size) / rate * L.MM_PER_S
            y = t.baseline_mm + (piece - np.median(piece)) * L.MM_PER_MV  # centred on its own baseline
            ax.plot(x, y, color=TRACE_COLOR, lw=lw, solid_joinstyle="round", clip_on=False)
        if t.x_mm > L.CALIBRATION_MM and not t.rhythm:  # a bar where the columns meet
            ax.plot([t.x_mm, t.x_mm], [t.baseline_mm - 2.5, t.baseline_mm + 2.5], color=TRACE_COLOR, lw=lw)
        lead_flags = flags.get(t.lead, ())
        _text(ax, t.x_mm + 1.2, label_y, name, fontsize=8, fontweight="bold", va="bottom",
              color=FLAG_COLOR if lead_flags else TRACE_COLOR)
        if lead_flags:
            _text(ax, t.x_mm + 1.2 + (len(name) + 1) * 1.9, label_y, " · ".join(DESCRIPTIONS[f] for f in lead_flags),
                  fontsize=6, color=FLAG_COLOR, va="bottom")
        if t.rhythm:
            _text(ax, t.x_mm + 1.2, label_y - 4.2, "rhythm", fontsize=6, va="bottom")


def _lines(ax, x: float, y: float, title: str, lines: list[str], width: int, size: float = 6.5,
           most: int = 12, color: str = "black", bottom: float = 0.0) -> float:
    """A titled block of text lines from (x, y) down, wrapped at ``width`` characters; at most ``most``
    printed lines and none below ``bottom`` — what does not fit is counted on a last line ("… 3 more lines
    not shown"). Returns the y below the block."""
    _text(ax, x, y, title, fontsize=7.5, fontweight="bold", va="top")
    y -= 4.2
    step = size * PT * 1.3
    parts = [part for line in lines for part in (textwrap.wrap(line, width) or [""])]
    room = min(most, max(1, int((y - bottom) / step)))
    if len(parts) > room:
        parts = parts[:room - 1] + [f"… {len(parts) - room + 1} more lines not shown"]
    for part in parts:
        _text(ax, x, y, part, fontsize=size, va="top", color=color)
        y -= step
    return y - 1.5


def _named(positives: list[str], width: int, most: int) -> list[str]:
    """"Positive: A, B, …" in lines of ``width`` characters, at most ``most`` of them; when they cannot hold
    every class, the last line ends with how many more there are."""
    lines, current, counts = [], "Positive:", []
    for i, name in enumerate(positives):
        piece = f" {name}" + ("," if i < len(positives) - 1 else "")
        if len(current) + len(piece) > width:
            lines.append(current)
            current = piece.strip()
            counts.append(i)
        else:
            current += piece
    lines.append(current)
    counts.append(len(positives))
    if len(lines) <= most:
        return lines
    keep = lines[:most]
    named = counts[most - 1]  # the classes on the kept lines
    while len(keep[-1]) + 12 > width and " " in keep[-1]:  # room for the count
        keep[-1] = keep[-1].rsplit(" ", 1)[0]
        named -= 1
    return keep[:-1] + [f"{keep[-1].rstrip(',')} … +{len(positives) - named} more"]


def _figure(value: float, other: float | None) -> str:
    """A probability as the page prints it: 3 decimals, more when it would otherwise read as equal to the
    threshold it is compared with (0.2431 against 0.2432 is not "0.243 0.243 negative")."""
    digits = 3
    while other is not None and value != other and round(value, digits) == round(other, digits) and digits < 6:
        digits += 1
    return f"{value:.{digits}f}"


def _header(ax, record: ECGRecord, result: dict, model: dict) -> None:
    top = L.PAGE_MM[1] - 8
    floor = L.GRID_Y + L.GRID_H + 1.5  # no text reaches the grid
    _text(ax, L.GRID_X, top, "12-lead ECG", fontsize=13, fontweight="bold", va="top")
    _text(ax, L.GRID_X + 33, top - 0.8, "with ECGNet's computer-assisted interpretation", fontsize=8, va="top")
    y = top - 9
    _lines(ax, L.GRID_X, y, "Patient and recording", _recording_lines(record, result), width=56, most=15,
           bottom=floor)
    _calls(ax, 104, y, floor, result, model)

    x_right = 200  # what may make the result wrong first: it must not be the part that does not fit
    warnings = result.get("warnings", [])  # routine notes ("resampled: …") are kept apart, not printed
    if warnings:
        y = _lines(ax, x_right, y, "Warnings", warnings, width=60, most=8, color=FLAG_COLOR, bottom=floor + 9)
    flagged = summary(record.quality or [], L.display_name)
    y = _lines(ax, x_right, y, "Signal quality per lead", flagged or ["no lead flagged"], width=60, most=4,
               color=FLAG_COLOR if flagged else "black", bottom=floor + 4.5)
    statements = list(record.statements or []) or ["none in the file"]
    _lines(ax, x_right, y, "Device statements (not an ECGNet input)", statements, width=60, most=6, bottom=floor)


def _recording_lines(record: ECGRecord, result: dict) -> list[str]:
    """The patient's fields (each cut to about two printed lines: a 200-character name must not push the
    recording off the page), then the recording and what of it the diagnosis covers."""
    lines = [textwrap.shorten(line, 2 * 56 - 6, placeholder=" …") for line in patient_lines(record)]
    age_sex = ", ".join(x for x in (None if record.age is None else f"{record.age:g} years", record.sex) if x)
    if age_sex:
        lines.append(f"Age, sex: {age_sex}")
    if not lines:
        lines.append("No patient fields in the file")
    lines.append(f"Record: {Path(str(record.path)).name}")
    seconds = record.seconds
    shown = (f" (first {L.SECONDS_SHOWN:g} s shown)" if seconds > L.SECONDS_SHOWN + 1e-6 else
             f" (each column {L.column_seconds(seconds):.2g} s)" if seconds < L.SECONDS_SHOWN - 1e-6 else "")
    lines.append(f"Format: {record.format}, {record.source_rate:g} Hz, {seconds:.1f} s{shown}")
    if result.get("coverage"):
        lines.append(f"Diagnosis from: {result['coverage']}")
    missing = undrawable([*patient_lines(record), *(record.statements or [])])
    if missing:  # said, not left as empty boxes
        lines.append(f"{len(missing)} character(s) not drawable with this machine's fonts (shown as boxes): "
                     + " ".join(f"U+{ord(c):04X}" for c in missing[:6]) + (" …" if len(missing) > 6 else "")
                     + "; install e.g. fonts-noto-cjk")
    if record.derived_leads:
        lines.append(f"Derived (not recorded): {', '.join(L.display_name(d) for d in record.derived_leads)}")
    used = result.get("metadata") or {}
    if used:  # what a metadata model was given (the file's fields, or what the user passed)
        lines.append("Model's metadata: " + ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                                      for k, v in used.items()))
    return lines


def _calls(ax, x: float, y: float, floor: float, result: dict, model: dict) -> None:
    """The model, what makes a call, the most telling classes and the verdict naming every positive call —
    fitted above ``floor``: the verdict first, then as many class rows as the room leaves (at most
    :data:`MAX_CLASSES`)."""
    sha = model.get("weights_sha256") or "unknown"
    diagnoses = result.get("diagnoses", [])
    positives = result.get("positives", [])
    # where the thresholds come from (the run's, and on which records; or a site profile's): 1–2 lines
    calls = textwrap.wrap(f"Positive: {model['calls']}", 90)[:2] if model.get("calls") else []
    if positives:
        verdict = _named(positives, 62, most=len(positives))
    elif any(d.get("positive") is not None for d in diagnoses):
        verdict = ["No positive call"]
    elif result.get("amplitude_trusted") is False:
        verdict = ["No calls: the amplitudes cannot be trusted (see warnings)"]
    elif diagnoses and all(d.get("threshold") is None for d in diagnoses):
        verdict = ["No calls: the run has no thresholds"]
    else:
        verdict = ["No calls (see warnings)"]
    row, verdict_step = 3.2, 3.0
    room = y - floor - 8 - (2.6 * len(calls) + (1.0 if calls else 0.0)) - 3.4 - row - 0.6
    fits = max(1, int((room - 3 * row) / verdict_step))  # at least three class rows stay
    verdict = _named(positives, 62, fits) if positives else verdict[:fits]
    n_rows = max(0, min(MAX_CLASSES - len(calls), int((room - verdict_step * len(verdict)) / row)))
    shown = sorted(diagnoses, key=lambda d: (not d.get("positive"), -d["probability"]))[:n_rows]

    _text(ax, x, y, f"ECGNet: {model.get('name', '?')}", fontsize=7.5, fontweight="bold", va="top")
    _text(ax, x, y - 3.6, f"weights sha256 {sha[:16]}…", fontsize=5.5, va="top", family="DejaVu Sans Mono")
    ty = y - 8
    for part in calls:
        _text(ax, x, ty + 1.4, part, fontsize=5.5, va="top")
        ty -= 2.6
    ty -= 1.0 if calls else 0.0
    cols = (x, x + 46, x + 62, x + 78)
    for cx, head in zip(cols, ("class", "probability", "threshold", "call")):
        _text(ax, cx, ty, head, fontsize=6, fontweight="bold", va="top", color="#444444")
    ty -= 3.4
    for d in shown:
        positive, thr = d.get("positive"), d.get("threshold")
        call = "—" if positive is None else ("POSITIVE" if positive else "negative")
        weight = "bold" if positive else "normal"
        desc = (d.get("description") or "")[:30]  # a class without one ("", as predict gives it): its name alone
        _text(ax, cols[0], ty, f"{d['class']}" + (f"  {desc}" if desc else ""), fontsize=6.3, va="top",
              fontweight=weight)
        _text(ax, cols[1] + 12, ty, _figure(d["probability"], thr), fontsize=6.3, va="top", ha="right",
              fontweight=weight)
        _text(ax, cols[2] + 11, ty, "—" if thr is None else _figure(thr, d["probability"]), fontsize=6.3, va="top",
              ha="right")
        _text(ax, cols[3], ty, call, fontsize=6.3, va="top", fontweight=weight,
              color=FLAG_COLOR if positive else "black")
        ty -= row
    hidden = diagnoses and len(diagnoses) - len(shown)
    if hidden:
        hidden_positive = sum(1 for d in diagnoses if d.get("positive")) - sum(1 for d in shown if d.get("positive"))
        note = (f"(+{hidden} classes not listed: {hidden_positive} positive, named below; "
                f"{hidden - hidden_positive} below their thresholds)" if hidden_positive else
                f"(+{hidden} classes below their thresholds not listed)" if any(d.get("positive") is not None
                                                                               for d in diagnoses) else
                f"(+{hidden} classes not listed)")
        _text(ax, cols[0], ty, note, fontsize=5.5, va="top")
        ty -= row
    ty -= 0.6
    for part in verdict:
        _text(ax, x, ty, part, fontsize=7, fontweight="bold", va="top")
        ty -= verdict_step


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
