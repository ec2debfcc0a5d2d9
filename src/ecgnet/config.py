"""An experiment, as written in ``configs/<name>.yaml``, validated: an unknown key or a bad value is an
error naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecgnet.data.augment import NAMES as AUGMENTATIONS
from ecgnet.data.ptbxl import TASKS
from ecgnet.errors import ECGNetError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf/.nan: never a setting


class DataConfig(_Strict):
    task: Literal[TASKS] = "superdiagnostic"  # type: ignore[valid-type]
    sampling_rate: Literal[100, 500] = 100
    crop_seconds: float | None = Field(2.5, gt=0, le=10, description="random training crops; None = whole records "
                                       "(one under 10 s at its own length: training/length_batches.py)")
    stride_seconds: float = Field(1.25, gt=0, description="stride of the evaluation windows")
    aggregate: Literal["max", "mean"] = "max"
    max_train_records: int | None = Field(None, gt=0, description="subsample the training folds (tests)")
    augment: list[Literal[AUGMENTATIONS]] = Field(  # type: ignore[valid-type]
        [], description="training-time acquisition augmentations (ecgnet.data.augment)")
    in_memory: bool = Field(False, description="copy each split's signals into memory; False (as fast, "
                            "~800 MB less per process) reads them from the memory-mapped cache (benchmarks/bench_scaling.py)")

    @property
    def window(self) -> int | None:
        """Training crop and evaluation window in samples; None = the whole record."""
        return int(self.crop_seconds * self.sampling_rate) if self.crop_seconds else None

    @property
    def stride(self) -> int:
        """Step between evaluation windows, in samples."""
        return int(self.stride_seconds * self.sampling_rate)

    @model_validator(mode="after")
    def _whole_samples(self):
        if (self.window is not None and self.window < 1) or self.stride < 1:
            raise ValueError(f"crop_seconds and stride_seconds must be at least one sample (1/{self.sampling_rate} s)")
        return self


class ModelConfig(_Strict):
    name: str
    params: dict[str, Any] = {}


class TrainingConfig(_Strict):
    epochs: int = Field(20, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-2, gt=0, description="peak learning rate of the one-cycle schedule")
    weight_decay: float = Field(1e-2, ge=0)
    patience: int = Field(8, gt=0, description="early stopping on fold-9 macro AUC, in epochs")
    loss: Literal["bce", "weighted_bce", "focal"] = "bce"
    focal_gamma: float = Field(2.0, ge=0)
    sampler: Literal["shuffle", "oversample"] = "shuffle"
    min_epoch_crops: int | None = Field(None, gt=0, description="an epoch draws at least this many training "
                                        "crops: a smaller collection is passed through several times an epoch, "
                                        "each pass a new shuffle (training/sampling.py); None = one pass")
    num_workers: int = Field(0, ge=0)
    threads: int | None = Field(None, gt=0, description="torch CPU threads; None = torch's default")
    # Where and how to run (Lightning's Trainer arguments; see docs/performance.md, "Training on several GPUs or nodes").
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = Field(1, description="devices per node; batch_size is per device")
    num_nodes: int = Field(1, gt=0)
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"] = "auto"
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = Field(
        "32-true", description="bf16-mixed on GPUs that support it; 16-mixed is GPU only")
    accumulate_grad_batches: int = Field(1, gt=0)
    ema_decay: float | None = Field(None, gt=0, lt=1, description="validate, select and save an exponential "
                                    "moving average of the weights (updated every step); None = the weights as trained")
    init_from: str | None = Field(None, description="encoder weights from `ecgnet pretrain` (RUN/encoder.safetensors) "
                                  "loaded before training; the head starts fresh")
    # Levers of the accuracy work (reports/levers/): each off by default.
    swa_start_epoch: int | None = Field(None, gt=0, description="validate, select and save the plain average of "
                                        "the weights at the end of each epoch from this one on (training/swa.py)")
    mixup_alpha: float | None = Field(None, gt=0, description="mix each batch with a shuffled copy of itself, "
                                      "λ ~ Beta(α, α) (training/soft_targets.py); None = off")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="binary targets y·(1 − ε) + ε/2")
    auxiliary_task: Literal[TASKS] | None = Field(  # type: ignore[valid-type]
        None, description="a second head learns this label set from the same records during training only "
        "(training/auxiliary.py), e.g. all 71 statements for the superclasses")
    auxiliary_weight: float = Field(1.0, gt=0, description="loss = main + auxiliary_weight · auxiliary")
    cutmix_alpha: float | None = Field(None, gt=0, description="paste a random time segment of a shuffled copy "
                                       "of each batch, λ ~ Beta(α, α) (training/soft_targets.py); None = off")
    hierarchy_weight: float | None = Field(None, gt=0, description="penalise the auxiliary head's subclasses "
                                           "more probable than their superclass (training/hierarchy.py); None = off")
    # Knowledge distillation (ecgnet.distill): learn a teacher run's probabilities as well as the labels.
    distill_teacher: str | None = Field(None, description="teacher run directory (its soft targets are computed "
                                        "once and cached) or a folder of cached soft targets; None = off")
    distill_weight: float = Field(0.5, ge=0, le=1, description="α: loss = (1 − α)·hard + α·T²·BCE(student, teacher) at T")
    distill_temperature: float = Field(1.0, gt=0, description="T: both sides' probabilities σ(logit / T)")
    distill_target: Literal["record", "window"] = Field(
        "window", description="a crop learns the teacher's record probability, or its probability at the "
        "evaluation window nearest the crop")
    distill_unlabelled: str | None = Field(None, description="a manifest of unlabelled records (only its record "
                                           "column is read) that join the training crops with the teacher's soft "
                                           "targets only (distill/unlabelled.py); None = off")
    # Fine-tuning from a shipped run (ecgnet.training.finetune): where between it and the fine-tuned weights to stop.
    finetune_alpha: float | None = Field(None, gt=0, le=1, description="the saved weights are (1 − α)·start + "
                                         "α·fine-tuned (every floating-point tensor; WiSE-FT); needs --from and the "
                                         "run's own classes; None = the fine-tuned weights (α = 1)")

    @model_validator(mode="after")
    def _compatible_options(self):  # devices ≥ 1, and options that exclude each other
        if isinstance(self.devices, int) and self.devices < 1:
            raise ValueError("devices must be at least 1 (or 'auto')")
        if self.ema_decay is not None and self.swa_start_epoch is not None:
            raise ValueError("ema_decay and swa_start_epoch both average the weights: choose one")
        if self.mixup_alpha is not None and self.cutmix_alpha is not None:
            raise ValueError("mixup_alpha and cutmix_alpha both mix batches: choose one")
        if self.hierarchy_weight is not None and self.auxiliary_task not in ("subdiagnostic", "diagnostic"):
            raise ValueError("hierarchy_weight needs auxiliary_task subdiagnostic or diagnostic (the finer "
                             "diagnostic labels under data.task superdiagnostic)")
        if self.distill_teacher is not None and self.auxiliary_task is not None:
            raise ValueError("distill_teacher and auxiliary_task both extend the training targets: choose one")
        if self.distill_unlabelled is not None and self.distill_teacher is None:
            raise ValueError("distill_unlabelled needs distill_teacher: unlabelled records learn only its soft targets")
        if self.distill_unlabelled is not None and self.sampler == "oversample":
            raise ValueError("distill_unlabelled with sampler oversample: unlabelled records have no class to "
                             "oversample by; use the shuffled order")
        return self


NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"  # a run's folder under --runs-dir: never '.', '..' or hidden


class Config(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    seed: int = Field(0, ge=0, lt=2**32, description="what numpy and Lightning accept (else Lightning uses 0)")
    data: DataConfig = DataConfig()
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()

    @model_validator(mode="after")
    def _hierarchy_under_superclasses(self):
        if self.training.hierarchy_weight is not None and self.data.task != "superdiagnostic":
            raise ValueError(f"training.hierarchy_weight needs data.task superdiagnostic (the superclasses above "
                             f"training.auxiliary_task), not '{self.data.task}'")
        return self


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config file, with ``overrides`` (``section.key=value``, value in YAML) applied before validation."""
    return parse_config(*read_with_overrides(path, overrides))


