"""House rules that keep the repository easy to run and to read (issue 21, defect 6):

* matplotlib's backend is chosen once, in ``ecgnet/plotting.py``; other modules import ``plt`` from it;
* the scripts of ``benchmarks/`` and ``reports/`` run as modules from the repository root
  (``python -m benchmarks.bench_model``, ``python -m reports.levers.table``): packages, no ``sys.path``
  patching;
* pip's build outputs are not committed by accident;
* the README's and docs' links lead somewhere.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "src" / "ecgnet"
SCRIPTS = [p for folder in ("benchmarks", "reports") for p in sorted((REPO / folder).rglob("*.py"))]


def _calls(tree: ast.AST, dotted: str) -> list[int]:
    """Line numbers of calls to ``dotted`` (e.g. ``sys.path.insert``) in ``tree``."""
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted]


def test_matplotlib_backend_is_chosen_in_one_place():
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "plotting.py" and path.parent == SOURCE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not _calls(tree, "matplotlib.use"), f"{path}: matplotlib.use outside ecgnet/plotting.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert "matplotlib.pyplot" not in [a.name for a in node.names], \
                    f"{path}:{node.lineno}: import plt from ecgnet.plotting (its backend is set there)"
            if isinstance(node, ast.ImportFrom) and node.module == "matplotlib":
                assert "pyplot" not in [a.name for a in node.names], f"{path}:{node.lineno}: use ecgnet.plotting"


def test_plotting_sets_agg_before_pyplot():
    import matplotlib

    from ecgnet.plotting import plt

    assert matplotlib.get_backend().lower() == "agg" and plt.get_backend().lower() == "agg"


@pytest.mark.parametrize("path", SCRIPTS, ids=[str(p.relative_to(REPO)) for p in SCRIPTS])
def test_scripts_run_as_modules_without_patching_sys_path(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for call in ("sys.path.insert", "sys.path.append", "sys.path.extend", "site.addsitedir"):
        assert not _calls(tree, call), f"{path.relative_to(REPO)}: {call}; import by package name instead"
    folder = path.parent
    while folder != REPO:  # every folder up to the root is a package, so `python -m a.b.c` finds it
        assert (folder / "__init__.py").is_file(), f"{folder.relative_to(REPO)} has no __init__.py"
        folder = folder.parent


def test_build_outputs_are_ignored():
    probe = ["build/lib/ecgnet/x.py", "dist/ecgnet-0.1.0-py3-none-any.whl"]
    ignored = subprocess.run(["git", "check-ignore", *probe], cwd=REPO, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.stdout.split() == probe


def test_links_of_the_readme_and_docs_resolve():
    """Every relative link of README.md and docs/*.md names a file or folder of the repository."""
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)} → {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)
