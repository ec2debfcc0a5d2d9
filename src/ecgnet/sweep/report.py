"""What a sweep leaves behind, rendered from the study alone (its storage holds everything needed):
``best.yaml`` (the base config with the best trial's values: train it at full budget with ``ecgnet
train``), ``summary.json``, ``report.md`` (trials table, importances) and the plots
``optimization_history.png``, ``intermediate_values.png`` and ``param_importances.png``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from matplotlib.ticker import MaxNLocator
import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from ecgnet.config import apply_override, parse_config
from ecgnet.document import save_png
from ecgnet.fileio import write_json, write_text

OBJECTIVE = "the best fold-9 (val) macro AUC of the trial's run, over its epochs"
SELECTION = ("Trials are compared, pruned and selected on fold 9 (val) only. Fold 10 (test) is never read "
             "by the study; each trial's run folder holds its own fold-10 evaluation, as every run does, "
             "but that must not be used to choose between trials.")


TITLES = {"optimization_history.png": "Optimisation history",
          "intermediate_values.png": "Fold-9 macro AUC per epoch (pruned trials stop early)",
          "param_importances.png": "Parameter importance"}


def trial_value(t: FrozenTrial) -> float | None:
    """A complete trial's objective; for a pruned one, the best fold-9 AUC it reached before pruning."""
    if t.state == TrialState.COMPLETE:
        return t.value
    return max(t.intermediate_values.values()) if t.intermediate_values else None


def trial_row(t: FrozenTrial) -> dict:
    # the validation epochs the trial reported (run.json's count for a run without any, e.g. late fusion)
    epochs = len(t.intermediate_values) or t.user_attrs.get("epochs_run")
    return {"number": t.number, "state": t.state.name.lower(), "fold9_macro_auc": trial_value(t),
            "epochs": epochs, "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
            "params": t.params, "overrides": t.user_attrs.get("overrides", []),
            "run_dir": t.user_attrs.get("run_dir")}


def describe_trial(study: optuna.Study, t: FrozenTrial) -> str:
    """One line per finished trial, for the terminal."""
    row, params = trial_row(t), " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
    auc = "–" if row["fold9_macro_auc"] is None else f"{row['fold9_macro_auc']:.4f}"
    what = {"complete": f"fold-9 macro AUC {auc}", "pruned": f"pruned (best fold-9 macro AUC {auc})"}
    epochs = row["epochs"] or 0
    line = (f"trial {t.number}: {what.get(row['state'], row['state'])}, "
            f"{epochs} epoch{'' if epochs == 1 else 's'}, {row['seconds'] or 0:.0f} s · {params}")
    best = _best(study)
    return line + (f" · best: trial {best.number} ({best.value:.4f})" if best else "")


def write_report(study: optuna.Study, study_dir: Path, storage_url: str, extra_dirs: list[Path] = ()) -> dict:
    """best.yaml, summary.json, report.md and the plots, in the study's folder and each of ``extra_dirs``."""
    settings = study.user_attrs.get("settings", {})
    best = _best(study)
    importances, note = _importances(study)
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    summary = {
        "study": study.study_name, "storage": storage_url, "direction": "maximize", "objective": OBJECTIVE,
        "selection": SELECTION, "config": settings.get("config"), "overrides": settings.get("overrides", []),
        "space": settings.get("space", {}), "pruner": settings.get("pruner"), "sampler": settings.get("sampler"),
        "trials_by_state": {k: v for k, v in counts.items() if v},
        "best": None if best is None else {**trial_row(best), "config": "best.yaml"},
        "importances": importances, "importances_note": note,
        "trials": [trial_row(t) for t in study.get_trials(deepcopy=False)],
        "code": _code_revisions(study),
    }
    best_yaml = _best_config(study.study_name, settings, best)
    for directory in dict.fromkeys([Path(study_dir), *map(Path, extra_dirs)]):
        if best_yaml:
            write_text(directory / "best.yaml", best_yaml)
        summary["plots"] = _plots(study, directory, importances is not None)
        write_json(directory / "summary.json", summary)
        write_text(directory / "report.md", _markdown(summary))
    return summary


def _code_revisions(study: optuna.Study) -> dict:
    """The git revisions the trials trained with, and the uncommitted files: kept in the study itself, so a
    study re-rendered without its trials' run folders (the committed one) still names them; a trial recorded
    before they were kept is read from its run's run.json."""
    revisions, dirty = set(), set()
    for t in study.get_trials(deepcopy=False):
        info = t.user_attrs
        if "git_revision" not in info:
            try:
                info = json.loads((Path(t.user_attrs["run_dir"]) / "run.json").read_text())
            except (KeyError, OSError, ValueError):
                continue
        revisions.add(info.get("git_revision"))
        dirty.update(info.get("git_dirty_files") or [])
    return {"git_revisions": sorted(r for r in revisions if r), "uncommitted_files": sorted(dirty)}


