"""Where a run (or a report) came from: the git revision and whether the tree had changes, a digest of the
package's code, the command, the versions. Written into run.json and every report's provenance."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import subprocess
import shlex
import sys
from pathlib import Path

import torch

REVISION_ENV = "ECGNET_GIT_REVISION"  # names the commit a copy without .git was made from; checked by source_sha256
PACKAGE = Path(__file__).resolve().parents[1]  # src/ecgnet


def source_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over the package's Python files (relative path and bytes, in path order): the code that ran,
    comparable with a checkout of the revision the run names, also where the run had no .git to ask."""
    h = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def command(argv: list[str] | None = None) -> str | None:
    """The command line that is running: ``ecgnet …`` for the CLI (its entry point or ``python -m
    ecgnet.cli``), ``python -m reports.x.y …`` for a report or benchmark script of the checkout (run from the
    repository root, as their docstrings say), else ``python <script> …`` (a script that trains or evaluates
    through the API, whose arguments are not ecgnet's)."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return None
    program = Path(argv[0])
    if program.name == "ecgnet" or program.resolve() == PACKAGE / "cli" / "__main__.py":
        return shlex.join(["ecgnet", *argv[1:]])  # a path with a space stays one word
    try:  # a report or benchmark script of the checkout: as its docstring runs it, not by this machine's path
        script = program.resolve().relative_to(PACKAGE.parents[1])
    except ValueError:
        script = None
    if script is not None and script.suffix == ".py" and script.parts[0] in ("reports", "benchmarks"):
        return shlex.join(["python", "-m", script.with_suffix("").as_posix().replace("/", "."), *argv[1:]])
    return shlex.join(["python", *argv])


def provenance() -> dict:
    """Who made this and from what: git revision (and whether the tree had changes), command, versions."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                                  cwd=PACKAGE).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    outputs = [f":(top,exclude,glob)reports/**/*.{ext}" for ext in ("md", "html", "json", "csv", "png", "txt")]
    dirty = (git("diff", "--name-only", "HEAD", "--", ":/", ":!/runs", *outputs) or "").splitlines()  # code, not outputs
    revision = git("rev-parse", "HEAD")
    declared = {}
    if revision is None and os.environ.get(REVISION_ENV):  # a copy of the tree without .git (a lent GPU machine)
        revision, declared = os.environ[REVISION_ENV], {"git_revision_declared_by": REVISION_ENV}
    return {"git_revision": revision, "git_dirty": bool(dirty), "git_dirty_files": dirty, **declared,
            "source_sha256": source_digest(),
            "command": command(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_threads": torch.get_num_threads()}


def made_by(weights_sha256: str | None, engine: str | None = None) -> dict:
    """What an evaluation's figures were computed with: the command, the code's revision, the date and the
    weights scored (a report stands alone: its numbers can be traced without the terminal that made them)."""
    origin = provenance()
    return {**{k: origin[k] for k in ("command", "git_revision", "git_dirty", "date")},
            "weights_sha256": weights_sha256, "engine": engine}


def made_by_line(made: dict | None) -> list[str]:
    """A report's summary row for :func:`made_by`'s facts ([] when absent: reports written before them)."""
    if not made:
        return []
    revision = (made.get("git_revision") or "unknown")[:10] + (" with uncommitted changes" if made.get("git_dirty") else "")
    return ["made by", f"`{made.get('command')}` at revision {revision}, {made.get('date')}; weights "
                       f"{(made.get('weights_sha256') or '?')[:12]} ({made.get('engine') or 'torch'})"]
