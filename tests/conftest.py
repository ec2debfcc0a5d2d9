"""Shared fixtures: the real PTB-XL folder (or a skip), synthetic WFDB records, one tiny trained run.

Tests that need the real data take ``ptbxl_root`` (directly or through ``tiny_run`` / ``ptbxl_tables``
/ ``ptbxl_superdiagnostic``); they are marked ``data`` automatically and skipped, with the reason,
when ``ECGNET_DATA`` is not set.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgnet.data.signals import LEADS

DATA_FIXTURES = {"ptbxl_root", "ptbxl_tables", "ptbxl_superdiagnostic", "tiny_run"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)


# --- the real dataset -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def ptbxl_root() -> Path:
    """The real PTB-XL 1.0.1 folder from $ECGNET_DATA; the test is skipped when it is not set."""
    path = os.environ.get("ECGNET_DATA")
    if not path:
        pytest.skip("needs the real PTB-XL data: set ECGNET_DATA to the PTB-XL folder (make test does)")
    root = Path(path)
    if not (root / "ptbxl_database.csv").is_file():
        pytest.fail(f"ECGNET_DATA={path} is set but holds no ptbxl_database.csv")
    return root


def _cache_dir() -> Path | None:
    path = os.environ.get("ECGNET_CACHE")
    return Path(path) if path else None


@pytest.fixture(scope="session")
def ptbxl_tables(ptbxl_root):
    """(database, statements) of the real PTB-XL."""
    from ecgnet.data import ptbxl

    return ptbxl.read_database(ptbxl_root), ptbxl.read_statements(ptbxl_root)


@pytest.fixture(scope="session")
def ptbxl_superdiagnostic(ptbxl_root):
    """The PTBXL dataset object for the superdiagnostic task (signal cache from $ECGNET_CACHE)."""
    from ecgnet.data.dataset import PTBXL

    return PTBXL(ptbxl_root, "superdiagnostic", 100, _cache_dir())


# --- synthetic WFDB records -----------------------------------------------------------------

def write_wfdb(directory: Path, name: str = "rec", leads=LEADS, fs: int = 100, samples: int | None = None,
               nan: bool = False, units: str = "mV", seed: int = 0) -> tuple[Path, np.ndarray]:
    """Write a WFDB record (format 16, 1 µV resolution) → (header path, signal as (leads, samples) in
    the given units). ``samples`` defaults to 10 s; ``nan`` puts a missing sample in the 2nd lead."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    samples = samples or 10 * fs
    rng = np.random.default_rng(seed)
    # distinct per-lead offsets so a lead mix-up is visible; rounded to the 1 µV ADC step
    signal = np.round(rng.normal(0, 0.3, (len(leads), samples)) + np.arange(len(leads))[:, None] * 0.1, 3)
    written = signal.copy()
    if nan:
        written[1, samples // 2] = np.nan
    wfdb.wrsamp(name, fs=fs, units=[units] * len(leads), sig_name=list(leads), p_signal=written.T,
                fmt=["16"] * len(leads), adc_gain=[1000.0] * len(leads), baseline=[0] * len(leads),
                write_dir=str(directory))
    return directory / f"{name}.hea", signal


@pytest.fixture
def write_record(tmp_path):
    """``write_record(name="rec", leads=..., fs=100, samples=None, nan=False, directory=tmp_path)`` →
    (header path, written signal (leads, samples))."""

    def write(name: str = "rec", directory: Path | None = None, **kwargs):
        return write_wfdb(directory or tmp_path, name, **kwargs)

    return write


# --- one tiny trained run, shared by the training, predict and CLI tests --------------------

TINY_CONFIG = {
    "name": "tiny_time",
    "seed": 0,
    "data": {"task": "superdiagnostic", "max_train_records": 600},
    "model": {"name": "time_resnet1d", "params": {"widths": [16, 32], "dropout": 0.1}},
    "training": {"epochs": 3, "batch_size": 64, "lr": 0.01, "patience": 3},
}


@dataclass(frozen=True)
class TinyRun:
    run_dir: Path
    results: dict  # metrics per split as returned by train()
    config: object


@pytest.fixture(scope="session")
def tiny_run(ptbxl_root, tmp_path_factory) -> TinyRun:
    """A ~1-minute training run on 600 records of folds 1–8 (real data), in a temporary runs folder."""
    from ecgnet.config import parse_config
    from ecgnet.training.fit import train

    config = parse_config(TINY_CONFIG, source="TINY_CONFIG")
    runs_dir = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs_dir)  # anything Lightning writes relative to the working directory stays here
        run_dir, results = train(config, ptbxl_root, runs_dir=runs_dir, cache_dir=_cache_dir(),
                                 progress=False, n_boot=50)
    return TinyRun(run_dir, results, config)


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory) -> Path:
    """A run directory holding an untrained tiny model (no data needed): for `predict` input errors."""
    import torch

    from ecgnet.config import parse_config
    from ecgnet.models import build_model
    from ecgnet.runs import save_model

    config = parse_config({**TINY_CONFIG, "name": "untrained"}, source="untrained")
    torch.manual_seed(0)
    model = build_model(config.model.name, 5, **config.model.params).eval()
    info = {"name": config.name, "task": "superdiagnostic", "classes": ["CD", "HYP", "MI", "NORM", "STTC"],
            "seed": 0}
    run_dir = tmp_path_factory.mktemp("untrained") / config.name
    save_model(run_dir, model, config, info)
    return run_dir


@pytest.fixture
def upload_dir(tmp_path, monkeypatch):
    """Where the per-request temporary folders go during the test (to check they are removed)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
