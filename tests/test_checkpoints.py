"""Resume checkpoints: written atomically, best and last in step, the random generators and epoch
history kept, and refused when another ecgnet version wrote them (nothing overwritten)."""

from __future__ import annotations

import errno
import json
import os
import random

import numpy as np
import pytest
import torch

from ecgnet import fileio
from ecgnet.errors import ECGNetError
from ecgnet.training.checkpoint_io import AtomicCheckpointIO, clear_checkpoints
from ecgnet.training.resume import check_versions, record_versions, rng_states, set_rng_states, versions


def _ckpt(step: int) -> dict:
    return {"global_step": step, "epoch": step // 10, "state_dict": {"w": torch.full((3,), float(step))}}


def _step(path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def test_best_takes_effect_only_with_the_last_checkpoint_of_its_step(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_ckpt(10), tmp_path / "best.ckpt")
    io.save_checkpoint(_ckpt(10), tmp_path / "last.ckpt")
    assert _step(tmp_path / "best.ckpt") == 10
    io.save_checkpoint(_ckpt(20), tmp_path / "best.ckpt")  # a new best; killed before last.ckpt
    assert _step(tmp_path / "best.ckpt") == 10, "best.ckpt moved ahead of last.ckpt"
    io.load_checkpoint(tmp_path / "last.ckpt")  # the resume: last is at step 10, the staged best is dropped
    assert _step(tmp_path / "best.ckpt") == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_staged_best_of_the_last_step_is_committed_on_resume(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_ckpt(20), tmp_path / "best.ckpt")
    import ecgnet.training.checkpoint_io as cio

    monkeypatch.setattr(cio, "commit_staged", lambda folder, step: None)  # killed after last, before the rename
    io.save_checkpoint(_ckpt(20), tmp_path / "last.ckpt")
    monkeypatch.undo()
    assert not (tmp_path / "best.ckpt").exists()
    io.load_checkpoint(tmp_path / "last.ckpt")
    assert _step(tmp_path / "best.ckpt") == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_checkpoint_write_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_ckpt(10), tmp_path / "last.ckpt")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(ECGNetError, match="last.ckpt: no space left on device — nothing was overwritten"):
        io.save_checkpoint(_ckpt(20), tmp_path / "last.ckpt")
    assert _step(tmp_path / "last.ckpt") == 10 and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_resuming_removes_what_killed_writes_left(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_ckpt(10), tmp_path / "last.ckpt")
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"half a checkpoint")
    io.load_checkpoint(tmp_path / "last.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    (tmp_path / "best.ckpt.staged-step-30").write_bytes(b"x")
    (tmp_path / "config.yaml").write_text("kept")
    clear_checkpoints(tmp_path)  # a fresh start
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_the_random_generators_are_restored_exactly():
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    states = rng_states([generator])
    states = torch.load(_roundtrip(states), weights_only=True)  # as a resume reads it
    first = (torch.rand(4), np.random.randint(0, 10**6, 4), random.random(), torch.rand(4, generator=generator))
    torch.manual_seed(9), np.random.seed(9), random.seed(9), generator.manual_seed(9)
    set_rng_states(states, [generator])
    again = (torch.rand(4), np.random.randint(0, 10**6, 4), random.random(), torch.rand(4, generator=generator))
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all() and first[2] == again[2]
    assert torch.equal(first[3], again[3])


def _roundtrip(obj):
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_resume_refuses_checkpoints_of_another_version(tmp_path):
    record_versions(tmp_path)
    assert json.loads((tmp_path / "versions.json").read_text()) == versions()
    check_versions(tmp_path)  # the same version resumes
    (tmp_path / "versions.json").write_text(json.dumps({"ecgnet": "0.0.1", "torch": "1.0"}))
    with pytest.raises(ECGNetError, match=r"written by ecgnet 0\.0\.1, this is ecgnet .* cannot resume") as info:
        check_versions(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "versions.json").unlink()
    check_versions(tmp_path)  # checkpoints from before the record: no check


def test_train_refuses_another_versions_checkpoints_before_writing_anything(tmp_path):
    """The refusal comes before the INCOMPLETE marker and the config are written: a finished run that
    is resumed by mistake with another ecgnet is left exactly as it was."""
    from conftest import TINY_CONFIG
    from ecgnet.config import parse_config
    from ecgnet.training.fit import train

    config = parse_config(TINY_CONFIG, source="tiny")
    checkpoints = tmp_path / config.name / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"never read")
    (checkpoints / "versions.json").write_text(json.dumps({"ecgnet": "0.0.1", "torch": torch.__version__}))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ECGNetError, match="written by ecgnet 0.0.1"):
        train(config, tmp_path / "no-data-needed", runs_dir=tmp_path, resume=True, progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
