"""Mutation spot-checks: plant one plausible bug at a time and run the tests that should catch it.

Each mutant is a text patch (one exact ``old`` → ``new`` replacement) of one file. The working tree is
never touched: its files are copied to a temporary folder (with links to ``runs/`` and ``../shared``), the tests run there first unmutated (they must pass, else the check says
nothing), then once per mutant on a fresh copy of the mutated file, restored afterwards. A mutant the
tests still pass is a **survivor**: a bug the suite cannot see.

    .venv/bin/python -m benchmarks.mutants            # writes benchmarks/results/mutants.json
    .venv/bin/python -m benchmarks.mutants --only bootstrap_last_record_never_drawn

The mutants are the nine that survived issue 22's spot-check (16 planted, 9 survived), and the SVG
download the browser test did not click.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import REPO_ROOT, RESULTS_DIR, print_table, write_results


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments

    def apply(self, text: str) -> str:
        if text.count(self.old) != 1:
            raise SystemExit(f"{self.name}: the text to mutate occurs {text.count(self.old)} times in {self.path}")
        return text.replace(self.old, self.new)


BOOTSTRAP = ("tests/test_metrics.py", "tests/test_science.py", "-k", "bootstrap")
MUTANTS = [
    Mutant("bootstrap_no_negative_rule", "src/ecgnet/evaluation/metrics.py",
           "if (p > 0).all() and (p < (known[idx].sum(axis=0) if masked else n)).all():", "if (p > 0).all():",
           BOOTSTRAP),
    Mutant("bootstrap_last_record_never_drawn", "src/ecgnet/evaluation/metrics.py",
           "idx = rng.integers(0, n, size=n)", "idx = rng.integers(0, n - 1, size=n)", BOOTSTRAP),
    Mutant("amplitude_no_12mv_upper_bound", "src/ecgnet/data/records.py",
           "if not low <= median <= high:", "if not low <= median:", ("tests/test_records.py",)),
    Mutant("snomed_wpw_unmapped", "src/ecgnet/data/snomed_ptbxl.csv",
           "74390002,wolff parkinson white pattern,WPW,WPW,CD,",
           "74390002,wolff parkinson white pattern,WPW,,,", ("tests/test_external_mapping.py",)),
    Mutant("snomed_acute_ischaemia_as_mi", "src/ecgnet/data/snomed_ptbxl.csv",
           "413444003,acute myocardial ischemia,AMIs,ISC_,STTC,", "413444003,acute myocardial ischemia,AMIs,AMI,MI,",
           ("tests/test_external_mapping.py",)),
    Mutant("uploads_bytes_counted_per_chunk", "src/ecgnet/serve/uploads.py",
           "written += len(chunk)", "written = len(chunk)", ("tests/test_serve_uploads.py",)),
    Mutant("uploads_last_signal_line_unchecked", "src/ecgnet/serve/uploads.py",
           "for fields in lines[1:1 + n_signals]:", "for fields in lines[1:n_signals]:",
           ("tests/test_serve_uploads.py",)),
    Mutant("viewer_png_blank", "src/ecgnet/serve/static/app.js",
           "ctx.drawImage(image, 0, 0, w, h);", "", ("tests/test_serve_browser.py",)),
    Mutant("viewer_svg_download_empty", "src/ecgnet/serve/static/app.js",
           'save(new Blob([svgText()], {type: "image/svg+xml"})', 'save(new Blob(["<svg/>"], {type: "image/svg+xml"})',
           ("tests/test_serve_browser.py",)),
    Mutant("bundled_listed_auc_from_validation", "src/ecgnet/runs/describe.py",
           'read("test/metrics.json", json.loads)', 'read("val/metrics.json", json.loads)',
           ("tests/test_bundled_figures.py",)),  # test_bundled.py: 0.5 < auc let it pass
]


def copy_repo(dest: Path) -> Path:
    """The working tree's files (git's tracked and untracked-not-ignored; docs and configs are read by
    tests) under ``dest/repo``, with runs/ and ../shared linked rather than copied."""
    repo = dest / "repo"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if name.startswith("runs/") or not source.is_file():
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, repo / name)
    for link, target in ((repo / "runs", REPO_ROOT / "runs"), (dest / "shared", REPO_ROOT.parent / "shared")):
        if target.exists():
            os.symlink(target, link)
    return repo


def run_tests(repo: Path, tests: tuple[str, ...]) -> tuple[str, float, str]:
    """pytest in the copy (its src/ first on the path) → ("passed" | "failed" | "no tests", seconds, tail)."""
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
                           "-rs", *tests], cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = " | ".join(done.stdout.strip().splitlines()[-2:])
    outcome = {0: "passed", 5: "no tests"}.get(done.returncode, "failed")
    if outcome == "passed" and " passed" not in tail:  # everything skipped: says nothing
        outcome = "skipped"
    return outcome, seconds, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutant names (default: all)")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    rows, figures = [], {}
    with tempfile.TemporaryDirectory(prefix="ecgnet-mutants-") as tmp:
        repo = copy_repo(Path(tmp))
        check = subprocess.run([sys.executable, "-c", "import ecgnet; print(ecgnet.__file__)"], cwd=repo,
                               env={**os.environ, "PYTHONPATH": str(repo / "src")}, capture_output=True, text=True)
        assert check.stdout.strip().startswith(str(repo)), f"the copy's ecgnet is not the one imported: {check.stdout}"
        baselines: dict[tuple, tuple] = {}
        for m in mutants:
            if m.tests not in baselines:
                baselines[m.tests] = run_tests(repo, m.tests)
            base = baselines[m.tests]
            target = repo / m.path
            original = target.read_text()
            try:
                target.write_text(m.apply(original))
                outcome, seconds, tail = run_tests(repo, m.tests)
            finally:
                target.write_text(original)
            verdict = "killed" if outcome == "failed" and base[0] == "passed" else \
                "SURVIVED" if outcome == "passed" else f"inconclusive (unmutated: {base[0]}, mutated: {outcome})"
            figures[m.name] = {"file": m.path, "tests": list(m.tests), "unmutated": base[0], "mutated": outcome,
                               "verdict": verdict, "seconds": round(seconds, 1), "pytest": tail[-300:]}
            rows.append([m.name, m.path.split("/")[-1], base[0], outcome, verdict, f"{seconds:.0f}"])
            print(f"{m.name}: {verdict} ({seconds:.0f} s)", flush=True)
    print_table(["mutant", "file", "unmutated", "mutated", "verdict", "s"], rows, title="mutation spot-checks")
    previous = RESULTS_DIR / "mutants.json"
    if args.only and previous.is_file():  # a partial run updates the full table
        figures = {**json.loads(previous.read_text())["figures"]["mutants"], **figures}
    survivors = [n for n, f in figures.items() if f["verdict"] != "killed"]
    print(f"\n{len(figures) - len(survivors)} of {len(figures)} killed; not killed: {', '.join(survivors) or 'none'}")
    write_results("mutants", {"mutants": figures, "survivors": survivors}, vars(args))
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
