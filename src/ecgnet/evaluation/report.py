"""A run's report: ``report.html`` (self-contained, plots embedded as base64 PNG) and ``report.md``
(same tables, plots in ``figures/`` and linked), plus a rich table for the terminal.

``metrics`` dicts are those returned by :func:`ecgnet.evaluation.metrics.evaluate`.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table
from sklearn.metrics import roc_curve

from ecgnet.evaluation.calibration import calibration_summary, reliability_figure
from ecgnet.fileio import atomic_path, write_text
from ecgnet.plotting import plt

_COLUMNS = [  # (header, per-class key, format)
    ("AUC", "auc", "{:.3f}"),
    ("Accuracy", "accuracy", "{:.3f}"),
    ("Bal. acc.", "balanced_accuracy", "{:.3f}"),
    ("Sensitivity", "sensitivity", "{:.3f}"),
    ("Specificity", "specificity", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("Threshold", "threshold", "{:.3f}"),
    ("n pos.", "n_positive", "{}"),
]


def _fmt(value, spec: str = "{:.3f}") -> str:
    return "–" if value is None else spec.format(value)


def _rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows (per class, then macro) shared by the HTML, Markdown and terminal tables."""
    per_class = metrics["per_class"]
    cols = [c for c in _COLUMNS if any(c[1] in v for v in per_class.values())]
    rows = [[name] + [_fmt(v.get(key), spec) for _, key, spec in cols] for name, v in per_class.items()]
    m = metrics["macro_auc"]
    macro = {
        "auc": f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]",
        "balanced_accuracy": _fmt(metrics.get("mean_balanced_accuracy")),
        "f1": _fmt(metrics.get("macro_f1")),
    }
    rows.append(["macro"] + [macro.get(key, "") for _, key, _ in cols])
    return ["Class"] + [c[0] for c in cols], rows


def _summary(metrics: dict) -> list[tuple[str, str]]:
    m, s = metrics["macro_auc"], metrics["single_label_accuracy"]
    out = [
        ("Records", str(metrics["n_records"])),
        (f"Macro AUC ({m['ci']:.0%} CI, {m['n_boot']} bootstrap resamples)",
         f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"),
    ]
    if "macro_f1" in metrics:
        out.append(("Macro F1", _fmt(metrics["macro_f1"], "{:.4f}")))
        out.append(("Mean balanced accuracy", _fmt(metrics.get("mean_balanced_accuracy"), "{:.4f}")))
    out.append((f"Single-label accuracy (n = {s['n']})", _fmt(s["value"], "{:.4f}")))
    return out


def format_table(metrics: dict, title: str | None = None) -> Table:
    """Terminal table: one row per class and a macro row whose AUC carries the bootstrap CI."""
    header, rows = _rows(metrics)
    ci = metrics["macro_auc"]["ci"]
    table = Table(title=title, caption=f"macro AUC with {ci:.0%} bootstrap interval")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for i, row in enumerate(rows):
        table.add_row(*row, end_section=(i == len(rows) - 2))
    return table


def _roc_figure(y_true, y_prob, classes, metrics: dict):
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for k, c in enumerate(classes):
        fpr, tpr, _ = roc_curve(y_true[:, k], y_prob[:, k])
        ax.plot(fpr, tpr, lw=1.5, label=f"{c} (AUC {metrics['per_class'][c]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="False positive rate (1 − specificity)", ylabel="True positive rate (sensitivity)",
           title="ROC curves, test fold", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _bar_figure(classes, metrics: dict):
    per_class = metrics["per_class"]
    series = [("AUC", "auc"), ("Balanced accuracy", "balanced_accuracy")]
    series = [s for s in series if all(per_class[c].get(s[1]) is not None for c in classes)]
    x, width = np.arange(len(classes)), 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(classes) + 2), 4))
    for i, (label, key) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [per_class[c][key] for c in classes], width, label=label)
    ax.set_xticks(x, classes, rotation=45 if len(classes) > 8 else 0, ha="right" if len(classes) > 8 else "center")
    ax.set(ylim=(0, 1), ylabel="score", title="Per-class scores, test fold")
    ax.axhline(0.5, ls="--", c="grey", lw=1)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _png(fig, path: Path) -> bytes:
    """Render to PNG bytes, save under ``figures/`` atomically, close the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return data


def _is_text(value) -> bool:
    return any(ch.isalpha() for ch in str(value))


def _html_table(header, rows) -> str:
    # a column of words (names, strategies, notes) is left-aligned like the first one; numbers stay right
    def words(j):
        cells = [str(r[j]) for r in rows if j < len(r) and str(r[j]).strip() not in ("", "–")]
        return 2 * sum(map(_is_text, cells)) > len(cells)

    left = [j == 0 or words(j) for j in range(len(header))]
    cls = lambda j: " class='l'" if j < len(left) and left[j] else ""  # noqa: E731
    head = "".join(f"<th{cls(j)}>{html.escape(h)}</th>" for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(j)}>{html.escape(str(v))}</td>" for j, v in enumerate(r)) + "</tr>"
                   for r in rows)
    # wrapped in its own scrolling box: a wide table scrolls sideways instead of running off the page
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _md_table(header, rows) -> str:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child,th.l,td.l{text-align:left}th{background:#f3f3f3}tbody tr:last-child{font-weight:600}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}img{max-width:100%;margin:1em 0}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}.grid{display:flex;flex-wrap:wrap;gap:0 2%}
.grid figure{flex:0 0 49%;margin:.5em 0}nav{margin:1em 0;line-height:1.7}"""


