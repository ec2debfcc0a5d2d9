"""One document written twice: ``<stem>.html``, self-contained (inline CSS, figures embedded as base64 PNG),
and ``<stem>.md``, the same tables and text with the figures saved under ``figures/`` and linked: a run's report,
an evaluation's, a cross-validation's, a site profile's, a comparison (the sweep report is Markdown only)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from ecgnet.fileio import atomic_path, write_text
from ecgnet.plotting import plt


def save_png(fig, path: Path) -> bytes:
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
