"""The guides of ``docs/`` where the package runs: ``ecgnet docs [NAME]``.

A checkout (and an editable install) reads them from its ``docs/`` folder. Any other install carries a copy of
the ``.md`` files as ``ecgnet/docs/``, put there by the build (``setup.py``, whatever builds the package: ``pip
install .``, a wheel, the sdist), so a user with no repository at hand reads the same text the command-line help
points to (``ecgnet docs own_data``). Beside them, the build ships the scripts the guides link to
(:data:`EXAMPLES`): ``ecgnet docs onnx_without_ecgnet.py > onnx_without_ecgnet.py`` writes one out to run.
"""

from __future__ import annotations

from pathlib import Path

from ecgnet.errors import ECGNetError

PACKAGED = Path(__file__).resolve().parent / "docs"  # an installed package's copy (setup.py)
CHECKOUT = Path(__file__).resolve().parents[2] / "docs"  # src/ecgnet/manual.py → the repository's docs/
# {file: what it is}: the scripts of docs/ shipped beside the guides; setup.py's EXAMPLES names the same files
EXAMPLES = {"onnx_without_ecgnet.py": "Diagnose WFDB records with an exported model, without ecgnet (export.md)"}


def docs_folder() -> Path:
    """Where the guides are: the installed package's copy, else the checkout's folder."""
    for folder in (PACKAGED, CHECKOUT):
        if any(folder.glob("*.md")):
            return folder
    raise ECGNetError(f"no guides found: neither {PACKAGED} nor {CHECKOUT} holds any (*.md): this installation was "
                      "built from sources without docs/ (build it from the repository or its sdist)")


def guides() -> dict[str, str]:
    """{name: the first heading} of every guide, by name."""
    out = {}
    for path in sorted(docs_folder().glob("*.md")):
        first = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# ")), "")
        out[path.stem] = first.removeprefix("# ").strip()
    return out


def examples() -> dict[str, str]:
    """{file: what it is} of the example scripts this installation carries."""
    folder = docs_folder()
    return {name: what for name, what in EXAMPLES.items() if (folder / name).is_file()}


def read_guide(name: str) -> str:
    """The text of the guide ``name`` (``own_data`` or ``own_data.md``) or of an example script
    (``onnx_without_ecgnet.py``); an unknown name lists them."""
    folder, base = docs_folder(), Path(name).name  # docs/own_data.md reads as own_data.md
    files = {f"{stem}.md" for stem in guides()} | set(examples())
    for file in (base, f"{base}.md", f"{base}.py"):
        if file in files:
            return (folder / file).read_text(encoding="utf-8")
    raise ECGNetError(f"no guide '{name}': the guides are {', '.join(guides())}; the examples {', '.join(examples())}")
