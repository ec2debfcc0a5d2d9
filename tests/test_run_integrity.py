"""Run integrity: run.json's SHA-256 of the weights is checked on load, and nothing is unpickled from a
run directory (Lightning's resume checkpoints are the one documented exception, see ``ecgnet.runs``)."""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ecgnet.runs.bundled import bundled_root
from ecgnet.errors import ECGNetError
from ecgnet.runs import load_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_copy(untrained_run, tmp_path) -> Path:
    return Path(shutil.copytree(untrained_run, tmp_path / "run"))


def test_save_model_records_the_weights_sha256(untrained_run):
    info = json.loads((untrained_run / "run.json").read_text())
    assert info["weights_sha256"] == hashlib.sha256((untrained_run / "model.safetensors").read_bytes()).hexdigest()
    load_run(untrained_run)


def test_a_damaged_weights_file_is_refused(run_copy):
    weights = run_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of the last parameter: still a readable safetensors file
    weights.write_bytes(bytes(data))
    load_file(str(weights))
    with pytest.raises(ECGNetError, match="SHA-256 does not match weights_sha256 in run.json") as info:
        load_run(run_copy)
    assert str(weights) in str(info.value) and "\n" not in str(info.value)


def test_replaced_weights_that_fit_the_model_are_refused(run_copy):
    weights = run_copy / "model.safetensors"
    state = {k: torch.zeros_like(v) for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights))
    with pytest.raises(ECGNetError, match="damaged or were replaced"):
        load_run(run_copy)


def test_a_run_without_the_field_still_loads(run_copy):
    info = json.loads((run_copy / "run.json").read_text())
    del info["weights_sha256"]
    (run_copy / "run.json").write_text(json.dumps(info))
    model, _, loaded = load_run(run_copy)
    assert "weights_sha256" not in loaded and isinstance(model, torch.nn.Module)


def _committed(paths: list[Path]) -> list[Path]:
    """The paths git tracks (all of them in a fresh clone); a run still being trained here is not one."""
    try:
        out = subprocess.run(["git", "ls-files", "--", *map(str, paths)], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return paths
    return [REPO / p for p in out]


def _ignored(path: Path) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO).returncode == 0


