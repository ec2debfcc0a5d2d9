"""Distributed training: DDP on 2 CPU processes (gloo) trains a tiny run whose fold-9 metric covers
exactly the fold's records, and the run records what it ran on; the merge of processes' rows keeps each
record once and refuses a missing one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgnet.training.distributed import merge_ranks

FOLD_9_RECORDS = 2109  # rhythm records of fold 9: odd, so 2 processes need one padding duplicate
CONFIG = """\
name: ddp_tiny
data: {task: rhythm, max_train_records: 256}
model: {name: time_resnet1d, params: {widths: [8, 8]}}
training: {epochs: 2, batch_size: 32, accelerator: cpu, devices: 2, strategy: ddp, threads: 1}
"""


def test_merge_ranks_drops_padding_duplicates_and_orders_by_index():
    # 5 records over 2 processes: the sampler pads rank 1 with record 0 again
    index = np.array([[0, 2, 4], [1, 3, 0]])
    p = index[..., None] * 0.1
    merged_index, merged_p = merge_ranks(index, index, p, expected=5)
    np.testing.assert_array_equal(merged_index.ravel(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(merged_p.ravel(), [0.0, 0.1, 0.2, 0.3, 0.4])


def test_merge_ranks_refuses_a_missing_record():
    with pytest.raises(RuntimeError, match="4 distinct records of 5"):
        merge_ranks(np.array([0, 1, 2, 3, 3]), np.zeros(5), expected=5)


@pytest.mark.slow
@pytest.mark.usefixtures("ptbxl_root")
def test_ddp_on_two_cpu_processes_validates_on_exactly_fold_9(ptbxl_root, tmp_path):
    exe = Path(sys.executable).with_name("ecgnet")
    if not exe.is_file():
        pytest.skip(f"{exe} is not installed")
    (tmp_path / "ddp.yaml").write_text(CONFIG)
    proc = subprocess.run([str(exe), "train", "-c", "ddp.yaml", "--data", str(ptbxl_root), "--runs-dir", "runs",
                           "--n-boot", "20", "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "ddp_tiny"
    hardware = json.loads((run_dir / "run.json").read_text())["hardware"]
    assert hardware["world_size"] == 2 and hardware["accelerator"] == "cpu"
    assert hardware["strategy"] == "DDPStrategy"

    log = pd.read_csv(run_dir / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert (log["val_records"] == FOLD_9_RECORDS).all() and len(log) == 2
    # the metric the two processes agreed on is the single-process fold-9 AUC of the selected weights
    val = json.loads((run_dir / "val" / "metrics.json").read_text())
    assert val["n_records"] == FOLD_9_RECORDS
    assert log["val_macro_auc"].max() == pytest.approx(val["macro_auc"]["value"], abs=1e-6)
