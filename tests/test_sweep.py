"""`ecgnet sweep`: the search-space file's errors, the pruning callback, and a tiny study on the real
data that completes, resumes with the same numbering, and writes a best.yaml that is the base config
with only the swept keys changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.config import load_config
from ecgnet.errors import ECGNetError
from ecgnet.sweep.pruning import PruningCallback
from ecgnet.sweep.space import Param, check_space, load_space, to_yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = """\
name: sweep_tiny
data: {max_train_records: 200}
model: {name: time_resnet1d, params: {widths: [8, 16], dropout: 0.1}}
training: {epochs: 2, batch_size: 64, lr: 0.01, patience: 2}
"""
SPACE = """\
training.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
model.params.dropout: {type: float, low: 0.0, high: 0.5, step: 0.05}
"""


def space_error(tmp_path, text: str, config=None) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ECGNetError) as info:
        space = load_space(path)
        check_space(space, config or {"name": "x", "model": {"name": "intermediate_fusion"}}, path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


@pytest.mark.parametrize("text, fragment", [
    ("training.lr: {type: gaussian, low: 1, high: 2}", "training.lr: unknown type 'gaussian'"),
    ("training.lr: {type: float, low: 0.1, high: 0.01}", "training.lr: low (0.1) must be below high (0.01)"),
    ("training.lr: {type: float, low: 0.1, high: 0.1}", "training.lr: low (0.1) must be below high"),
    ("training.lr: {type: float, high: 0.01}", "training.lr: 'low' must be"),
    ("training.lr: {type: float, low: 0, high: 0.01, log: true}", "training.lr: a log scale needs low > 0"),
    ("training.lr: {type: float, low: 0.1, high: 1, log: true, step: 0.1}", "training.lr: 'step' and 'log"),
    ("training.lr: {type: float, low: 0.1, high: 1, hihg: 2}", "training.lr: unknown field(s) hihg"),
    ("training.epochs: {type: int, low: 1.5, high: 4}", "training.epochs: 'low' must be an integer"),
    ("model.params.mode: {type: categorical, choices: []}", "model.params.mode: categorical needs"),
    ("model.params.mode: {type: categorical, choices: [concat, concat]}", "the same value twice"),
    ("training.lr: 0.01", "training.lr: expected a mapping with 'type'"),
    ("[training.lr]", "expected a mapping of config keys"),
    ("training.lr: {type: float, low: [1", "not valid YAML"),
    # the config's own validation, naming the space file and the key
    ("training.lrr: {type: float, low: 0.1, high: 1}", "training.lrr (as --set training.lrr=0.1): invalid config"),
    ("training.epochs: {type: int, low: 0, high: 4}", "training.epochs (as --set training.epochs=0): invalid config"),
    ("model.params.mode: {type: categorical, choices: [concat, sum]}",
     "model.params.mode (as --set model.params.mode=sum): model 'intermediate_fusion' refuses its parameters (mode must be one of"),
    ("model.params.dropuot: {type: float, low: 0, high: 0.5}", "model 'intermediate_fusion' has no parameter"),
])
def test_space_errors_name_the_file_and_key(tmp_path, text, fragment):
    assert fragment in space_error(tmp_path, text)


def test_a_missing_space_file(tmp_path):
    with pytest.raises(ECGNetError, match="no such search-space file"):
        load_space(tmp_path / "nope.yaml")


def test_committed_space_fits_its_config():
    config = ROOT / "configs" / "intermediate_concat.yaml"
    space = load_space(ROOT / "configs" / "sweeps" / "intermediate_concat.yaml")
    check_space(space, load_config(config).model_dump(mode="json"), "configs/sweeps/intermediate_concat.yaml")
    assert {"training.lr", "training.weight_decay", "model.params.dropout"} <= set(space)


def test_values_reach_the_config_as_written():
    """Sampled values go through --set's YAML: a string stays a string, a list choice is stored as YAML text."""
    assert yaml.safe_load(to_yaml("yes")) == "yes" and yaml.safe_load(to_yaml(1e-5)) == 1e-5
    modalities = Param("model.params.modalities", "categorical", choices=(["time", "metadata"], ["time"]))
    assert modalities.encoded and modalities.override("[time, metadata]") == "model.params.modalities=[time, metadata]"
    lr = Param("training.lr", "float", 1e-3, 1e-2, log=True)
    assert lr.override(0.005) == "training.lr=0.005"


class FakeTrial:
    def __init__(self, prune: bool):
        self.prune, self.reported = prune, []

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return self.prune


def fake_trainer(auc, epoch=3, sanity=False):
    return SimpleNamespace(callback_metrics={} if auc is None else {"val_macro_auc": auc}, current_epoch=epoch,
                           sanity_checking=sanity)