@pytest.mark.parametrize("run_json", _committed(sorted((REPO / "runs").glob("*/run.json"))) +
                         sorted(bundled_root().glob("*/run.json")), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_committed_and_bundled_run_records_its_weights(run_json):
    weights = run_json.parent / "model.safetensors"
    info = json.loads(run_json.read_text())
    if not weights.is_file() and _ignored(weights):
        # weights left out on purpose (a late fusion of committed runs, rebuilt by training its config,
        # which fits nothing): the SHA-256 is still recorded, to check a rebuild against
        assert info["model"] == "late_fusion" and len(info.get("weights_sha256", "")) == 64
        return
    assert info.get("weights_sha256") == hashlib.sha256(weights.read_bytes()).hexdigest(), \
        f"{run_json}: weights_sha256 missing or stale (runs trained before it: add the SHA-256 of {weights.name})"


def test_loading_a_run_unpickles_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded from a run directory")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    for name in ("baseline_time", "intermediate_concat_weighted_bce"):
        load_run(bundled_root() / name)
    if (REPO / "runs" / "late_stacking" / "model.safetensors").is_file():
        load_run(REPO / "runs" / "late_stacking")  # loads its member runs too


def test_the_only_unpickling_is_the_documented_checkpoint_one():
    """Source check: torch.load only in training (weights_only=True); no pickle/joblib loads anywhere."""
    loaders = {"torch.load", "pickle.load", "pickle.loads", "pickle.Unpickler", "joblib.load"}
    found = []
    for path in sorted((REPO / "src" / "ecgnet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if name in loaders or keywords.get("allow_pickle") == "True":
                found.append((str(path.relative_to(REPO)), name, keywords.get("weights_only")))
    assert found == [("src/ecgnet/training/fit.py", "torch.load", "True")], found


def test_an_unfinished_run_is_refused_with_how_to_resume(run_copy):
    """Training writes INCOMPLETE first and deletes it last: evaluate, predict, export, compare and the
    server (all through load_run) refuse the folder in between — after a kill, it stays refused."""
    from ecgnet.config import load_config
    from ecgnet.runs import mark_complete, mark_incomplete

    mark_incomplete(run_copy, load_config(run_copy / "config.yaml"),
                    {"date": "2025-01-02T03:04:05+00:00", "command": "ecgnet train -c x.yaml"})
    for target in (run_copy, run_copy / "model.safetensors"):
        with pytest.raises(ECGNetError) as info:
            load_run(target)
        message = str(info.value)
        assert message.startswith(f"{run_copy}: training did not finish (INCOMPLETE: training started "
                                  "2025-01-02T03:04:05+00:00 by `ecgnet train -c x.yaml`)")
        assert "resume with `ecgnet train -c x.yaml --resume`" in message and "\n" not in message
    mark_complete(run_copy)
    load_run(run_copy)


@pytest.mark.parametrize("started, advice", [
    # a manifest run resumed without its --manifest trained on PTB-XL and crashed: the command it started with
    ("ecgnet train --manifest m.csv --from long_time --folds 5", "ecgnet train --manifest m.csv --from long_time "
                                                                 "--folds 5 --resume"),
    ("ecgnet train -c a.yaml --resume", "ecgnet train -c a.yaml --resume"),
    ("ecgnet sweep -c a.yaml --space s.yaml --trials 3", "ecgnet sweep -c a.yaml --space s.yaml --trials 3"),
    ("python benchmarks/bench_time_to_accuracy.py a.yaml", None)])  # None: the run's own config
def test_the_resume_advice_is_the_command_that_started_the_run(run_copy, started, advice):
    from ecgnet.runs.directory import resume_command

    generic = f"ecgnet train -c {run_copy / 'config.yaml'} --runs-dir {run_copy.parent} --resume"
    assert resume_command(run_copy, started) == (advice or generic)


def test_the_cli_and_the_server_refuse_an_unfinished_run(run_copy, tmp_path):
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.serve.models import ModelStore

    (run_copy / "INCOMPLETE").write_text("training started … and has not finished\n")
    result = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(run_copy), "--no-progress"])
    assert result.exit_code == 2 and "training did not finish" in result.output and "--resume" in result.output
    finished = Path(shutil.copytree(run_copy, run_copy.parent / "finished"))
    (finished / "INCOMPLETE").unlink()
    assert ModelStore.discover(runs_dir=run_copy.parent, bundled=False).names() == ["finished"]  # not "run"


def test_load_run_reads_the_weights_once(run_copy, monkeypatch):
    """The bytes whose SHA-256 is checked are the bytes loaded (no second read that could differ)."""
    reads = []
    real = Path.read_bytes

    def counting(self):
        if self.name == "model.safetensors":
            reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    load_run(run_copy)
    assert len(reads) == 1


@pytest.mark.parametrize("said, origin", [
    ("fold 9 (val) — the same records: optimistic", "fold 9"),
    (None, "fold 9"),  # runs evaluated before the field existed
    ("pooled out-of-fold predictions of the cross-validation (the same records: optimistic)",
     "pooled out-of-fold predictions of the cross-validation"),
    ("validation rows — the same records: optimistic", "the collection's validation rows"),
])
def test_a_run_says_where_its_thresholds_were_chosen(tmp_path, said, origin):
    from ecgnet.runs.describe import thresholds_origin

    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "metrics.json").write_text(json.dumps({"per_class": {}} | ({"thresholds_from": said} if said else {})))
    assert thresholds_origin(tmp_path) == origin


def test_thresholds_origin_of_bundled_missing_and_damaged_runs(tmp_path):
    from ecgnet.runs.describe import run_summary, thresholds_origin

    assert thresholds_origin(bundled_root() / "long_time") == "fold 9"
    assert run_summary(bundled_root() / "long_time")["thresholds_from"] == "fold 9"
    assert thresholds_origin(tmp_path) is None  # no val/metrics.json: no thresholds
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "metrics.json").write_text("{not json")
    assert thresholds_origin(tmp_path) is None and run_summary(tmp_path)["thresholds_from"] is None
    (tmp_path / "cv").mkdir()  # a cross-validated run lists its pooled out-of-fold AUC (it showed none)
    (tmp_path / "cv" / "metrics.json").write_text('{"pooled": {"macro_auc": {"value": 0.779}}}')
    assert run_summary(tmp_path)["cv_macro_auc"] == 0.779 and run_summary(tmp_path)["test_macro_auc"] is None