def write_run_report(run_dir: Path, y_true_test, y_prob_test, classes, metrics_test: dict,
                     metrics_val: dict | None, info: dict) -> Path:
    """Write ``report.html`` and ``report.md`` (+ ``figures/*.png``) into ``run_dir``; return the HTML path."""
    run_dir = Path(run_dir)
    y_true, y_prob = np.asarray(y_true_test).reshape(len(y_true_test), -1), np.asarray(y_prob_test, dtype=float)
    classes = [str(c) for c in classes]
    title = str(info.get("name", run_dir.name))
    figures = {
        "roc.png": ("ROC curves", _png(_roc_figure(y_true, y_prob, classes, metrics_test), run_dir / "figures" / "roc.png")),
        "per_class.png": ("Per-class AUC and balanced accuracy",
                          _png(_bar_figure(classes, metrics_test), run_dir / "figures" / "per_class.png")),
        "calibration.png": ("Reliability of the predicted probabilities (quantile bins)",
                            _png(reliability_figure(y_true, y_prob, classes), run_dir / "figures" / "calibration.png")),
    }
    info_rows = [[str(k), str(v)] for k, v in info.items()]
    sections = [("Run", ["Key", "Value"], info_rows, None)]
    notes = {"Test fold (10)": "Thresholds chosen on the validation fold (Youden's J), applied unchanged.",
             "Validation fold (9)": "Thresholds chosen on this fold (Youden's J); the test fold uses these."}
    for fold, m in (("Test fold (10)", metrics_test), ("Validation fold (9)", metrics_val)):
        if m is not None:
            sections.append((f"{fold}: summary", ["Metric", "Value"], [list(r) for r in _summary(m)], None))
            header, rows = _rows(m)
            sections.append((f"{fold}: per class", header, rows, notes[fold] if "macro_f1" in m else None))
    calibration = calibration_summary(y_true, y_prob, classes)
    sections.append(("Test fold (10): calibration", ["Class", "ECE", "Brier", "Prevalence", "Mean prediction"],
                     [[c, *(f"{v[k]:.3f}" for k in ("ece", "brier", "prevalence", "mean_prediction"))]
                      for c, v in calibration["per_class"].items()]
                     + [["macro", f"{calibration['macro_ece']:.3f}", f"{calibration['macro_brier']:.3f}", "", ""]],
                     "Expected calibration error over 10 equal-width bins (evaluation/calibration.py)."))

    return write_document(run_dir, "report", title, sections, figures)


