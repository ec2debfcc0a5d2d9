"""An ensemble run is one self-contained folder: its members are described inside it and their weights
stored in its model.safetensors, so it loads after being copied anywhere, its member runs gone
(ecgnet.runs.members). Runs saved before members/ existed still load from the member runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ecgnet.config import parse_config
from ecgnet.errors import ECGNetError
from ecgnet.runs import load_run, save_model
from ecgnet.runs.directory import build_run_model
from ecgnet.runs.members import MEMBERS


def _ensemble(tmp_path, untrained_run, method="average"):
    members = {"a": str(untrained_run), "b": str(untrained_run)}
    config = parse_config({"name": "ens", "model": {"name": "late_fusion",
                                                    "params": {"members": members, "method": method}}})
    model = build_run_model(config, 5).eval()  # members loaded from their runs, with weights
    info = {"name": "ens", "task": "superdiagnostic", "classes": ["CD", "HYP", "MI", "NORM", "STTC"]}
    run_dir = tmp_path / "runs" / "ens"
    save_model(run_dir, model, config, info)
    return run_dir, model


def test_an_ensemble_copied_anywhere_loads_without_its_members(tmp_path, untrained_run, monkeypatch):
    member = tmp_path / "runs" / "member"
    shutil.copytree(untrained_run, member)
    run_dir, built = _ensemble(tmp_path, member)
    assert sorted(p.name for p in (run_dir / MEMBERS).iterdir()) == ["a", "b"]
    assert (run_dir / MEMBERS / "a" / "config.yaml").read_bytes() == (member / "config.yaml").read_bytes()
    elsewhere = tmp_path / "moved" / "ensemble"
    shutil.copytree(run_dir, elsewhere)
    shutil.rmtree(tmp_path / "runs")  # the member runs are gone
    monkeypatch.chdir(tmp_path)
    model, config, _ = load_run(elsewhere)
    x, meta = torch.randn(3, 12, 1000), torch.zeros(3, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model(x, meta).numpy(), built(x, meta).numpy(), atol=1e-6)


def test_an_ensemble_saved_before_members_existed_loads_from_its_member_runs(tmp_path, untrained_run):
    run_dir, built = _ensemble(tmp_path, untrained_run, method="stacking")
    shutil.rmtree(run_dir / MEMBERS)
    model, _, _ = load_run(run_dir)
    x, meta = torch.randn(2, 12, 1000), torch.zeros(2, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model(x, meta).numpy(), built(x, meta).numpy(), atol=1e-6)


def test_a_missing_member_is_named(tmp_path, untrained_run):
    run_dir, _ = _ensemble(tmp_path, untrained_run)
    shutil.rmtree(run_dir / MEMBERS / "b")
    config_text = (run_dir / "config.yaml").read_text().replace(str(untrained_run), str(tmp_path / "nowhere"))
    (run_dir / "config.yaml").write_text(config_text)
    with pytest.raises(ECGNetError, match=r"ensemble member 'b': .*members/b is missing and .*nowhere"):
        load_run(run_dir)


def test_late_fusion_takes_built_members_only():
    from ecgnet.models import build_model

    from ecgnet.errors import ECGNetError

    with pytest.raises(ECGNetError, match="must be built"):
        build_model("late_fusion", 5, members={"time": "runs/long_time"})


def test_an_ensemble_without_its_weights_file_is_built_from_its_member_runs(tmp_path, untrained_run):
    """The descriptions in members/ carry no weights: without the run's model.safetensors (an averaging
    ensemble whose file was not kept), the members are loaded from their runs, weights included."""
    from ecgnet.config import load_config

    run_dir, built = _ensemble(tmp_path, untrained_run)
    (run_dir / "model.safetensors").unlink()
    model = build_run_model(load_config(run_dir / "config.yaml"), 5, run_dir).eval()
    x, meta = torch.randn(2, 12, 1000), torch.zeros(2, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model(x, meta).numpy(), built(x, meta).numpy(), atol=1e-6)