def test_a_run_retrained_under_a_shipped_name_is_served_beside_it(run_copy, tmp_path, capsys):
    """runs/long_time with other weights than the shipped long_time is not hidden by it (the server listed
    the shipped model only, so a user's retrained model could not be chosen); the same weights are one model."""
    from ecgnet.runs.bundled import resolve_checkpoint
    from ecgnet.serve.models import ModelStore

    runs = tmp_path / "runs"
    shutil.copytree(run_copy, runs / "long_time")  # an untrained model: other weights than the shipped one
    shutil.copytree(resolve_checkpoint("baseline_time"), runs / "baseline_time")  # the shipped weights again
    store = ModelStore.discover(runs_dir=runs)
    assert "runs/long_time" in store.names() and store.checkpoints["runs/long_time"] == (runs / "long_time").resolve()
    assert store.checkpoints["long_time"] == resolve_checkpoint("long_time")
    assert "runs/baseline_time" not in store.names()
    assert "listed as 'runs/long_time'" in capsys.readouterr().err


def test_a_resume_on_other_data_is_refused(tmp_path):
    """A manifest run resumed without its --manifest trained on all of PTB-XL; a PTB-XL run resumed with one
    would train on the manifest: refused either way, saying what it started on."""
    from ecgnet.runs.directory import check_resumed_data, record_data

    run = tmp_path / "run"
    record_data(run, {"name": "site", "manifest": str(tmp_path / "m.csv")})
    check_resumed_data(run, {"name": "site", "manifest": str(tmp_path / "m.csv")})  # the same: resumes
    with pytest.raises(ECGNetError, match=r"started on the manifest .*m\.csv, resumed on PTB-XL"):
        check_resumed_data(run, None)
    record_data(run, None)
    with pytest.raises(ECGNetError, match="started on PTB-XL, resumed on the manifest"):
        check_resumed_data(run, {"name": "site", "manifest": str(tmp_path / "m.csv")})
    check_resumed_data(tmp_path / "older", None)  # checkpoints from before the record: nothing to compare
    record_data(run, {"name": "site"}, split_sha256="aaa")  # a cut-off fold resumed under other --folds
    check_resumed_data(run, {"name": "site"}, split_sha256="aaa")
    with pytest.raises(ECGNetError, match="trained on another split of the records"):
        check_resumed_data(run, {"name": "site"}, split_sha256="bbb")


def test_a_checkpoint_under_a_shipped_name_does_not_hide_the_shipped_model(run_copy, tmp_path, capsys, monkeypatch):
    """serve --checkpoint /elsewhere/long_time (other weights) took the name long_time: the shipped long_time was
    gone from the list and the repository's runs/long_time, the shipped weights, was relabelled as 'other weights'
    (found in a viewer audit). The checkpoint is listed by its folder and name; the shipped name stays the shipped
    model's; the shipped model given as a checkpoint keeps its name."""
    from ecgnet.runs.bundled import resolve_checkpoint
    from ecgnet.serve.models import ModelStore

    mine = tmp_path / "mine" / "long_time"
    shutil.copytree(run_copy, mine)
    runs = tmp_path / "runs"
    shutil.copytree(resolve_checkpoint("long_time"), runs / "long_time")  # the shipped weights, as in a checkout
    store = ModelStore.discover([mine], runs_dir=runs)
    assert store.default == "mine/long_time" and store.checkpoints["mine/long_time"] == mine
    assert store.checkpoints["long_time"] == resolve_checkpoint("long_time") and "runs/long_time" not in store.names()
    assert "listed as 'mine/long_time'" in capsys.readouterr().err
    assert ModelStore.discover(["long_time"]).default == "long_time"
    from ecgnet.runs.bundled import bundled_root

    monkeypatch.chdir(mine.parent)  # a folder named long_time where the server starts is not the shipped model
    store = ModelStore.discover([mine])
    assert store.checkpoints["long_time"] == bundled_root() / "long_time" and store.default == "mine/long_time"