def _best(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def _best_config(name: str, settings: dict, best: FrozenTrial | None) -> str | None:
    """The base config as written (without the sweep's --set budget) with the best trial's values."""
    if best is None or "base_config" not in settings:
        return None
    raw = settings["base_config"]
    for item in best.user_attrs.get("overrides", []):
        raw = apply_override(raw, item)
    raw = {**raw, "name": f"{name}_best"}
    parse_config(raw, source=f"best trial of study {name}")  # written as the base file is: its keys only
    sets = " ".join(f"--set {o}" for o in best.user_attrs.get("overrides", []))
    budget = " ".join(f"--set {o}" for o in settings.get("overrides", []))
    header = [f"# Best trial of sweep '{name}': trial {best.number}, fold-9 macro AUC {best.value:.4f} "
              "(selected on fold 9 only).",
              f"# = {settings.get('config')} {sets}"]
    if budget:
        header.append(f"# The trials also had {budget}; not applied here. The trial's exact config: "
                      f"{best.user_attrs.get('run_dir')}/config.yaml")
    return "\n".join(header) + "\n" + yaml.safe_dump(raw, sort_keys=False)


def _importances(study: optuna.Study) -> tuple[dict | None, str]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None, f"{len(complete)} complete trial(s): parameter importance needs at least 2."
    try:
        values = optuna.importance.get_param_importances(study, evaluator=_evaluator())
    except (ValueError, RuntimeError) as e:
        return None, f"parameter importance could not be computed: {e}"
    return ({k: round(float(v), 4) for k, v in values.items()},
            f"fANOVA (seeded) on the {len(complete)} complete trials; pruned trials are left out. With few "
            "trials it is indicative only.")


def _evaluator():
    return optuna.importance.FanovaImportanceEvaluator(seed=0)


def _plots(study: optuna.Study, directory: Path, importances: bool) -> list[str]:
    from optuna.visualization import matplotlib as vis

    plots = {"optimization_history.png": vis.plot_optimization_history,
             "intermediate_values.png": vis.plot_intermediate_values}
    if importances:
        plots["param_importances.png"] = lambda s: vis.plot_param_importances(s, evaluator=_evaluator())
    written = []
    for name, plot in plots.items():
        if name == "intermediate_values.png" and not any(t.intermediate_values for t in study.trials):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = plot(study)
        ax.set_title("", loc="center")
        ax.set_title(f"{TITLES[name]}: {study.study_name}", loc="left")
        if name == "param_importances.png":
            ax.set_xlabel("importance for fold-9 macro AUC (fANOVA)")
            if ax.get_legend():
                ax.get_legend().remove()
        else:
            ax.set_ylabel("fold-9 macro AUC")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials and epochs
        if name == "intermediate_values.png":
            ax.set_xlabel("epoch (0 = the first)")
        save_png(ax.figure, directory / name)
        written.append(name)
    return written


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _markdown(s: dict) -> str:
    keys = list(s["space"]) or sorted({k for t in s["trials"] for k in t["params"]})
    lines = [f"# Sweep `{s['study']}`", "",
             f"Base config `{s['config']}`" + (f" with `{' '.join('--set ' + o for o in s['overrides'])}`"
                                               if s["overrides"] else "") + f"; storage `{s['storage']}`.",
             f"Objective: {s['objective']} (maximised). Pruner: {s['pruner']}. Sampler: {s['sampler']}.",
             "Code: revision " + (", ".join(r[:7] for r in s["code"]["git_revisions"]) or "unknown") +
             (f" with uncommitted changes to {len(s['code']['uncommitted_files'])} file(s), listed in summary.json"
              if s["code"]["uncommitted_files"] else "") + ".", "",
             f"**{SELECTION}**", "",
             "Trials: " + ", ".join(f"{n} {state}" for state, n in s["trials_by_state"].items()) + ".", ""]
    if s["best"]:
        b = s["best"]
        lines += ["## Best trial", "",
                  f"Trial {b['number']}: fold-9 macro AUC **{b['fold9_macro_auc']:.4f}** "
                  f"({b['epochs']} epoch{'' if b['epochs'] == 1 else 's'}, {b['seconds']:.0f} s), run `{b['run_dir']}`.", "",
                  *(f"- `{k}` = {_fmt(v)}" for k, v in b["params"].items()), "",
                  "Its config, without the sweep's `--set` budget: [best.yaml](best.yaml) — "
                  "`ecgnet train -c best.yaml` trains it at full budget.", ""]
    lines += ["## Trials", "", "| trial | state | fold-9 macro AUC | epochs | seconds | " + " | ".join(
        f"`{k}`" for k in keys) + " |", "|---" * (5 + len(keys)) + "|"]
    for t in s["trials"]:
        auc = "–" if t["fold9_macro_auc"] is None else f"{t['fold9_macro_auc']:.4f}"
        seconds = "–" if t["seconds"] is None else f"{t['seconds']:.0f}"
        params = " | ".join(_fmt(t["params"][k]) if k in t["params"] else "–" for k in keys)
        lines.append(f"| {t['number']} | {t['state']} | {auc} | {t['epochs'] or '–'} | {seconds} | {params} |")
    lines += ["", "A pruned trial's AUC is the best it reached before it was stopped.", "",
              "## Parameter importance", "", s["importances_note"], ""]
    if s["importances"]:
        lines += ["| parameter | importance |", "|---|---|",
                  *(f"| `{k}` | {v:.3f} |" for k, v in s["importances"].items()), ""]
    for name in s.get("plots", []):
        lines += [f"### {TITLES[name]}", "", f"![{TITLES[name]}]({name})", ""]
    return "\n".join(lines)
