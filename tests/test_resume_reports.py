"""The end of a training resumes on its own. Once the model is saved the run is *reports pending*: a session cut off
or failed while writing the reports (a cross-validation's cv/, a manifest run's scores, PTB-XL's val/, test/ and
report) leaves a trained model that is refused with the command that writes them, and that command (`--resume`)
writes only the reports — Lightning is not entered and run.json gains no training session."""

from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_CONFIG, _cache_dir
from test_finetune import write_learnable
from typer.testing import CliRunner

from ecgnet.errors import ECGNetError

SAVED = ("run.json", "model.safetensors", "checkpoints/sessions.json", "trained_on.txt")


def _no_training(*args, **kwargs):
    raise AssertionError("Lightning was entered again for a model that had finished training")


def _said_command(text: str) -> str:
    return " ".join(text.split()).split("without training again, with `")[1].split("`")[0]


def _saved(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in SAVED if (run / name).is_file()}


def test_a_marker_of_pending_reports_is_refused_with_the_command_that_writes_them(untrained_run, tmp_path):
    from ecgnet.runs import load_run, mark_complete
    from ecgnet.runs.directory import mark_reports_pending, reports_pending

    run = tmp_path / "untrained"
    shutil.copytree(untrained_run, run)
    command = "ecgnet train --manifest m.csv --folds 5 --set name=untrained"
    mark_reports_pending(run, {"date": "2026-01-01T00:00:00+00:00", "command": command})
    assert reports_pending(run)
    with pytest.raises(ECGNetError) as refused:
        load_run(run)
    said = " ".join(str(refused.value).split())
    assert said.startswith(f"{run}: reports pending — its model is trained and saved")
    assert _said_command(said) == f"{command} --resume"
    load_run(run, reports_pending_ok=True)  # training's own reading of the run it is writing the reports of
    (run / "model.safetensors").unlink()
    assert not reports_pending(run)  # no saved model: a training cut off, not pending reports
    with pytest.raises(ECGNetError, match="training did not finish"):
        load_run(run, reports_pending_ok=True)
    sweep = tmp_path / "trial"
    shutil.copytree(untrained_run, sweep)
    (sweep / "INCOMPLETE").write_text("training started … and has not finished\n")
    mark_reports_pending(sweep, {"command": "ecgnet sweep --study s"})  # the study goes on: the trial's marker stays
    assert not reports_pending(sweep) and "has not finished" in (sweep / "INCOMPLETE").read_text()
    mark_complete(run)
    assert not (run / "INCOMPLETE").exists()


def _cv_args(tmp_path: Path, manifest: Path) -> list[str]:
    return ["train", "--manifest", str(manifest), "-c", str(tmp_path / "c.yaml"), "--folds", "2", "--runs-dir",
            str(tmp_path / "runs"), "--n-boot", "5", "--no-progress"]


def test_a_cross_validation_whose_cv_files_failed_writes_only_them_on_resume(tmp_path, monkeypatch):
    """A full disk while cv/ was written left a trained final model marked INCOMPLETE with no way on but training
    it again; now the error names the command that writes cv/ alone, and that command does."""
    from ecgnet.cli import app
    from ecgnet.training import collection as training
    from ecgnet.training import fit

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    manifest = write_learnable(tmp_path, 12)
    (tmp_path / "c.yaml").write_text("name: cv\nseed: 0\nmodel: {name: time_resnet1d, params: {widths: [8, 8]}}\n"
                                     "training: {epochs: 1, batch_size: 6, lr: 0.01, threads: 1, accelerator: cpu}\n")
    args = _cv_args(tmp_path, manifest)
    run = tmp_path / "runs" / "cv"
    monkeypatch.setattr(sys, "argv", ["ecgnet", *args])  # the command the run records, as the CLI runs it

    def full_disk(run_dir, *rest, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "cv" / "predictions.csv"))

    with monkeypatch.context() as mp:
        mp.setattr(training, "write_cv", full_disk)
        failed = CliRunner().invoke(app, args)
    said = " ".join(failed.output.split())
    assert failed.exit_code == 2, failed.output
    assert f"{run}: writing its reports failed ({run / 'cv' / 'predictions.csv'}: no space left on device)" in said
    assert _said_command(said) == f"ecgnet {' '.join(args)} --resume"
    assert not (run / "cv" / "predictions.csv").exists() and (run / "model.safetensors").is_file()
    refused = CliRunner().invoke(app, ["predict", str(tmp_path / "s0.hea"), "--checkpoint", str(run)])
    assert refused.exit_code == 2 and "reports pending" in refused.output
    assert _said_command(refused.output) == _said_command(said)

    saved = _saved(run)
    monkeypatch.setattr(fit, "fit_lightning", _no_training)  # the folds and the final model: no training at all
    resumed = CliRunner().invoke(app, _said_command(said).split()[1:])
    assert resumed.exit_code == 0, resumed.output
    lines = [line for line in resumed.output.splitlines() if "writing only its reports" in line]
    assert lines == [f"note: {run}: the model finished training before; writing only its reports (no training)"]
    assert not (run / "INCOMPLETE").exists()
    for name in ("cv/predictions.csv", "cv/metrics.json", "cv/report.md", "val/metrics.json", "report.md"):
        assert (run / name).is_file(), name
    assert _saved(run) == saved  # the same weights, and no new training session in run.json
    assert "sessions" not in json.loads((run / "run.json").read_text())


