"""`ecgnet docs`: the guides listed with their titles and printed whole; an unknown name lists them (the
installed wheel's copy is tested in tests/test_wheel.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ecgnet.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_lists_and_prints_the_guides():
    runner = CliRunner()
    listed = runner.invoke(app, ["docs"])
    assert listed.exit_code == 0
    for guide in DOCS.glob("*.md"):
        assert guide.stem in listed.output
    assert "Your own labelled ECGs" in listed.output or "own_data" in listed.output
    for name in ("own_data", "own_data.md"):
        printed = runner.invoke(app, ["docs", name])
        assert printed.exit_code == 0 and printed.output == (DOCS / "own_data.md").read_text()
    missing = runner.invoke(app, ["docs", "nowhere"])
    assert missing.exit_code == 2 and "no guide 'nowhere': the guides are" in missing.stderr
