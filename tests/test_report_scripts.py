"""The report scripts' command line (reports/usage.py): ``--help`` prints the script's docstring and exits 0
without reading or writing anything (scripts once took it for a run name, or ignored it and rewrote their
committed results); an unknown option or a wrong number of arguments is one line on stderr and exit 2."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("usage", REPO / "reports" / "usage.py")  # tests/ is on sys.path,
usage = importlib.util.module_from_spec(_spec)  # not the repository root
_spec.loader.exec_module(usage)
SCRIPTS = ["reports.distill.unlabelled", "reports.distill.seeds", "reports.distill.soup", "reports.quality.bounds",
           "reports.levers.costs", "reports.distill.soft_targets", "reports.imbalance.paired",
           "reports.levers.calibration", "reports.levers.gap", "reports.transfer.gap", "reports.transfer.shift",
           "reports.transfer.transfer", "reports.paired_runs", "reports.levers.table",
           "reports.levers.derived_superclasses", "reports.benchmark.table", "reports.levers.greedy_ensemble",
           "reports.distill.choose", "reports.own_data.measure", "reports.own_data.interpolate",
           "reports.own_data.shift", "reports.own_data.stopping", "reports.own_data.epoch_size",
           "reports.own_data.render", "reports.own_data.choose_defaults", "reports.own_data.calibration.measure",
           "reports.own_data.calibration.shrinkage"]


MAIN = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.M)


def _scripts() -> list[Path]:
    """Every tracked report script that runs as a program (a ``__main__`` block)."""
    listed = subprocess.run(["git", "ls-files", "reports/*.py", "reports/**/*.py"], cwd=REPO, capture_output=True,
                            text=True)
    return [REPO / f for f in listed.stdout.split() if MAIN.search((REPO / f).read_text(encoding="utf-8"))]


def test_every_report_script_checks_its_command_line():
    """A script that read sys.argv by hand ran its default — training, rewriting committed results — on --help or a
    typo'd sub-command (interpolate.py, shift.py, shrinkage.py): each uses reports/usage.py or argparse, and the
    ones that use usage.py are run with --help below."""
    scripts = _scripts()
    if not scripts:
        pytest.skip("not a git checkout")
    for path in scripts:
        source = path.read_text(encoding="utf-8")
        main = source[MAIN.search(source).start():]
        assert "usage." in main or "argparse" in source, path
        if "usage." in main:
            assert ".".join(path.relative_to(REPO).with_suffix("").parts) in SCRIPTS, path


def _written() -> tuple[str, dict]:
    """``git status --porcelain`` and the modification times of the tracked files the scripts write into."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    if status.returncode:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "reports", "benchmarks/results"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    return status.stdout, {f: (REPO / f).stat().st_mtime_ns for f in tracked if (REPO / f).is_file()}


@pytest.mark.parametrize("module", SCRIPTS)
def test_help_prints_the_docstring_and_touches_nothing(module):
    source = (REPO / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    first = ast.get_docstring(ast.parse(source)).splitlines()[0]
    before = _written()
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert first in done.stdout
    assert _written() == before, f"{module} --help changed files of the checkout"


def test_wrong_arguments_are_one_line_and_exit_2(monkeypatch, capsys):
    def run(*argv, **limits):
        monkeypatch.setattr(sys, "argv", ["script.py", *argv])
        with pytest.raises(SystemExit) as stop:
            usage.arguments("Doc.", **limits)
        return stop.value.code, capsys.readouterr()

    for argv, limits in ((("--bogus",), {}), (("a",), {}), ((), {"least": 1, "most": None}),
                         (("a", "b", "c"), {"least": 1, "most": 2}), (("-x", "run"), {"least": 1, "most": None}),
                         (("--no-latency", "--bogus"), {"options": ("--no-latency",)})):
        code, out = run(*argv, **limits)
        assert code == 2 and out.out == "" and len(out.err.strip().splitlines()) == 1, (argv, out)
    code, out = run("-h")
    assert code == 0 and out.out == "Doc.\n"
    monkeypatch.setattr(sys, "argv", ["script.py", "a", "b", "--no-latency"])
    assert usage.arguments("Doc.", 1, 2, options=("--no-latency",)) == ["a", "b", "--no-latency"]


def test_a_wrong_argument_of_a_script_stops_it_before_it_starts():
    done = subprocess.run([sys.executable, "-m", "reports.levers.gap", "--run", "x"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "python -m reports.levers.gap: unknown option --run (--help says how to run it)"