def test_a_manifest_run_cut_off_before_its_scores_writes_only_them_on_resume(tmp_path, monkeypatch):
    """Killed after its model was saved and before its scores were written, a run trained once on a manifest was
    resumed by entering Lightning from last.ckpt again (no epochs, but a new, empty session in run.json)."""
    from ecgnet.config import parse_config
    from ecgnet.data.collections import read_manifest
    from ecgnet.runs import load_run
    from ecgnet.training import fit, once_report
    from ecgnet.training.collection import train_collection

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    collection = read_manifest(write_learnable(tmp_path, 12))
    config = parse_config({"name": "once", "seed": 0, "model": {"name": "time_resnet1d", "params": {"widths": [8, 8]}},
                           "training": {"epochs": 1, "batch_size": 6, "lr": 0.01, "threads": 1,
                                        "accelerator": "cpu"}})
    command = ["ecgnet", "train", "--manifest", "m.csv", "-c", "c.yaml", "--runs-dir", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", command)
    run = tmp_path / "runs" / "once"

    def train(**kwargs):
        return train_collection(collection, config, tmp_path / "runs", cache_dir=tmp_path / "cache", workers=1,
                                progress=False, n_boot=5, **kwargs)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(once_report, "score_once", killed)
        with pytest.raises(KeyboardInterrupt) as stopped:
            train()
    assert _said_command(str(stopped.value)) == f"{' '.join(command)} --resume"
    assert "stopped while writing its reports" in str(stopped.value)
    assert "reports pending" in (run / "INCOMPLETE").read_text() and not (run / "test" / "metrics.json").exists()

    saved = _saved(run)
    monkeypatch.setattr(fit, "fit_lightning", _no_training)
    summary = train(resume=True)
    assert not (run / "INCOMPLETE").exists() and set(summary["scores"]) == {"val", "test"}
    assert (run / "test" / "metrics.json").is_file() and (run / "report.md").is_file()
    assert _saved(run) == saved
    load_run(run)


PTBXL_CONFIG = {**TINY_CONFIG, "name": "pending", "data": {**TINY_CONFIG["data"], "max_train_records": 100},
                "model": {"name": "time_resnet1d", "params": {"widths": [8]}},
                "training": {**TINY_CONFIG["training"], "epochs": 1, "num_workers": 0, "threads": 2}}


@pytest.mark.slow
def test_a_ptbxl_run_whose_report_failed_writes_only_its_evaluation_on_resume(ptbxl_root, tmp_path, monkeypatch):
    """A PTB-XL run's own end — val/, test/ and the report — is resumable as a manifest run's is."""
    from ecgnet.config import parse_config
    from ecgnet.runs import load_run
    from ecgnet.training import fit

    config = parse_config(PTBXL_CONFIG, source="PTBXL_CONFIG")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ecgnet", "train", "-c", "pending.yaml"])
    run = tmp_path / "pending"

    def train(**kwargs):
        threads = torch.get_num_threads()
        try:
            return fit.train(config, ptbxl_root, runs_dir=tmp_path, cache_dir=_cache_dir(), progress=False,
                             n_boot=5, **kwargs)
        finally:
            torch.set_num_threads(threads)

    def damaged(*args, **kwargs):
        raise ECGNetError(f"{run / 'report.html'}: permission denied — nothing was overwritten")

    with monkeypatch.context() as mp:
        mp.setattr(fit, "write_run_report", damaged)
        with pytest.raises(ECGNetError) as failed:
            train()
    said = str(failed.value)
    assert said.startswith(f"{run}: writing its reports failed ({run / 'report.html'}: permission denied")
    assert _said_command(said) == "ecgnet train -c pending.yaml --resume"
    saved = _saved(run)
    monkeypatch.setattr(fit, "fit_lightning", _no_training)
    _, results = train(resume=True)
    assert set(results) == {"val", "test"} and (run / "report.html").is_file() and not (run / "INCOMPLETE").exists()
    assert _saved(run) == saved
    load_run(run)
