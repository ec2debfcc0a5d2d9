"""The terminal shows progress and results, not the dependencies' chatter — and real warnings still show."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ecgnet.quiet import quiet_dependencies

CHATTER = ("Tip:", "litlogger", "GPU available", "Deprecat", "Pandas4Warning", "LeafSpec", "inplace", "many workers")
TRAIN_CONFIG = """\
name: quiet_tiny
data: {max_train_records: 64}
model: {name: time_resnet1d, params: {widths: [8]}}
training: {epochs: 1, batch_size: 32}
"""


def ecgnet(*args, cwd):
    exe = Path(sys.executable).with_name("ecgnet")
    if not exe.is_file():
        pytest.skip(f"{exe} is not installed")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"})


def assert_quiet(proc):
    assert proc.returncode == 0, proc.stderr
    for word in CHATTER:
        assert word not in proc.stdout + proc.stderr, f"{word!r} printed:\n{proc.stderr}"


def test_predict_is_quiet(untrained_run, write_record, tmp_path):
    path, _ = write_record()
    assert_quiet(ecgnet("predict", path, "--checkpoint", untrained_run, cwd=tmp_path))


@pytest.mark.slow
def test_train_is_quiet(ptbxl_root, tmp_path):
    (tmp_path / "c.yaml").write_text(TRAIN_CONFIG)
    proc = ecgnet("train", "-c", tmp_path / "c.yaml", "--runs-dir", tmp_path / "runs", "--no-progress",
                  "--n-boot", "20", "--data", ptbxl_root, cwd=tmp_path)
    assert_quiet(proc)
    assert "quiet_tiny — fold 10" in proc.stdout


def test_real_warnings_still_show():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_dependencies()
        warnings.warn("ecgnet's own warning", UserWarning)
        warnings.warn_explicit("a dependency's runtime problem", RuntimeWarning, "x.py", 1, module="wfdb.io")
        warnings.warn_explicit("silenced", DeprecationWarning, "x.py", 1, module="wfdb.io._header")
        warnings.warn("Experiment logs directory /r/logs exists and is not empty. Previous log files in this "
                      "directory will be deleted when the new ones are saved!")  # on --resume: not so here
    messages = [str(w.message) for w in caught]
    assert messages == ["ecgnet's own warning", "a dependency's runtime problem"]


def test_importing_ecgnet_leaves_a_chosen_matplotlib_backend_alone(tmp_path):
    """A notebook's backend was switched to Agg by importing ecgnet.explain (figures stopped showing inline);
    without a choice, ECGNet's figures still go through Agg."""
    import subprocess
    import sys

    def backend(code: str) -> str:
        env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
        return subprocess.run([sys.executable, "-c", code + "; import matplotlib; print(matplotlib.get_backend())"],
                              capture_output=True, text=True, check=True, env=env, cwd=tmp_path).stdout.strip()

    assert backend("import matplotlib; matplotlib.use('svg'); import ecgnet.explain") == "svg"
    assert backend("import ecgnet.plotting").lower() == "agg"