def read_with_overrides(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, str]:
    """(the YAML file's content with ``--set`` overrides applied, the source to name in messages)."""
    path = Path(path)
    shipped = sorted(p.name for p in (Path(__file__).parent / "models_bundled").iterdir() if p.is_dir())
    if not path.is_file() and (path.stem in shipped or path.parent.name == "configs" and not path.parent.is_dir()):
        name = path.stem if path.stem in shipped else "NAME"  # a wheel has no configs/: say what it has
        raise ECGNetError(f"{path}: no such config file (the repository's configs/ are not installed with the "
                          f"package: `ecgnet models --config {name} > {name}.yaml` writes a shipped model's — "
                          f"{', '.join(shipped)})")
    raw = read_yaml(path, "config file")
    for item in overrides:
        raw = apply_override(raw, item)
    return raw, f"{path} with --set {' --set '.join(overrides)}" if overrides else str(path)


class _RepeatedKey(yaml.YAMLError):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"line {line}: '{key}' is given twice (also on line {first}); YAML would keep the last "
                         "silently: keep one")


def _unique_keys(loader: type) -> type:
    """``loader`` refusing a mapping that gives a key twice (PyYAML keeps the last without a word). Checked on the
    document as written, before it is constructed: merge keys (``<<: *anchor``) then stay YAML's own business."""
    class Unique(loader):
        def construct_document(self, node):
            todo, seen_nodes = [node], set()
            while todo:
                n = todo.pop()
                if id(n) in seen_nodes:  # an alias is the same node again
                    continue
                seen_nodes.add(id(n))
                if isinstance(n, yaml.MappingNode):
                    lines: dict = {}
                    for key, value in n.value:
                        if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                            if key.value in lines:
                                raise _RepeatedKey(key.value, key.start_mark.line + 1, lines[key.value])
                            lines[key.value] = key.start_mark.line + 1
                        todo += [key, value]
                elif isinstance(n, yaml.SequenceNode):
                    todo += n.value
            return super().construct_document(node)

    return Unique


