"""One trial: sample the space → ``--set``-style overrides on the base config → one training run in the
study's folder (``<study dir>/trial_NNN``) → its best fold-9 macro AUC, the value the study maximises.

Fold 10 plays no part: the run evaluates it, as every run does, but the study never reads it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import optuna

from ecgnet.config import Config, apply_override, parse_config
from ecgnet.errors import ECGNetError
from ecgnet.runs.origin import provenance
from ecgnet.sweep.pruning import PruningCallback
from ecgnet.sweep.space import Param


def trial_name(number: int) -> str:
    return f"trial_{number:03d}"


def trial_config(base: dict, space: dict[str, Param], params: dict, number: int) -> tuple[Config, list[str]]:
    """The trial's config (``base``: the validated base config with the sweep's --set, as a dict) and the
    overrides that made it from the base, in ``--set`` form."""
    overrides = [space[key].override(value) for key, value in params.items()]
    raw = base
    for item in overrides:
        raw = apply_override(raw, item)
    raw = {**raw, "name": trial_name(number)}
    return parse_config(raw, source=f"trial {number} (--set {' --set '.join(overrides)})"), overrides


def make_objective(base: dict, space: dict[str, Param], study_dir: Path, data_root: Path,
                   cache_dir: Path | None = None, progress: bool = True,
                   n_boot: int = 200) -> Callable[[optuna.Trial], float]:
    """The study's objective; each epoch's fold-9 AUC goes to the trial (the study's pruner decides)."""
    from ecgnet.training.fit import train

    def objective(trial: optuna.Trial) -> float:
        params = {key: p.suggest(trial) for key, p in space.items()}
        config, overrides = trial_config(base, space, params, trial.number)
        run_dir = study_dir / config.name
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        origin = provenance()  # kept in the study: its report names the code even without the trials' folders
        trial.set_user_attr("git_revision", origin["git_revision"])
        trial.set_user_attr("git_dirty_files", origin["git_dirty_files"])
        if run_dir.exists():  # trial numbers are new to the study: a leftover of another study of that name
            raise ECGNetError(f"{run_dir} exists already: it is not this study's; remove it or name another --study")
        try:
            train(config, data_root, study_dir, cache_dir=cache_dir, progress=progress, n_boot=n_boot,
                  callbacks=[PruningCallback(trial)])
        finally:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the weights are in model.safetensors
        info = json.loads((run_dir / "run.json").read_text())
        for key in ("epochs_run", "best_epoch", "training_seconds"):
            if key in info:
                trial.set_user_attr(key, info[key])
        return float(info["best_val_macro_auc"])  # fold 9: the selection metric, never fold 10

    return objective
