"""Training on a manifest from a config (no --from): the run directory as for PTB-XL (run.json with the
collection, val/ and test/ metrics by the fold convention), unknown labels masked, and DDP on two CPU
processes through the same Trainer path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from test_finetune import write_learnable

from ecgnet.training.losses import MaskedLoss, make_loss
from ecgnet.evaluation.scoring import masked_macro_auc

CONFIG = """\
name: {name}
data: {{task: superdiagnostic}}
model: {{name: time_resnet1d, params: {{widths: [8, 8]}}}}
training: {{epochs: 2, batch_size: 8, lr: 0.01, threads: 1, accelerator: cpu{extra}}}
"""


def test_masked_loss_ignores_unknown_targets():
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    target = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    loss = make_loss("bce", target.numpy())
    assert isinstance(loss, MaskedLoss)
    known = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[[0, 1, 1], [0, 0, 1]], target[[0, 1, 1], [0, 0, 1]])
    assert loss(logits, target).item() == pytest.approx(known.item())
    assert not isinstance(make_loss("bce", np.ones((2, 2))), MaskedLoss)  # complete labels: the loss as before
    y = np.array([[1, np.nan], [0, 1], [1, 0], [0, np.nan]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.5]])
    assert masked_macro_auc(y, p) == pytest.approx(1.0)


def _run(tmp_path: Path, extra: str, name: str, unknown: bool = False,
         flat: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ecgnet")
    if not exe.is_file():
        pytest.skip(f"{exe} is not installed")
    manifest = write_learnable(tmp_path)
    if flat:  # one record with a lead off (flat V1): predict withholds its calls; training says it trains on it
        import wfdb

        record = wfdb.rdrecord(str(tmp_path / "s0"))
        signal = record.p_signal.copy()
        signal[:, 6] = 0.0
        wfdb.wrsamp("s0", fs=record.fs, units=record.units, sig_name=record.sig_name, p_signal=signal,
                    fmt=record.fmt, adc_gain=record.adc_gain, baseline=record.baseline, write_dir=str(tmp_path))
    if unknown:
        table = pd.read_csv(manifest)
        table["Y"] = table["Y"].astype("Int64").astype(object)
        table.loc[::5, "Y"] = ""
        table.to_csv(manifest, index=False)
    (tmp_path / "c.yaml").write_text(CONFIG.format(name=name, extra=extra))
    return subprocess.run([str(exe), "train", "-c", "c.yaml", "--manifest", str(manifest), "--runs-dir", "runs",
                           "--n-boot", "20", "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "COLUMNS": "200", "ECGNET_CACHE": str(tmp_path / "cache")})


@pytest.mark.slow
def test_manifest_training_from_a_config_with_unknown_labels(tmp_path):
    proc = _run(tmp_path, "", "plain", unknown=True, flat=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "plain"
    info = json.loads((run / "run.json").read_text())
    said = " ".join(proc.stdout.split())
    assert ("warning: amplitudes not trusted, trained on as they are: m.csv line 2 (record 's0.hea'): flat lead: "
            "V1") in said
    first = info["collection"]["untrusted_amplitude"][0]  # (the synthetic records' equal lead ranges are listed too)
    assert first[0] == "s0.hea" and "flat lead: V1" in first[1]
    assert info["classes"] == ["X", "Y"] and info["task"] is None and info["collection"]["name"] == "m"
    assert info["split_records"]["train"] + info["split_records"]["val"] + info["split_records"]["test"] == 36
    test = json.loads((run / "test" / "metrics.json").read_text())
    assert test["n_records"] == info["split_records"]["test"] and set(test["per_class"]) == {"X", "Y"}
    assert list(pd.read_csv(run / "test" / "predictions.csv").columns) == ["ecg_id", "X", "Y"]  # as PTB-XL runs'
    assert (run / "val" / "metrics.json").is_file()


@pytest.mark.slow
def test_ddp_on_a_manifest(tmp_path):
    proc = _run(tmp_path, ", devices: 2, strategy: ddp", "ddp_manifest")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp_manifest"
    hardware = json.loads((run / "run.json").read_text())["hardware"]
    assert hardware["world_size"] == 2 and hardware["strategy"] == "DDPStrategy"
    log = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert (log["val_records"] == json.loads((run / "run.json").read_text())["split_records"]["val"]).all()


@pytest.mark.slow
def test_min_epoch_crops_gives_a_small_collection_more_steps_an_epoch(tmp_path):
    """36 records (~22 to train on) in batches of 8 are 2 steps an epoch; ≥ 64 crops an epoch are 8."""
    proc = _run(tmp_path, ", min_epoch_crops: 64", "crops")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "crops"
    assert json.loads((run / "run.json").read_text())["split_records"]["train"] < 64
    log = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert log["step"].tolist() == [8, 16]