_STRINGS, _SAFE = _unique_keys(yaml.BaseLoader), _unique_keys(yaml.SafeLoader)


def read_yaml(path: Path, what: str, strings: bool = False) -> Any:
    """A YAML file's content; a missing file, bad YAML or bad text, or a key given twice in one mapping, is one
    ECGNetError naming the file. ``strings``: every scalar as written (YAML 1.1 reads the code ``0101`` as 65,
    ``NO`` as False, ``1.10`` as 1.1; ``null`` and ``~`` stay text too)."""
    if not path.is_file():
        raise ECGNetError(f"{path}: no such {what}")
    try:
        return yaml.load(path.read_text(), Loader=_STRINGS if strings else _SAFE)
    except _RepeatedKey as e:
        raise ECGNetError(f"{path} {e}") from None
    except yaml.YAMLError as e:
        raise ECGNetError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from e
    except UnicodeDecodeError as e:
        raise ECGNetError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from e
    except RecursionError as e:
        raise ECGNetError(f"{path}: not a {what} (YAML nested too deeply)") from e


def apply_override(raw: Any, item: str) -> dict:
    """``a.b=value`` → a copy of ``raw`` with ``raw['a']['b'] = yaml(value)``; sections are created."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ECGNetError(f"--set {item}: expected KEY=VALUE with a dotted key, e.g. training.epochs=2")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise ECGNetError(f"--set {item}: the value is not valid YAML ({' '.join(str(e).split())})") from e
    out = dict(raw) if isinstance(raw, dict) else {}
    node, parts = out, key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = parsed
    return out


def parse_config(raw: Any, source: str = "config", schema: type[BaseModel] = Config, what: str = "config"):
    """``raw`` validated as ``schema`` (a training :class:`Config` unless told otherwise); every problem
    named in one ECGNetError."""
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(_printable, err['loc'])) or '(top)'}: {_message(err)}"
                             + (_did_you_mean(schema, err["loc"]) if err["type"] == "extra_forbidden" else "")
                             for err in e.errors())
        other = _other_kind(raw, schema)
        raise ECGNetError(f"{source}: {other}" if other else f"{source}: invalid {what} — {problems}") from e


def _message(err: dict) -> str:
    if err["type"] == "string_pattern_mismatch" and err["loc"] == ("name",):
        return f"{str(err['input'])[:40]!r} is not a run name (letters, digits, '_', '-' and '.'; not first a '.')"
    return err["msg"]


def _other_kind(raw: Any, schema: type[BaseModel]) -> str:
    """When ``raw`` is another command's file — a pretraining config to train, a training config to pretrain,
    a sweep's search space — which one, said instead of its foreign keys; "" when it is none of them."""
    if not isinstance(raw, dict):
        return ""
    if schema is Config and "simclr" in raw:
        return "a pretraining config, not a training one: run it with `ecgnet pretrain -c`"
    if raw and all("." in str(key) for key in raw):
        return "a sweep's search space (dotted keys), not a config: give it to `ecgnet sweep --space`"
    if schema is not Config and "simclr" not in raw:
        try:
            Config.model_validate(raw)
        except ValidationError:
            return ""
        return "a training config, not a pretraining one: run it with `ecgnet train -c`"
    return ""


def _did_you_mean(schema: type[BaseModel], loc: tuple) -> str:
    """For a key the schema does not have: the schema's keys of the same name elsewhere, or close spellings."""
    import difflib

    keys = _dotted_keys(schema)
    bad = ".".join(map(str, loc))
    same_name = [k for k in keys if k.split(".")[-1] == str(loc[-1])]
    close = same_name or difflib.get_close_matches(bad, keys, n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _dotted_keys(schema: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of ``schema`` as a dotted path (sections' keys included)."""
    out = []
    for name, field in schema.model_fields.items():
        out.append(prefix + name)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _dotted_keys(kind, f"{prefix}{name}.")
    return out


def _printable(key) -> str:
    """A key as written, or quoted with escapes when it holds line breaks or control characters."""
    return str(key) if str(key).isprintable() else ascii(str(key))


def dump_config(config: BaseModel) -> str:
    """A validated config (training or pretraining) as the YAML a run saves beside its outputs."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
