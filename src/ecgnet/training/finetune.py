"""Fine-tuning a trained run — a bundled model by name or a run directory — on another collection.

- **Head.** The run's classes, all or some, in any order → the run's output layer is kept (their rows, in the
  collection's class order); other classes → a new output layer, initialised as a new model's. The
  output layer is found without naming it: the parameters whose shape changes with the number of
  classes.
- **Mode.** ``head``: only the output layer trains; every other layer is frozen and kept in eval mode
  (its batch-norm statistics and dropout as shipped). ``full``: every layer trains, from the shipped
  weights. The frontends' statistics (per-lead standardisation) and the metadata scaler are the run's
  own in both modes, so inputs are scaled as the model learnt them.
- **Interpolation.** With the run's own classes the saved weights are halfway between the run's and
  the fine-tuned ones (``training.finetune_alpha`` = :data:`KEPT_HEAD_ALPHA`; WiSE-FT, Wortsman et al.,
  CVPR 2022; :func:`interpolate_weights`): over ten simulated sites it ranked above both ends, zero-shot
  and the fine-tuned weights (``reports/own_data/interpolate.py``).
- **Schedule.** The run's config is the base, with :data:`SMALL_DATA` on top (small batches, fewer
  epochs, no weight averaging, early stopping on an inner validation split — see
  :mod:`ecgnet.training.collection`), then the user's ``--set`` overrides. :func:`default_mode`, the
  learning rates, α and the patience were chosen on small collections drawn from PTB-XL — fold 9's
  records (``reports/own_data/choose_defaults.py``) and a recording site the source never saw
  (``reports/own_data/shift.py``, ``interpolate.py``, ``stopping.py``) — never on the external records they
  are measured on; the rest of :data:`SMALL_DATA` (30 epochs, batch 32) was fixed beforehand. On folds of
  ~60 records that schedule is about one optimizer step per epoch; 16× the steps (``training.min_epoch_crops``)
  did not help on those sites (``reports/own_data/epoch_size.py``; docs/own_data.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ecgnet.config import Config, apply_override, parse_config
from ecgnet.data.ptbxl import MetadataScaler
from ecgnet.errors import ECGNetError
from ecgnet.models import build_model

MODES = ("head", "full")
NEW_CLASSES_MODE = "head"  # the default when the output layer is new; the source's own classes: "full" (default_mode)
SMALL_DATA = {"training.epochs": 30, "training.batch_size": 32, "training.lr": 3e-3, "training.patience": 8,
              "training.ema_decay": None, "training.swa_start_epoch": None, "training.precision": "32-true",
              "training.sampler": "shuffle", "training.auxiliary_task": None, "training.hierarchy_weight": None,
              "training.init_from": None, "data.max_train_records": None, "training.finetune_alpha": None,
              "training.distill_teacher": None,  # a distilled source's teacher scored PTB-XL, not these records
              "training.threads": None}  # the machine's, not the recipe's: distill_long_time was timed on 1 thread
HEAD_LR = 1e-2  # head-only: a linear layer on fixed features takes a larger step
KEPT_HEAD_FULL_LR = 1e-3  # every layer, from a head that already knows the classes: a smaller step
KEPT_HEAD_ALPHA = 0.5  # and the saved weights halfway back to the source's (reports/own_data/interpolate.py)
ALPHA_NEEDS_SOURCE = "training.finetune_alpha interpolates toward the run fine-tuning starts from: it needs --from"


@dataclass
class Source:
    """A trained run to start from."""

    name: str  # as given (bundled name or path)
    path: Path
    model: torch.nn.Module
    config: Config
    info: dict

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def metadata_scaler(self) -> MetadataScaler | None:
        s = self.info.get("metadata_scaler")
        return MetadataScaler(np.asarray(s["mean"]), np.asarray(s["std"])) if s else None


def load_source(name_or_path: str | Path) -> Source:
    """The run to fine-tune; an ensemble is refused naming its members, those bundled (``--from`` takes their
    name: the same weights as the member) and where the others were made from."""
    from ecgnet.runs import load_run
    from ecgnet.runs import members as ensemble
    from ecgnet.runs.bundled import bundled_names, bundled_root, resolve_checkpoint
    from ecgnet.runs.directory import weights_sha256

    path = resolve_checkpoint(name_or_path)
    model, config, info = load_run(path)
    if hasattr(model, "fit_on_validation"):  # a late-fusion run (an ensemble of member runs)
        names = ensemble.names(config)
        shipped = [n for n in names if n in bundled_names() and weights_sha256(Path(path) / ensemble.MEMBERS / n) in
                   (None, weights_sha256(bundled_root() / n))]
        others = [f"{n} ({config.model.params['members'][n]})" for n in names if n not in shipped]
        said = [f"bundled, give its name to --from: {', '.join(shipped)}"] if shipped else []
        said += [f"not bundled, give the run directory it was made from if you have it: {', '.join(others)}"] \
            if others else []
        raise ECGNetError(f"{name_or_path}: an ensemble cannot be fine-tuned; start from one of its {len(names)} "
                          f"members — {'; '.join(said) or 'none listed'}")
    return Source(str(name_or_path), Path(path), model, config, info)


def keeps_head(source: Source, classes: list[str]) -> bool:
    """Are ``classes`` among the source's own (any order, some or all)? Then its output layer is kept, the rows of
    those classes (see :func:`start_model`): a site labelling only NORM and MI keeps what the run knows of them."""
    return bool(classes) and set(classes) <= set(source.classes)


def default_mode(source: Source, classes: list[str]) -> str:
    """``full`` when the head is kept, ``head`` when it is new. Chosen on simulated sites (mean rank of
    pooled out-of-fold macro AUC): with the source's classes, full at lr 1e-3 ranked first over eight
    sites (1.6 vs 2.4 for head), most clearly on a recording site the source never saw; with new classes,
    head-only won both sites by 0.01–0.16 (``reports/own_data/shift.json``, ``choose_defaults.json``)."""
    return "full" if keeps_head(source, classes) else NEW_CLASSES_MODE


def finetune_config(source: Source, base: Config | None, overrides: list[str] | tuple[str, ...] = (),
                    mode: str = NEW_CLASSES_MODE, name: str | None = None, classes: list[str] | None = None) -> Config:
    """The config of a fine-tuning run: ``base`` (default: the source run's) with the small-data
    schedule, then ``overrides``. The model section is always the source's. ``classes``: the
    collection's; with the source's own classes, ``full`` takes the smaller :data:`KEPT_HEAD_FULL_LR`."""
    if mode not in MODES:
        raise ECGNetError(f"--mode must be one of {', '.join(MODES)}, not '{mode}'")
    raw = (base or source.config).model_dump(mode="json")
    raw["model"] = source.config.model.model_dump(mode="json")
    raw["data"]["sampling_rate"] = source.config.data.sampling_rate
    raw["data"]["crop_seconds"] = source.config.data.crop_seconds
    if base is None:
        for key, value in SMALL_DATA.items():
            raw = apply_override(raw, f"{key}={_yaml(value)}")
        if mode == "head":
            raw = apply_override(raw, f"training.lr={HEAD_LR}")
        elif classes is not None and keeps_head(source, classes):
            raw = apply_override(raw, f"training.lr={KEPT_HEAD_FULL_LR}")
        if classes is not None and keeps_head(source, classes):
            raw = apply_override(raw, f"training.finetune_alpha={KEPT_HEAD_ALPHA}")
        raw["name"] = name or f"{Path(source.name).name}_finetuned"
    for item in overrides:
        raw = apply_override(raw, item)
    return parse_config(raw, f"fine-tuning config from {source.name}" + (f" with --set {' --set '.join(overrides)}"
                                                                         if overrides else ""))


def _yaml(value) -> str:
    return "null" if value is None else str(value)


def output_keys(config: Config, n_classes: int) -> set[str]:
    """State-dict keys of the output layer: those whose shape depends on the number of classes."""
    a = build_model(config.model.name, n_classes, **config.model.params).state_dict()
    b = build_model(config.model.name, n_classes + 1, **config.model.params).state_dict()
    return {k for k in a if a[k].shape != b[k].shape}


def start_model(source: Source, classes: list[str], mode: str, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """A copy of the source model ready to fine-tune on ``classes`` in ``mode``, and what was done
    (head kept / reordered / new, trainable and frozen parameter counts) for run.json and the report."""
    torch.manual_seed(seed)
    config = source.config
    model = build_model(config.model.name, len(classes), **config.model.params)
    state = {k: v.clone() for k, v in source.model.state_dict().items()}
    head = output_keys(config, len(source.classes))
    if keeps_head(source, classes):
        order = [source.classes.index(c) for c in classes]
        for k in head:
            state[k] = state[k][order]
        what = ("kept" if order == list(range(len(source.classes))) else
                f"kept (the rows of {len(classes)} of its {len(source.classes)} classes)" if len(order) < len(source.classes)
                else "kept (rows reordered to the collection's classes)")
    else:
        fresh = model.state_dict()
        for k in head:
            state[k] = fresh[k]
        what = f"new ({len(classes)} classes; the run has {len(source.classes)})"
    model.load_state_dict(state)
    trainable = {n for n, _ in model.named_parameters() if n in head} if mode == "head" else \
        {n for n, _ in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    count = lambda names: int(sum(p.numel() for n, p in model.named_parameters() if n in names))  # noqa: E731
    frozen = {n for n, _ in model.named_parameters()} - trainable
    return model, {"from": source.name, "from_run": source.info.get("name"), "mode": mode, "head": what,
                   "output_layer": sorted(head), "trainable_parameters": count(trainable),
                   "frozen_parameters": count(frozen),
                   "frozen": "every layer but the output layer (batch-norm statistics and dropout as shipped)"
                   if mode == "head" else "nothing (frontend statistics and metadata scaling kept from the run)"}


def check_alpha(config: Config, source: Source | None, classes: list[str]) -> None:
    """``training.finetune_alpha`` interpolates toward the start: it needs a source whose output layer is kept."""
    if config.training.finetune_alpha is None:
        return
    if source is None:
        raise ECGNetError(ALPHA_NEEDS_SOURCE)
    if not keeps_head(source, classes):
        raise ECGNetError("training.finetune_alpha needs the run's own classes: a new output layer starts from random "
                          "weights, nothing to interpolate toward (set training.finetune_alpha=null)")


def interpolate_weights(model: torch.nn.Module, start: dict, alpha: float) -> torch.nn.Module:
    """``model`` with every floating-point tensor (weights and batch-norm statistics) set to
    (1 − alpha)·start + alpha·its own; integer buffers (batch counters) stay its own. In place; returns it."""
    state = model.state_dict()
    model.load_state_dict({k: (1 - alpha) * start[k].to(v) + alpha * v if v.is_floating_point() else v
                           for k, v in state.items()})
    return model


class FrozenInEval(Callback):
    """Keeps the frozen layers in eval mode while the rest trains (Lightning sets train mode each epoch)."""

    def on_train_epoch_start(self, trainer, pl_module):
        for module in pl_module.model.modules():
            params = list(module.parameters(recurse=False))
            if not any(p.requires_grad for p in params) and not list(module.children()):
                module.eval()
