"""The one build step pyproject.toml cannot declare: the guides of docs/ go into the built package.

Every way of building ecgnet — `pip install .`, `pip install git+URL`, a wheel built from the sdist, `make wheel` —
runs setuptools' build_py, which here also copies docs/*.md and the deployment example the guides link to
(docs/onnx_without_ecgnet.py) into the package as ecgnet/docs/, where `ecgnet docs` reads them (ecgnet.manual).
docs/ stays their one copy in the repository; MANIFEST.in puts it in the sdist. An editable install copies
nothing: it reads the checkout's docs/. Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.errors import FileError

DOCS = Path(__file__).resolve().parent / "docs"
EXAMPLES = ("onnx_without_ecgnet.py",)  # the scripts shipped beside the guides: ecgnet.manual.EXAMPLES


def shipped_docs() -> list[Path]:
    """docs/*.md and the examples; a source tree without them would build a package that has no guides."""
    guides = sorted(DOCS.glob("*.md"))
    if not guides:
        raise FileError(f"{DOCS}: no guides (*.md) to put in the package: build from the repository or its sdist")
    missing = [name for name in EXAMPLES if not (DOCS / name).is_file()]
    if missing:
        raise FileError(f"{DOCS}: {', '.join(missing)} missing (the guides link to it)")
    return guides + [DOCS / name for name in EXAMPLES]


class BuildPyWithGuides(build_py):
    """setuptools' build_py, then docs/ → <build>/ecgnet/docs/."""

    def run(self):
        docs = [] if self.editable_mode else shipped_docs()  # editable: ecgnet.manual reads the checkout's docs/
        super().run()
        target = Path(self.build_lib) / "ecgnet" / "docs"
        for source in docs:
            self.mkpath(str(target))
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithGuides})