def test_pruning_callback_prunes_when_told():
    trial = FakeTrial(prune=True)
    with pytest.raises(optuna.TrialPruned, match="epoch 4"):
        PruningCallback(trial).on_validation_end(fake_trainer(0.71), None)
    assert trial.reported == [(3, pytest.approx(0.71))]


def test_pruning_callback_reports_and_goes_on():
    trial = FakeTrial(prune=False)
    callback = PruningCallback(trial)
    callback.on_validation_end(fake_trainer(0.6, epoch=0), None)
    callback.on_validation_end(fake_trainer(None, epoch=1), None)  # nothing logged: nothing reported
    callback.on_validation_end(fake_trainer(0.9, epoch=2, sanity=True), None)
    assert trial.reported == [(0, pytest.approx(0.6))]


WORKER = """
import sys, optuna
from ecgnet.sweep.storage import open_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(storage=open_storage(sys.argv[1]), study_name="shared", load_if_exists=True)
study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
"""


def test_workers_share_one_sqlite_study(tmp_path):
    """Two processes started together on one new SQLite study: 8 trials, each number once."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url], stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    errors = [w.communicate(timeout=120)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert sorted(t.number for t in trials) == list(range(8))


@pytest.fixture(scope="module")
def tiny_study(ptbxl_root, tmp_path_factory):
    """Two trials, then the same study continued to three."""
    from ecgnet.sweep.study import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny.yaml").write_text(TINY)
    (root / "space.yaml").write_text(SPACE)
    cache = Path(os.environ["ECGNET_CACHE"]) if os.environ.get("ECGNET_CACHE") else None
    lines = []
    kwargs = dict(study="tiny", runs_dir=root / "runs", progress=False, n_boot=20, sampler_seed=0,
                  cache_dir=cache, log=lines.append, overrides=["training.epochs=2"])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        first = run_sweep(root / "tiny.yaml", root / "space.yaml", 2, ptbxl_root, **kwargs)
        second = run_sweep(root / "tiny.yaml", root / "space.yaml", 3, ptbxl_root, report_dir=root / "report",
                           **kwargs)
    return SimpleNamespace(root=root, first=first, second=second, lines=lines,
                           dir=root / "runs" / "sweeps" / "tiny")


@pytest.mark.slow
def test_tiny_study_completes(tiny_study):
    s = tiny_study.first
    assert [t["number"] for t in s["trials"]] == [0, 1]
    assert all(t["state"] in ("complete", "pruned") for t in s["trials"]) and s["best"]["state"] == "complete"
    assert 0.3 < s["best"]["fold9_macro_auc"] <= 1
    assert "fold 9 (val) only" in s["selection"] and "fold 10" not in str(s["objective"])
    assert len(tiny_study.lines) == 3 and tiny_study.lines[0].startswith("trial 0:")
    for t in s["trials"]:
        run = Path(t["run_dir"])
        assert run.name == f"trial_{t['number']:03d}" and run.parent == tiny_study.dir
        assert not (run / "checkpoints").exists()


@pytest.mark.slow
def test_the_study_resumes_with_the_same_numbering(tiny_study):
    first, second = tiny_study.first["trials"], tiny_study.second["trials"]
    assert [t["number"] for t in second] == [0, 1, 2]
    assert [t["params"] for t in second[:2]] == [t["params"] for t in first]  # the first two are kept
    assert (tiny_study.dir / "study.db").is_file() and (tiny_study.dir / "trial_002").is_dir()


@pytest.mark.slow
def test_report_files(tiny_study):
    for directory in (tiny_study.dir, tiny_study.root / "report"):
        for name in ("best.yaml", "summary.json", "report.md", "optimization_history.png",
                     "param_importances.png"):
            assert (directory / name).is_file(), f"{name} missing from {directory}"
    report = (tiny_study.root / "report" / "report.md").read_text()
    assert "| trial | state | fold-9 macro AUC | epochs | seconds |" in report and "fold 9 (val) only" in report


@pytest.mark.slow
def test_best_yaml_is_the_base_with_the_swept_keys(tiny_study):
    best = load_config(tiny_study.dir / "best.yaml").model_dump()
    base = load_config(tiny_study.root / "tiny.yaml").model_dump()
    params = tiny_study.second["best"]["params"]
    assert best["name"] == "tiny_best"
    assert best["training"]["lr"] == pytest.approx(params["training.lr"])
    assert best["model"]["params"]["dropout"] == pytest.approx(params["model.params.dropout"])
    best["training"]["lr"] = base["training"]["lr"]
    best["model"]["params"]["dropout"] = base["model"]["params"]["dropout"]
    assert {**best, "name": base["name"]} == base  # not the sweep's --set training.epochs=2 either


@pytest.mark.slow
def test_cli_rewrites_the_report_and_refuses_a_changed_study(tiny_study, monkeypatch):
    monkeypatch.chdir(tiny_study.root)
    args = ["sweep", "-c", "tiny.yaml", "--space", "space.yaml", "--study", "tiny", "--runs-dir", "runs",
            "--set", "training.epochs=2"]
    result = CliRunner().invoke(app, [*args, "--trials", "0"])
    assert result.exit_code == 0, result.output
    assert "Best: trial" in result.stdout and "report.md" in result.stdout
    result = CliRunner().invoke(app, [*args[:-1], "training.epochs=3", "--trials", "0"])
    assert result.exit_code == 2 and "was started with a different --set" in result.stderr
    assert "(it was started with --set training.epochs=2)" in " ".join(result.stderr.split())  # what to give


def test_cli_space_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text("training.lr: {type: float, low: 1, high: 0.1}\n")
    result = CliRunner().invoke(app, ["sweep", "-c", str(ROOT / "configs" / "baseline_time.yaml"),
                                      "--space", "space.yaml", "--trials", "1"])
    assert result.exit_code == 2 and "space.yaml: training.lr: low (1) must be below high (0.1)" in result.stderr


def test_a_swept_key_cannot_also_be_set(tmp_path):
    from ecgnet.sweep.study import run_sweep

    (tmp_path / "space.yaml").write_text(SPACE)
    with pytest.raises(ECGNetError, match="training.lr is both swept and set with --set"):
        run_sweep(ROOT / "configs" / "baseline_time.yaml", tmp_path / "space.yaml", 1, runs_dir=tmp_path,
                  overrides=["training.lr=0.1"])


def test_report_only_needs_an_existing_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(SPACE)
    result = CliRunner().invoke(app, ["sweep", "-c", str(ROOT / "configs" / "baseline_time.yaml"), "--space",
                                      "space.yaml", "--trials", "0", "--study", "nosuch"])
    assert result.exit_code == 2 and "holds none" in result.stderr
    assert not (tmp_path / "runs" / "sweeps" / "nosuch").exists()  # no empty study.db left behind (an audit)


def test_a_study_re_rendered_without_its_trial_folders_still_names_the_code(tmp_path):
    """The committed sweep is re-rendered from study.db alone (the trials' runs are not committed): the
    revisions the trials trained with are kept in the study, not only in the runs' run.json."""
    from ecgnet.sweep.report import write_report

    def trial(t):
        t.set_user_attr("run_dir", str(tmp_path / "gone" / f"trial_{t.number:03d}"))
        t.set_user_attr("git_revision", "0123456789abcdef")
        t.set_user_attr("git_dirty_files", ["README.md"])
        return t.suggest_float("training.lr", 1e-4, 1e-2, log=True)

    study = optuna.create_study(direction="maximize", study_name="kept",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(trial, n_trials=2)
    summary = write_report(study, tmp_path / "report", "sqlite:///study.db")
    assert summary["code"] == {"git_revisions": ["0123456789abcdef"], "uncommitted_files": ["README.md"]}
    assert "Code: revision 0123456" in (tmp_path / "report" / "report.md").read_text()


def test_a_stepped_float_is_written_as_its_decimal():
    """best.yaml said dropout: 0.30000000000000004 (a step of 0.05 sampled by Optuna)."""
    p = Param("model.params.dropout", "float", low=0.0, high=0.5, step=0.05)
    assert p.override(0.1 * 3) == "model.params.dropout=0.3"
    assert Param("training.lr", "float", low=1e-4, high=1e-2, log=True).override(0.0019123456789012345) == \
        "training.lr=0.0019123456789"


def test_ctrl_c_in_a_trial_leaves_no_optuna_traceback():
    """Optuna logged the trial's KeyboardInterrupt with its traceback before the CLI's one line: its handlers
    drop that record (and only that one)."""
    import logging
    import sys

    from ecgnet.sweep.study import _quiet_interrupts

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_interrupts()
    handlers = logging.getLogger("optuna").handlers
    assert handlers

    def record(message, error=None):
        info = None
        if error is not None:
            try:
                raise error
            except BaseException:
                info = sys.exc_info()
        return logging.LogRecord("optuna.study._optimize", logging.WARNING, "x.py", 1, message, None, info)

    interrupted = record("Trial 3 failed with parameters: {} because of the following error: KeyboardInterrupt().",
                         KeyboardInterrupt("training stopped"))
    other = record("Trial 3 failed because of the following error: ValueError('x').", ValueError("x"))
    assert all(not h.filter(interrupted) and h.filter(other) for h in handlers)
