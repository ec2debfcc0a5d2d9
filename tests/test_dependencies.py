"""The wheel declares what the package imports: every third-party module that ``src/ecgnet`` imports — at
the top of a file or lazily inside a function — belongs to a distribution listed in pyproject.toml's
``dependencies`` and pinned in requirements.lock. (A missing one shows only when a user of the installed
wheel reaches the command that imports it: ``ecgnet serve`` died with ``ModuleNotFoundError: captum``.)
``tests/test_wheel.py`` then proves the declared set is enough, in a clean virtual environment.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "src" / "ecgnet"


def _name(requirement: str) -> str:
    """'scikit-learn>=1.4' → 'scikit-learn', normalised as PEP 503 does."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", requirement.strip()).group(0)).lower()


def imported_modules() -> dict[str, list[str]]:
    """Top-level names of every absolute import in src/ecgnet → the files importing them."""
    found: dict[str, list[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(REPO)))
    return found


def third_party() -> dict[str, list[str]]:
    return {m: files for m, files in imported_modules().items()
            if m not in sys.stdlib_module_names and m not in ("ecgnet", "__future__")}


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_name(r) for r in project["dependencies"]}


def test_the_scan_sees_lazy_imports():
    """Imports inside functions count (captum is imported only where attributions are computed)."""
    modules = third_party()
    assert {"torch", "numpy", "captum", "fastapi", "uvicorn", "onnxruntime"} <= set(modules)


def test_every_imported_distribution_is_declared():
    owners = packages_distributions()  # import name → distributions providing it, in this environment
    missing = {}
    for module, files in third_party().items():
        dists = {_name(d) for d in owners.get(module, [])}
        assert dists, f"{module} (imported by {files[0]}) is not installed in the test environment"
        if not dists & declared():
            missing[module] = (sorted(dists), files[:2])
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_every_declared_dependency_is_pinned():
    lock = REPO / "requirements.lock"
    pinned = {_name(line.split("==")[0]) for line in lock.read_text(encoding="utf-8").splitlines()
              if "==" in line and not line.lstrip().startswith("#")}
    assert declared() - {"torch"} <= pinned, f"not pinned in {lock.name}: {sorted(declared() - {'torch'} - pinned)}"
