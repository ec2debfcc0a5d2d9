"""The study's storage: an Optuna RDB storage (SQLite by default) that several worker processes share.

- SQLite waits up to a minute for another worker's write instead of failing with "database is locked";
- workers started together on a new SQLite file take turns to create its tables (a file lock beside it);
- a heartbeat every minute: the RUNNING trials of a worker that died are marked FAIL after 5 minutes
  without one (``optuna.storages.fail_stale_trials``), so they do not count towards ``--trials``.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import optuna
from filelock import FileLock

from ecgnet.errors import ECGNetError

HEARTBEAT_S, GRACE_S = 60, 300


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage; workers started together on a new SQLite file take turns to create its tables."""
    lock = contextlib.nullcontext()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # workers wait for the lock
    try:
        with lock, warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except Exception as e:  # SQLAlchemy's many URL and connection errors
        raise ECGNetError(f"--storage {url}: cannot open it ({' '.join(str(e).split())[:300]})") from e
