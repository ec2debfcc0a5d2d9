"""Stopping and refusing without damage: Ctrl-C during training is one line naming the resume command and
exit status 130 (Lightning alone exits 1, silently); a training refused for a bad model setting leaves a
finished run of the same name as it was; a file where a folder is needed is one line, exit 2."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from ecgnet.errors import ECGNetError
from ecgnet.training.interrupt import interruptible


def test_lightnings_silent_exit_after_ctrl_c_becomes_an_interrupt_with_a_message():
    with pytest.raises(KeyboardInterrupt, match="resume with"):
        with interruptible(SimpleNamespace(interrupted=True), "training stopped; resume with `x`"):
            raise SystemExit(1)  # what Lightning does after its graceful shutdown
    with pytest.raises(SystemExit):  # any other exit is left alone
        with interruptible(SimpleNamespace(interrupted=False), "unused"):
            raise SystemExit(3)


def test_the_cli_says_interrupted_and_exits_130():
    from ecgnet.cli import friendly

    app = typer.Typer()

    @app.command()
    @friendly
    def work():
        raise KeyboardInterrupt("training stopped; the run is incomplete — resume with `ecgnet train … --resume`")

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 130
    assert result.stderr.strip() == ("interrupted: training stopped; the run is incomplete — resume with "
                                     "`ecgnet train … --resume`")


@pytest.mark.parametrize("change, message", [
    ({"model": {"params": {"widthz": [8]}}}, "widthz"),
    # values of the wrong kind or range: one line naming them (were a raw TypeError / ValueError, exit 1)
    ({"model": {"params": {"widths": 64}}}, r"refuses its parameters \(.*\); given: .*widths=64"),
    ({"model": {"params": {"dropout": 2.0}}}, r"refuses its parameters \(dropout probability"),
    # an encoder that is not there: refused before INCOMPLETE and the new config.yaml were written over the run
    ({"training": {"init_from": "nope/encoder.safetensors"}}, "nope/encoder.safetensors: no such file")])
def test_a_refused_model_setting_leaves_the_finished_run_as_it_was(ptbxl_root, untrained_run, tmp_path, change,
                                                                   message):
    from conftest import TINY_CONFIG, _cache_dir
    from ecgnet.config import parse_config
    from ecgnet.training import fit

    run = tmp_path / "untrained"
    shutil.copytree(untrained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    raw = {**TINY_CONFIG, "name": "untrained"}
    for section, values in change.items():
        merged = {**raw[section], **values}
        if section == "model":
            merged["params"] = {**TINY_CONFIG["model"].get("params", {}), **values["params"]}
        raw[section] = merged
    bad = parse_config(raw)
    with pytest.raises(ECGNetError, match=message):
        fit.train(bad, ptbxl_root, runs_dir=tmp_path, cache_dir=_cache_dir(), progress=False, n_boot=10)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # no INCOMPLETE, same config
    assert json.loads((run / "run.json").read_text())["name"] == "untrained"


def test_a_file_where_an_output_folder_is_needed_is_one_line(tmp_path):
    from ecgnet.oserrors import disk_error

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(NotADirectoryError) as e:
        (afile / "val").mkdir(parents=True)
    message = str(disk_error(e.value))
    assert message.startswith(f"{afile / 'val'}: a file stands where a folder is needed")


def test_resume_with_nothing_to_resume_is_refused(tmp_path):
    from ecgnet.cli import app

    config = tmp_path / "c.yaml"
    config.write_text("name: never_started\nmodel: {name: time_resnet1d}\n")
    result = CliRunner().invoke(app, ["train", "-c", str(config), "--runs-dir", str(tmp_path / "runs"), "--resume"])
    assert result.exit_code == 2 and "--resume: no run at" in result.stderr and "never_started" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_train_leaves_torchs_thread_count_and_random_generators_as_they_were(ptbxl_root, untrained_run, tmp_path):
    """training.threads=1 stayed in force after train() returned (a notebook then ran everything on 1 thread),
    and train() left Python's, NumPy's and torch's generators reseeded with the run's seed (a notebook's draws
    after it repeated themselves run after run)."""
    import os
    import random

    import numpy as np
    import torch

    from conftest import TINY_CONFIG, _cache_dir
    from ecgnet.config import parse_config
    from ecgnet.training import fit

    before = torch.get_num_threads()
    bad = parse_config({**TINY_CONFIG, "name": "threads", "training": {**TINY_CONFIG["training"], "threads": 1,
                                                                        "init_from": "nope/encoder.safetensors"}})
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    seed_variable = os.environ.get("PL_GLOBAL_SEED")
    with pytest.raises(ECGNetError):  # refused after the threads were set and the run seeded: still restored
        fit.train(bad, ptbxl_root, runs_dir=tmp_path, cache_dir=_cache_dir(), progress=False, n_boot=10)
    assert torch.get_num_threads() == before
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert os.environ.get("PL_GLOBAL_SEED") == seed_variable
