"""What a run records of the code that made it (ecgnet.runs.provenance), also on a machine without .git."""

import json
import subprocess
import sys
from pathlib import Path

from ecgnet import runs


def test_source_digest_follows_the_code(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not code")
    before = runs.source_digest(tmp_path)
    assert before == runs.source_digest(tmp_path)  # deterministic
    (tmp_path / "notes.txt").write_text("changed, still not code")
    assert runs.source_digest(tmp_path) == before
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert runs.source_digest(tmp_path) != before


def test_revision_declared_where_git_is_missing(monkeypatch):
    def no_git(*args, **kwargs):
        raise OSError("git: not found")
    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.delenv(runs.REVISION_ENV, raising=False)
    assert runs.provenance()["git_revision"] is None
    monkeypatch.setenv(runs.REVISION_ENV, "f" * 40)
    info = runs.provenance()
    assert info["git_revision"] == "f" * 40 and info["git_revision_declared_by"] == runs.REVISION_ENV
    assert info["source_sha256"] == runs.source_digest()


def test_revision_from_git_wins_over_the_variable(monkeypatch):
    monkeypatch.setenv(runs.REVISION_ENV, "0" * 40)
    info = runs.provenance()
    if info["git_revision"] is not None:  # a checkout with .git (CI clones one)
        assert info["git_revision"] != "0" * 40 and "git_revision_declared_by" not in info


def test_the_command_is_the_one_that_ran():
    """run.json's command reruns the run: the CLI's as `ecgnet …`, a script's as `python <script> …` (a
    benchmark that trained through the API was recorded as `ecgnet configs/fast_time.yaml --output …`)."""
    from ecgnet.runs.origin import PACKAGE, command

    assert command(["/venv/bin/ecgnet", "train", "-c", "a.yaml"]) == "ecgnet train -c a.yaml"
    main = str(PACKAGE / "cli" / "__main__.py")
    assert command([main, "evaluate", "--checkpoint", "r"]) == "ecgnet evaluate --checkpoint r"
    assert command(["/work/benchmarks/bench_time_to_accuracy.py", "configs/fast_time.yaml", "--runs-dir", "runs"]) \
        == "python /work/benchmarks/bench_time_to_accuracy.py configs/fast_time.yaml --runs-dir runs"
    assert command([]) is None
    repo = PACKAGE.parents[1]  # a report script of the checkout: as it is run, not by this machine's path
    assert command([str(repo / "reports" / "transfer" / "transfer.py")]) == "python -m reports.transfer.transfer"
    # a path with a space stays one word (a stale profile's advice cut '/data/site a/m.csv' at the space; a review)
    assert command(["ecgnet", "calibrate", "my runs/r", "--manifest", "/data/site a/m.csv"]) == \
        "ecgnet calibrate 'my runs/r' --manifest '/data/site a/m.csv'"


def test_benchmark_results_record_the_command_as_the_readme_runs_it():
    """``python -m benchmarks.X`` puts the script's absolute path in argv[0]; the result says how to rerun it."""
    repo = Path(__file__).resolve().parents[1]
    probe = ("import sys; from benchmarks._common import REPO_ROOT, command; "
             "sys.argv = [str(REPO_ROOT / 'benchmarks' / 'bench_model.py'), '--repeats', '3']; print(command())")
    said = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert said.strip() == "python -m benchmarks.bench_model --repeats 3"
    for path in sorted((repo / "benchmarks" / "results").glob("*.json")):
        recorded = json.loads(path.read_text()).get("command", "")
        assert recorded.startswith("python -m "), (path.name, recorded)
