"""Training that survives faults: a `kill -9` mid-run leaves a run that is marked unfinished and refused,
`--resume` completes it — with the very weights of an uninterrupted run — and the same config and seed
give the same weights twice (CPU).

``benchmarks/kill_resume.py`` drives the long version (several kills, at aimed moments, on a larger
config); this is one kill of a tiny run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_CONFIG, _cache_dir
from typer.testing import CliRunner

from ecgnet.errors import ECGNetError
from ecgnet.runs import load_run

CONFIG = {**TINY_CONFIG, "name": "killed",
          "data": {**TINY_CONFIG["data"], "max_train_records": 200},
          "model": {"name": "time_resnet1d", "params": {"widths": [8, 16], "dropout": 0.1}},
          # threads fixed: a float sum split over another number of threads rounds differently
          "training": {**TINY_CONFIG["training"], "epochs": 2, "patience": 2, "num_workers": 0, "threads": 2}}


def _train(ptbxl_root, runs_dir: Path, monkeypatch) -> Path:
    from ecgnet.config import parse_config
    from ecgnet.training.fit import train

    threads = torch.get_num_threads()
    monkeypatch.chdir(runs_dir)
    try:
        run_dir, _ = train(parse_config(CONFIG, source="CONFIG"), ptbxl_root, runs_dir=runs_dir,
                           cache_dir=_cache_dir(), progress=False, n_boot=10)
    finally:
        torch.set_num_threads(threads)  # the config's threads stay with this test
    return run_dir


@pytest.fixture(scope="module")
def uninterrupted(ptbxl_root, tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        return _train(ptbxl_root, tmp_path_factory.mktemp("uninterrupted"), mp)


def _assert_complete(run_dir: Path) -> None:
    assert not (run_dir / "INCOMPLETE").exists()
    info = json.loads((run_dir / "run.json").read_text())
    assert hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest() == info["weights_sha256"]
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or ".staged-step-" in p.name]
    assert not leftovers, leftovers
    for name in ("val/predictions.csv", "test/predictions.csv", "test/metrics.json", "report.html"):
        assert (run_dir / name).is_file(), name
    load_run(run_dir)


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_weights_and_predictions(uninterrupted, ptbxl_root, tmp_path,
                                                                    monkeypatch):
    again = _train(ptbxl_root, tmp_path, monkeypatch)
    _assert_complete(again)
    assert (again / "model.safetensors").read_bytes() == (uninterrupted / "model.safetensors").read_bytes()
    for split in ("val", "test"):
        assert (again / split / "predictions.csv").read_bytes() == \
            (uninterrupted / split / "predictions.csv").read_bytes()
    logs = [pd.read_csv(r / "logs" / "metrics.csv") for r in (uninterrupted, again)]
    assert logs[0][["epoch", "train_loss", "val_macro_auc"]].equals(logs[1][["epoch", "train_loss", "val_macro_auc"]])


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None:
            pytest.fail(f"training ended (exit {proc.returncode}) before {path.name} appeared")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_completes_the_very_same_run(uninterrupted, ptbxl_root, tmp_path, monkeypatch):
    from ecgnet.cli import app

    monkeypatch.chdir(tmp_path)

    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    runs = tmp_path / "runs"
    run_dir = runs / "killed"
    env = {**os.environ, "ECGNET_DATA": str(ptbxl_root)}
    if _cache_dir():
        env["ECGNET_CACHE"] = str(_cache_dir())
    proc = subprocess.Popen([sys.executable, "-m", "ecgnet.cli", "train", "-c", str(config), "--runs-dir", str(runs),
                             "--no-progress", "--n-boot", "10"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(run_dir / "checkpoints" / "last.ckpt", proc)  # epoch 1 of 2 is checkpointed: epoch 2 runs
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    # killed: marked unfinished, refused with how to resume, nothing of a finished run present
    marker = (run_dir / "INCOMPLETE").read_text()
    assert "has not finished" in marker and "--resume" in marker
    assert not (run_dir / "run.json").exists()
    with pytest.raises(ECGNetError, match="training did not finish"):
        load_run(run_dir)
    refused = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(run_dir), "--no-progress"])
    assert refused.exit_code == 2 and "training did not finish" in refused.output
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        torch.load(ckpt, map_location="cpu", weights_only=True)  # whole, not half-written

    # resumed with the command the marker names
    command = marker.split("resume with `")[1].split("`")[0].split()
    assert command[:3] == ["ecgnet", "train", "-c"] and command[-1] == "--resume"
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, [*command[1:], "--data", str(ptbxl_root), "--no-progress", "--n-boot", "10"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    _assert_complete(run_dir)
    log = pd.read_csv(run_dir / "logs" / "metrics.csv")
    assert log["epoch"].tolist() == [0, 1]  # the killed session's epoch is kept
    info = json.loads((run_dir / "run.json").read_text())
    assert info["epochs_run"] == 2
    started, resumed = info["sessions"]  # the killed session's command is kept, not only the resume's
    assert started["command"].startswith("ecgnet train -c") and "--resume" not in started["command"]
    assert resumed["command"] == info["command"]  # (in-process here: the command line is pytest's)
    # the kill changed nothing: the epochs, the last epoch's weights and the saved (best) weights of the
    # uninterrupted run, bit for bit — the resumed epoch drew the same shuffle, crops and dropout
    columns = ["epoch", "step", "train_loss", "val_macro_auc"]
    assert log[columns].equals(pd.read_csv(uninterrupted / "logs" / "metrics.csv")[columns])
    last = [torch.load(r / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
            for r in (run_dir, uninterrupted)]
    assert last[0].keys() == last[1].keys() and all(torch.equal(last[0][k], last[1][k]) for k in last[0])
    assert (run_dir / "model.safetensors").read_bytes() == (uninterrupted / "model.safetensors").read_bytes()
    assert (run_dir / "test" / "predictions.csv").read_bytes() == \
        (uninterrupted / "test" / "predictions.csv").read_bytes()
