"""The study and its trial loop.

Storage is SQLite by default, ``sqlite:///<runs dir>/sweeps/<study>/study.db``, opened with
``load_if_exists``: running the same command again continues the study, and several processes started
with the same command work on one study, each taking the next trial number (see ``storage.py``).
``--trials N`` is the study's total of finished and running trials, so a rerun after an interruption
tops it up to N and parallel workers share the N.

A study remembers what it was started with (the base config file's settings, the sweep's ``--set``
overrides and the space); continuing it with anything else is an error, as resuming a run with a
changed config is.
"""

from __future__ import annotations

import json
import logging
import re
import time
import warnings
from pathlib import Path
from typing import Callable

import optuna
import yaml
from optuna.trial import TrialState

from ecgnet.config import NAME_PATTERN, load_config
from ecgnet.data.ptbxl import data_root
from ecgnet.errors import ECGNetError
from ecgnet.sweep.objective import make_objective
from ecgnet.sweep.report import describe_trial, write_report
from ecgnet.sweep.space import check_space, load_space
from ecgnet.sweep.storage import open_storage

NAME = re.compile(NAME_PATTERN)  # a study names a folder under --runs-dir, as a run does
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def study_dir(runs_dir: Path, name: str) -> Path:
    return Path(runs_dir) / "sweeps" / name


def open_study(name: str, storage: optuna.storages.RDBStorage, settings: dict, startup_trials: int = 3,
               warmup_epochs: int = 2, prune: bool = True, sampler_seed: int | None = None) -> optuna.Study:
    """Create the study, or load it when it exists (then ``settings`` must be the ones it started with)."""
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs) \
        if prune else optuna.pruners.NopPruner()
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                pruner=pruner)
    # a seeded sampler continuing a study is seeded past its trials, so it does not repeat their samples
    seed = None if sampler_seed is None else sampler_seed + len(study.trials)
    study.sampler = optuna.samplers.TPESampler(n_startup_trials=startup_trials, seed=seed)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ECGNetError(f"study '{name}' in {storage.url} minimises: it is not an ecgnet sweep")
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    else:
        changed = [k for k in ("base_config", "overrides", "space") if stored.get(k) != settings[k]]
        if changed:
            then = (f" (it was started with {' '.join('--set ' + o for o in stored.get('overrides') or []) or 'no --set'})"
                    if "overrides" in changed else "")
            raise ECGNetError(f"study '{name}' ({storage.url}) was started with a different "
                              f"{', '.join(changed).replace('base_config', 'config').replace('overrides', '--set')}"
                              f"{then}; continue it with the ones it started with, or name another --study")
    return study


class _NoInterruptTraceback(logging.Filter):
    """Ctrl-C during a trial: Optuna logs the trial's failure with the KeyboardInterrupt's traceback before
    the CLI prints its one line ('interrupted: …', with the sweep command that continues the study)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt)) and \
            "KeyboardInterrupt" not in record.getMessage()


def _quiet_interrupts() -> None:
    """On Optuna's handlers: its records come from child loggers (optuna.study._optimize), which a filter on
    the "optuna" logger itself would not see."""
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoInterruptTraceback) for f in handler.filters):
            handler.addFilter(_NoInterruptTraceback())


def run_sweep(config_path: Path, space_path: Path, trials: int, data: Path | None = None, *,
              study: str | None = None, storage: str | None = None, runs_dir: Path = Path("runs"),
              overrides: list[str] | tuple[str, ...] = (), timeout: float | None = None,
              progress: bool = True, n_boot: int = 200, prune: bool = True, startup_trials: int = 3,
              warmup_epochs: int = 2, sampler_seed: int | None = None, report_dir: Path | None = None,
              cache_dir: Path | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run trials until the study has ``trials`` (or ``timeout`` seconds have passed: no trial starts
    after that), then write the summary, report, plots and best.yaml. Returns the summary (and, under
    "report", the report's path).
    ``data``: the PTB-XL folder (default $ECGNET_DATA), looked for only when there are trials to run."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from ``log``
    _quiet_interrupts()
    overrides = list(overrides)
    base_file, base = load_config(config_path), load_config(config_path, overrides)  # both valid
    space = load_space(space_path)
    clash = sorted(set(space) & {o.partition("=")[0].strip() for o in overrides})
    if clash:
        raise ECGNetError(f"{space_path}: {', '.join(clash)} is both swept and set with --set; drop one")
    check_space(space, base.model_dump(mode="json"), space_path)
    name = study or base_file.name
    if not NAME.match(name):
        raise ECGNetError(f"--study {name!r}: letters, digits, '_', '.' and '-', not first a '.' (it names a folder)")
    if trials < 0:
        raise ECGNetError(f"--trials {trials}: must be 0 (only write the report) or more")
    directory = study_dir(runs_dir, name)
    url = storage or f"sqlite:///{directory / 'study.db'}"
    if not trials and storage is None and not (directory / "study.db").is_file():  # before the storage creates it
        raise ECGNetError(f"--trials 0 writes the report of an existing study, but {directory} holds none")
    db = open_storage(url)
    if not trials and name not in optuna.get_all_study_names(db):
        raise ECGNetError(f"--trials 0 writes the report of an existing study, but {url} has no study '{name}'")
    settings = {"config": str(config_path), "base_config": yaml.safe_load(Path(config_path).read_text()),
                "overrides": overrides, "space": {k: _spec(p) for k, p in space.items()},
                "pruner": f"median (after {startup_trials} complete trials, from epoch {warmup_epochs + 1})"
                if prune else "none",
                "sampler": f"TPE ({startup_trials} random trials first)"}
    settings = json.loads(json.dumps(settings))  # as the study's user attributes give it back
    st = open_study(name, db, settings, startup_trials, warmup_epochs, prune, sampler_seed)
    leftovers = sorted(p.name for p in directory.glob("trial_*")) if not st.trials else []
    if leftovers and trials:
        raise ECGNetError(f"{directory} holds runs of an earlier study ({', '.join(leftovers[:3])}…) but study "
                          f"'{name}' in {url} is new; remove them or name another --study")
    root = data_root(data) if trials else None
    objective = make_objective(base.model_dump(mode="json"), space, directory, root, cache_dir, progress, n_boot)
    report = (lambda s, t: log(describe_trial(s, t))) if log else None
    deadline = None if timeout is None else time.monotonic() + timeout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat, stale trials
        while deadline is None or time.monotonic() < deadline:
            optuna.storages.fail_stale_trials(st)  # a killed worker's RUNNING trials become FAIL: not counted
            if len(st.get_trials(deepcopy=False, states=COUNTED)) >= trials:
                break
            st.optimize(objective, n_trials=1, callbacks=[report] if report else None, gc_after_trial=True)
    summary = write_report(st, directory, url, [report_dir] if report_dir else [])
    return {**summary, "report": str(Path(report_dir or directory) / "report.md")}


def _spec(p) -> dict:
    """A parameter as the study records it (JSON, as its user attributes store it)."""
    if p.type == "categorical":
        return json.loads(json.dumps({"type": p.type, "choices": list(p.choices)}))
    spec = {"type": p.type, "low": p.low, "high": p.high, "log": p.log, "step": p.step}
    return {k: v for k, v in spec.items() if v is not None}
