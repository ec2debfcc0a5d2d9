"""The guides of ``docs/`` where the package runs: ``ecgnet docs [NAME]``.

A checkout reads them from its ``docs/`` folder; the wheel carries a copy of the ``.md`` files as package data
(``ecgnet/docs/``, put there when the wheel is built: ``make wheel``), so a user who installed it — with no
repository at hand — reads the same text the command-line help points to (``ecgnet docs own_data``).
"""

from __future__ import annotations

from pathlib import Path

from ecgnet.errors import ECGNetError

PACKAGED = Path(__file__).resolve().parent / "docs"  # the wheel's copy
CHECKOUT = Path(__file__).resolve().parents[2] / "docs"  # src/ecgnet/manual.py → the repository's docs/


def docs_folder() -> Path:
    """Where the guides are: the wheel's copy, else the checkout's folder."""
    for folder in (PACKAGED, CHECKOUT):
        if any(folder.glob("*.md")):
            return folder
    raise ECGNetError("no guides found: this installation carries no docs (a wheel built without `make wheel`?)")


def guides() -> dict[str, str]:
    """{name: the first heading} of every guide, by name."""
    out = {}
    for path in sorted(docs_folder().glob("*.md")):
        first = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# ")), "")
        out[path.stem] = first.removeprefix("# ").strip()
    return out


def read_guide(name: str) -> str:
    """The text of the guide ``name`` (``own_data`` or ``own_data.md``); an unknown name lists the guides."""
    stem = Path(name).stem if name.endswith(".md") else name
    path = docs_folder() / f"{stem}.md"
    if not path.is_file():
        raise ECGNetError(f"no guide '{name}': the guides are {', '.join(guides())}")
    return path.read_text(encoding="utf-8")
