"""Shared by the own-data measurements: configs of the strategies compared, PTB-XL fold-10 forgetting,
and where results go. Every script here writes its command, seed and revision beside its results."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ecgnet.config import Config, parse_config
from ecgnet.data.collections import ptbxl_collection
from ecgnet.evaluation import metrics as M

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "reports" / "own_data"
RUNS = Path(os.environ.get("OWN_DATA_RUNS", "/tmp/own_data_runs"))  # fold runs: scratch space, not committed
THREADS = int(os.environ.get("OWN_DATA_THREADS", "1"))


def scratch_config(source_config: Config, name: str, overrides: dict) -> Config:
    """The source run's architecture trained from scratch with the small-data schedule."""
    from ecgnet.training.finetune import SMALL_DATA

    raw = source_config.model_dump(mode="json")
    for key, value in {**SMALL_DATA, **overrides}.items():
        section, field = key.split(".")
        raw[section][field] = value
    raw["name"] = name
    return parse_config(raw, name)


def ptbxl_fold10_auc(model, scaler, config, classes, cache=None) -> float | None:
    """Macro AUC of ``model`` on PTB-XL fold 10 (superdiagnostic), over the classes it shares with it."""
    from ecgnet.training.collection import predict

    global _PTBXL
    if cache is None:
        if "_PTBXL" not in globals():
            c = ptbxl_collection(None, "superdiagnostic")
            _PTBXL = c.subset(c.folds == 10).load_signals(100, progress=False)
        cache = _PTBXL
    shared = [c for c in classes if c in cache.classes]
    if not shared:
        return None
    p = predict(model, cache, np.arange(len(cache)), scaler, config)
    y = cache.y[:, [cache.classes.index(c) for c in shared]]
    return float(M.macro_auc(y, p[:, [classes.index(c) for c in shared]]))


def provenance_block(seed: int) -> dict:
    from ecgnet.runs import provenance

    origin = provenance()
    module = Path(sys.argv[0]).relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
    return {"command": " ".join(["nice -n 5 .venv/bin/python -m", module, *sys.argv[1:]]),
            "seed": seed, "git_revision": origin.get("git_revision"), "date": origin.get("date"),
            "threads": THREADS, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(name: str, obj) -> Path:
    path = OUT / name
    path.write_text(json.dumps(obj, indent=1, default=plain) + "\n")
    return path


def plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))
