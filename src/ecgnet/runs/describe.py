"""A run described from its files, without loading its model: what a listing shows (:func:`run_summary`), and
its modalities, fusion strategy and imbalance option in words, as the README's and comparison's tables
write them (from ``config.yaml``)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError

if TYPE_CHECKING:  # not at run time: `ecgnet models` lists runs without torch (the config imports it)
    from ecgnet.config import Config

# a cross-validated run's out-of-fold predictions (training/cv_report.py writes them): `calibrate --from-cv` fits on
# them, and an int8 export of one of its folds (RUN/cv/fold_K) leaves out the rows of its fold named there
CV_PREDICTIONS = "cv/predictions.csv"


def run_summary(run_dir: str | Path) -> dict:
    """What a listing shows of a run without loading it: task, classes, parameters, the model's registry
    name, the fold-10 macro AUC (``cv_macro_auc``: a cross-validated run's pooled out-of-fold one), where its
    thresholds were chosen and the manifest it was trained on (None for what the run's files do not say; no
    manifest: a PTB-XL run)."""
    run_dir = Path(run_dir)

    def read(name: str, parse):
        try:
            return parse((run_dir / name).read_text(errors="replace")) or {}
        except (OSError, ValueError, yaml.YAMLError):
            return {}

    info, test, config = read("run.json", json.loads), read("test/metrics.json", json.loads), \
        read("config.yaml", yaml.safe_load)
    cv = read("cv/metrics.json", json.loads)  # a cross-validated run has no test fold: its pooled out-of-fold AUC
    return {"task": info.get("task"), "classes": info.get("classes", []), "parameters": info.get("parameters"),
            "architecture": (config.get("model") or {}).get("name"),
            "test_macro_auc": (test.get("macro_auc") or {}).get("value"),
            "cv_macro_auc": ((cv.get("pooled") or {}).get("macro_auc") or {}).get("value"),
            "thresholds_from": thresholds_origin(run_dir),
            "manifest": trained_manifest(info)}


def trained_manifest(info: dict) -> str | None:
    """The manifest a run was trained on, as run.json records it (``collection.manifest``); None for a PTB-XL run."""
    collection = info.get("collection") if isinstance(info, dict) else None
    return collection.get("manifest") if isinstance(collection, dict) else None


def trained_read_limits(info: dict, run_dir: str | Path = "") -> ReadLimits:
    """What a run's records were read under (:mod:`ecgnet.data.limits`): run.json's ``collection.read_limits``,
    which training records when ``--max-seconds/--max-signals/--max-values`` changed them; else the defaults.
    Recorded values that are no limits are refused, naming ``run_dir``'s run.json."""
    collection = info.get("collection") if isinstance(info, dict) else None
    recorded = collection.get("read_limits") if isinstance(collection, dict) else None
    if recorded is None:
        return DEFAULT_LIMITS
    names = {f.name for f in fields(ReadLimits)}
    try:
        return ReadLimits(**{k: v for k, v in recorded.items() if k in names})
    except (AttributeError, TypeError, ECGNetError):
        raise ECGNetError(f"{Path(run_dir) / 'run.json'}: collection.read_limits {recorded!r} are not read limits "
                          f"({', '.join(sorted(names))}: positive numbers)") from None


def thresholds_origin(run_dir: Path) -> str | None:
    """Where the run's thresholds were chosen, in a few words for a sentence "chosen on …": "fold 9" for a
    PTB-XL run; for a run trained on a manifest, its validation rows or its cross-validation's pooled
    out-of-fold predictions (``thresholds_from`` of ``val/metrics.json``, without its caveat about
    scoring the same records). None if the run has no val/ metrics."""
    try:
        said = str(json.loads((Path(run_dir) / "val" / "metrics.json").read_text()).get("thresholds_from") or "")
    except (OSError, ValueError, AttributeError):
        return None
    if not said or said.startswith("fold 9"):
        return "fold 9"  # every PTB-XL evaluation (runs written before the field existed too)
    said = said.split(" — ")[0].split(" (")[0]
    return "the collection's validation rows" if said == "validation rows" else said


def run_config(run_dir: Path) -> Config | None:
    """The run's ``config.yaml``, loaded once per run (None if the run has none)."""
    from ecgnet.config import load_config

    path = Path(run_dir) / "config.yaml"
    return load_config(path) if path.is_file() else None


MODALITIES = ("time", "frequency", "spectrogram", "metadata")


def run_modalities(config: Config | None) -> list[str] | None:
    """The modalities a run sees, from its config: a fusion model's ``modalities`` (its builder's
    default if the config leaves them out) or late-fusion ``members``, else the single modality that a
    unimodal model's name starts with (None if unknown or no config)."""
    from ecgnet.models.registry import default_params

    if config is None:
        return None
    model = config.model
    params = {**default_params(model.name), **model.params}
    listed = params.get("modalities") or list(params.get("members") or {})
    if listed:
        return [m for m in MODALITIES if m in listed]
    head = model.name.split("_")[0]
    return [head] if head in MODALITIES else None


ABBREVIATIONS = {"time": "t", "frequency": "f", "spectrogram": "s", "metadata": "m"}


def run_strategy(config: Config | None) -> str | None:
    """The run's fusion strategy in a few words, as the README's tables write it: "time only",
    "frequency (+ phase) only", "early (t+f+m)", "intermediate, gated", "late, stacking (t+s)" — the
    modality set in brackets where a fusion model does not see all four (None if no config)."""
    from ecgnet.models.registry import default_params

    modalities = run_modalities(config)
    if config is None or not modalities:
        return None
    params = {**default_params(config.model.name), **config.model.params}
    family = config.model.name.split("_")[0]
    if len(modalities) == 1 and family not in ("early", "intermediate", "late"):
        return f"{modalities[0]}{' (+ phase)' if params.get('phase') else ''} only"
    subset = "" if len(modalities) == len(MODALITIES) else f" ({'+'.join(ABBREVIATIONS[m] for m in modalities)})"
    variant = params.get("mode") or params.get("method")
    return f"{family}{', ' + str(variant) if variant and family != 'early' else ''}{subset}"


IMBALANCE = {"weighted_bce": "weighted BCE", "focal": "focal loss", "oversample": "oversampling"}


def run_imbalance(config: Config | None) -> str | None:
    """The run's class-imbalance option in words ("none" for plain BCE with shuffling; None if no config)."""
    if config is None:
        return None
    training = config.training
    chosen = [IMBALANCE[o] for o in (training.loss, training.sampler) if o in IMBALANCE]
    return " + ".join(chosen) or "none"
