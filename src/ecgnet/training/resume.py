"""What ``ecgnet train --resume`` needs to carry on as if training had never stopped.

Lightning's checkpoint holds the weights, optimiser, schedule, loop counters and callbacks' states,
but not three things that :class:`ResumeState` adds to every checkpoint:

* the random number generators (torch, numpy, Python, CUDA, and the oversampler's own generator) as
  they were when the checkpoint was written, restored when training restarts: the crops, shuffles,
  augmentations and dropout after a resume are the ones an uninterrupted run draws, so on the CPU the
  resumed run ends with the same weights, bit for bit. Single-process training only: a distributed
  run's checkpoint holds rank 0's generators, and its processes restart from their seeds;
* whether early stopping had decided to stop (Lightning does not keep ``trainer.should_stop``, so a
  run killed after its last checkpoint would train one epoch more);
* the epoch history (one row per finished epoch: training loss, fold-9 macro AUC, seconds). Lightning's
  CSV log keeps rows in memory between flushes and starts its file afresh on resume, so after a kill
  it lacks epochs; the run's ``logs/metrics.csv`` is written from this history at the end.

:func:`record_session` keeps, beside the checkpoints, who started each training session of the run
(date, command, revision): run.json's own provenance is the session that finished, and its ``sessions``
the whole story, the command that started the run first.

:func:`check_versions` refuses to resume checkpoints that another ecgnet version wrote.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, write_json

KEY = "ecgnet_resume_state"
VERSIONS = "versions.json"
SESSIONS = "sessions.json"
SESSION_KEYS = ("date", "command", "git_revision", "git_dirty")


def rng_states(generators: list[torch.Generator]) -> dict:
    """Every generator's state, as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "generators": [g.get_state() for g in generators]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, generators: list[torch.Generator]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(_tuples(states["python"]))
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    for g, state in zip(generators, states["generators"]):
        g.set_state(state)
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _tuples(x):
    """random.setstate wants the tuples that getstate gave (a checkpoint may hand back lists)."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


class ResumeState(Callback):
    """Keeps the generators, the early-stopping decision and the epoch history in each checkpoint;
    ``generators``: torch generators of the training's own (e.g. the oversampler's)."""

    def __init__(self, generators: list[torch.Generator] | tuple = ()):
        self.generators = list(generators)
        self.history: list[dict] = []

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # written at the end of an epoch (ModelCheckpoint runs after the module's and early stopping's
        # hooks), so the epoch's metrics are all logged; both checkpoints of an epoch give one row
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step,
               **{k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if torch.numel(v) == 1}}
        self.history = [r for r in self.history if r["epoch"] != row["epoch"]] + [row]
        checkpoint[KEY] = {"rng": rng_states(self.generators), "should_stop": bool(trainer.should_stop),
                           "history": [dict(r) for r in self.history]}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(KEY)  # absent from checkpoints written before this callback
        if state is None:
            return
        self.history = [dict(r) for r in state["history"]]
        trainer.should_stop = trainer.should_stop or state["should_stop"]
        # now, not in a later hook: resuming, Lightning makes the first epoch's data iterator (drawing
        # its shuffle, prefetching a batch of random crops) before any training hook runs
        if trainer.world_size == 1:
            set_rng_states(state["rng"], self.generators)

    def write_history(self, path: Path) -> pd.DataFrame:
        """The epoch log, one row per finished epoch of every session, written to ``path``."""
        history = pd.DataFrame(self.history)
        with atomic_path(path) as tmp:
            history.to_csv(tmp, index=False)
        return history


def versions() -> dict:
    from ecgnet import __version__

    return {"ecgnet": __version__, "torch": torch.__version__}


def record_versions(checkpoints: Path) -> None:
    write_json(checkpoints / VERSIONS, versions())


def check_versions(checkpoints: Path) -> None:
    """Checkpoints hold the training state of the code that wrote them: resume them with that version."""
    path = checkpoints / VERSIONS
    if not path.is_file():
        return  # checkpoints from before this check
    try:
        before = json.loads(path.read_text())["ecgnet"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ECGNetError(f"{path}: unreadable ({type(e).__name__}); train afresh without --resume") from e
    now = versions()["ecgnet"]
    if before != now:
        raise ECGNetError(f"{checkpoints}: written by ecgnet {before}, this is ecgnet {now} — cannot resume "
                          f"another version's checkpoints (nothing was changed); resume with ecgnet {before}, "
                          "or train afresh without --resume")


def record_session(checkpoints: Path, origin: dict, resuming: bool) -> list[dict]:
    """This session (its date, command and revision, from ``origin``) after the earlier ones when
    ``resuming``, alone otherwise; written to ``checkpoints/sessions.json`` and returned."""
    earlier = []
    if resuming:
        try:
            earlier = json.loads((checkpoints / SESSIONS).read_text())
        except (OSError, ValueError):
            earlier = [{"date": None, "command": None, "note": "checkpoints from before sessions were recorded"}]
    sessions = [*earlier, {key: origin.get(key) for key in SESSION_KEYS}]
    write_json(checkpoints / SESSIONS, sessions)
    return sessions
