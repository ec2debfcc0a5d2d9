"""A full disk or a read-only output folder: one clear line naming the path, exit status 2, no traceback,
and nothing half-written or overwritten.

Tests run as root, for whom ``chmod`` makes no folder unwritable, so the faults are injected: the
system calls that a full or read-only disk fails (``mkstemp``, ``os.replace``, a write) raise the
``OSError`` the kernel would.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecgnet import fileio
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, write_json, write_text


def _raise(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(args[0]) if args else None)
    return fail


def test_a_full_disk_during_a_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "run.json"
    write_json(target, {"old": True})
    before = target.read_bytes()
    with pytest.raises(ECGNetError) as info:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b'{"new": tr')  # half the new file, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    message = str(info.value)
    assert message == f"{target}: no space left on device — nothing was overwritten"
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary file left


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left on device"),
                                          (errno.EDQUOT, "disk quota exceeded"),
                                          (errno.EROFS, "folder is read-only"),
                                          (errno.EACCES, "permission denied")])
def test_a_failed_rename_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, code, reason):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old weights")
    monkeypatch.setattr(fileio.os, "replace", _raise(code))
    with pytest.raises(ECGNetError, match=reason) as info:
        write_text(target, "new weights")
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    assert target.read_bytes() == b"old weights"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_read_only_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.tempfile, "mkstemp", _raise(errno.EROFS))
    with pytest.raises(ECGNetError, match=r"out\.csv: folder is read-only .* — nothing was overwritten"):
        write_text(tmp_path / "out.csv", "x")
    assert not list(tmp_path.iterdir())


def test_other_os_errors_are_not_disguised(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.os, "replace", _raise(errno.EIO))
    with pytest.raises(OSError) as info:
        write_text(tmp_path / "x.txt", "x")
    assert info.value.errno == errno.EIO and not isinstance(info.value, ECGNetError)


def test_save_model_on_a_full_disk_keeps_the_previous_run(untrained_run, tmp_path, monkeypatch):
    import torch

    from ecgnet.runs import load_run, save_model

    run = Path(shutil.copytree(untrained_run, tmp_path / "run"))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    model, config, info = load_run(run)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # other weights: a write that would change the files
    real = os.replace

    def full_at_weights(src, dst):
        if Path(dst).name == "model.safetensors":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", full_at_weights)
    with pytest.raises(ECGNetError, match="model.safetensors: no space left on device — nothing was overwritten"):
        save_model(run, model, config, info)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    monkeypatch.undo()
    load_run(run)  # still whole: its weights match run.json


def test_the_cli_turns_a_disk_error_into_one_line(capsys):
    """Libraries that write their own files (Lightning's CSV log) raise a plain OSError: `friendly`
    turns it into the same one line and exit status 2; other errors are not hidden."""
    import typer

    from ecgnet.cli import friendly

    @friendly
    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/logs/metrics.csv")

    @friendly
    def other():
        raise OSError(errno.ENOENT, "No such file or directory", "nowhere")

    with pytest.raises(typer.Exit) as info:
        full()
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: runs/x/logs/metrics.csv: no space left on device"
    with pytest.raises(FileNotFoundError):
        other()


def test_train_into_a_read_only_folder_fails_at_once_with_one_line(tmp_path, monkeypatch):
    """`ecgnet train` probes the run's folder before loading any data (it writes the INCOMPLETE marker only
    once data and model are known good, so a refused config leaves a finished run whole): a read-only runs
    folder is refused there, exit status 2, one line, no traceback, no file written."""
    from ecgnet.cli import app

    data = tmp_path / "data"
    data.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):  # never read: the refusal comes first
        (data / name).write_text("")
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"name": "ro", "model": {"name": "time_resnet1d"}}))
    runs = tmp_path / "runs"
    monkeypatch.setattr(fileio.tempfile, "mkstemp", _raise(errno.EROFS))
    result = CliRunner().invoke(app, ["train", "-c", str(config), "--data", str(data), "--runs-dir", str(runs),
                                      "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"{runs / 'ro' / 'INCOMPLETE'}: folder is read-only" in lines[0]
    assert not [p for p in runs.rglob("*") if p.is_file()]
