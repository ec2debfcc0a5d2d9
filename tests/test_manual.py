"""`ecgnet docs`: the guides listed with their titles and printed whole; an unknown name lists them (the
installed wheel's copy is tested in tests/test_wheel.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ecgnet import manual
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


def test_docs_lists_and_prints_the_example_script():
    """The deployment example export.md links to: listed apart from the guides, printed whole to be written out."""
    runner = CliRunner()
    listed = runner.invoke(app, ["docs"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "onnx_without_ecgnet.py" in listed.output.split("Example scripts")[1]
    script = (DOCS / "onnx_without_ecgnet.py").read_text()
    for name in ("onnx_without_ecgnet.py", "onnx_without_ecgnet", "docs/onnx_without_ecgnet.py"):
        printed = runner.invoke(app, ["docs", name])
        assert printed.exit_code == 0 and printed.output == script
    assert runner.invoke(app, ["docs", "viewer_screenshot.py"]).exit_code == 2  # a script of docs/ not shipped


def test_installed_copy_first_then_the_checkout_then_a_clear_error(tmp_path, monkeypatch):
    installed = tmp_path / "site" / "ecgnet" / "docs"
    installed.mkdir(parents=True)
    (installed / "own_data.md").write_text("# Installed copy\n")
    monkeypatch.setattr(manual, "PACKAGED", installed)
    assert manual.docs_folder() == installed and manual.guides() == {"own_data": "Installed copy"}
    assert manual.examples() == {}  # an install without the script does not list it
    monkeypatch.setattr(manual, "PACKAGED", tmp_path / "nowhere")
    assert manual.docs_folder() == DOCS  # the checkout's docs/
    monkeypatch.setattr(manual, "CHECKOUT", tmp_path / "empty")
    failed = CliRunner().invoke(app, ["docs"])
    assert failed.exit_code == 2 and "no guides found" in failed.stderr and str(tmp_path / "nowhere") in failed.stderr