@dataclass
class Section:
    """One part of a document: a heading, then paragraphs, bullets, a table (``header`` + ``rows``, with
    ``note`` above it) and figures (file names of the document's ``figures``, shown here), in that order.
    ``level``: 2 for a section, 3 for a subsection; ``grid``: figures two abreast in the HTML."""

    heading: str
    header: list[str] | None = None
    rows: list[list[str]] | None = None
    note: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    level: int = 2
    grid: bool = False


def _anchor(heading: str) -> str:
    """An id for a heading: 'Runs: accuracy and cost' → 'runs-accuracy-and-cost'."""
    words = "".join(ch if ch.isalnum() else " " for ch in heading.lower()).split()
    return "-".join(words)[:60].strip("-") or "section"


def _figure_html(caption: str, data: bytes) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_document(out_dir: Path, stem: str, title: str, sections, figures: dict, bullets: tuple | None = None,
                   css: str = "", footer: str = "", contents: bool = False) -> Path:
    """Write ``<stem>.html`` (self-contained: inline CSS, base64 PNGs) and ``<stem>.md`` (figures linked
    from ``figures/``) with the same content; return the HTML path.

    ``sections``: :class:`Section` objects or (heading, header, rows, note or None) tuples; every table
    sits in its own horizontally scrolling box. ``figures``: file name → (caption, PNG bytes); those
    that no section shows are listed at the end under "Figures". ``bullets``: optional (heading, lines)
    shown first. ``contents``: a line of links to the level-2 sections, after the bullets.
    """
    sections = [s if isinstance(s, Section) else Section(s[0], s[1], s[2], s[3]) for s in sections]
    placed = {f for s in sections for f in s.figures}
    rest = [f for f in figures if f not in placed]
    if rest:
        sections.append(Section("Figures", figures=rest))
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
         f"<style>{_CSS}{css}</style></head><body><h1>{html.escape(title)}</h1>"]
    md = [f"# {title}", ""]
    if bullets:
        heading, lines = bullets
        h += [f"<h2>{html.escape(heading)}</h2><ul>"] + [f"<li>{html.escape(x)}</li>" for x in lines] + ["</ul>"]
        md += [f"## {heading}", ""] + [f"- {x}" for x in lines] + [""]
    if contents:
        top = [s.heading for s in sections if s.level <= 2]
        h.append("<nav>Contents: " + " · ".join(f"<a href='#{_anchor(t)}'>{html.escape(t)}</a>" for t in top)
                 + "</nav>")
    for s in sections:
        tag = f"h{s.level}"
        h.append(f"<{tag} id='{_anchor(s.heading)}'>{html.escape(s.heading)}</{tag}>")
        md += ["#" * s.level + f" {s.heading}", ""]
        for p in s.paragraphs:
            h.append(f"<p>{html.escape(p)}</p>")
            md += [p, ""]
        if s.bullets:
            h.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in s.bullets) + "</ul>")
            md += [f"- {x}" for x in s.bullets] + [""]
        if s.header is not None:
            if s.note:
                h.append(f"<p>{html.escape(s.note)}</p>")
                md += [s.note, ""]
            h.append(_html_table(s.header, s.rows or []))
            md += [_md_table(s.header, s.rows or []), ""]
        elif s.note:
            h.append(f"<p>{html.escape(s.note)}</p>")
            md += [s.note, ""]
        shown = [f for f in s.figures if f in figures]
        if shown:
            h.append(("<div class='grid'>" if s.grid else "")
                     + "".join(_figure_html(*figures[f]) for f in shown) + ("</div>" if s.grid else ""))
            for f in shown:
                caption = figures[f][0]
                md += [f"![{caption}](figures/{f})", "", f"*{caption}*", ""]
    if footer:
        h.append(f"<p><small>{html.escape(footer)}</small></p>")
        md += [footer, ""]
    h.append("</body></html>")
    html_path = Path(out_dir) / f"{stem}.html"
    write_text(html_path, "\n".join(h) + "\n")
    write_text(Path(out_dir) / f"{stem}.md", "\n".join(md))
    return html_path
