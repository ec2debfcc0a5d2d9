"""The search-space file: a YAML mapping from a dotted config key (as ``--set`` takes it) to a distribution.

    training.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
    training.weight_decay: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
    model.params.dropout: {type: float, low: 0.0, high: 0.5, step: 0.05}
    model.params.dim: {type: int, low: 64, high: 256, step: 64}
    model.params.mode: {type: categorical, choices: [concat, gated]}

``float`` and ``int`` take ``low``, ``high`` (inclusive), optional ``log`` (default false) or ``step``;
``categorical`` takes ``choices``: scalars, or lists/mappings (e.g. ``modalities``), which the study
stores as YAML text. Every problem is an :class:`ECGNetError` naming the file and the key; a key the
config does not have is reported by the config's own validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ecgnet.config import apply_override, parse_config, read_yaml
from ecgnet.errors import ECGNetError

TYPES = ("float", "int", "categorical")
FIELDS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
          "categorical": {"choices"}}


@dataclass(frozen=True)
class Param:
    key: str  # dotted config key, e.g. training.lr
    type: str  # float, int or categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @property
    def encoded(self) -> bool:
        """Categorical choices that are lists or mappings are stored in the study as YAML text."""
        return any(not _scalar(c) for c in self.choices)

    def suggest(self, trial) -> Any:
        """The trial's value for this key (as the study stores it)."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.key, [to_yaml(c) if self.encoded else c for c in self.choices])

    def override(self, value: Any) -> str:
        """``key=value`` for :func:`ecgnet.config.apply_override`, from a value as the study stores it (a
        float to 12 significant digits: a step of 0.05 samples 0.30000000000000004, written 0.3)."""
        if isinstance(value, float):
            value = float(f"{value:.12g}")
        return f"{self.key}={value if self.encoded else to_yaml(value)}"

    def examples(self) -> list:
        """Values that span the range: what the space check tries against the config."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]


def to_yaml(value: Any) -> str:
    """A value as one line of YAML that reads back as the same value (``'yes'`` stays a string)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def load_space(path: str | Path) -> dict[str, Param]:
    """The space file's parameters by key; errors name the file and the key."""
    path = Path(path)
    raw = read_yaml(path, "search-space file")
    if not isinstance(raw, dict) or not raw:
        raise ECGNetError(f"{path}: expected a mapping of config keys to distributions, e.g. "
                          "'training.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}'")
    return {str(key): _param(path, str(key), spec) for key, spec in raw.items()}


def _param(path: Path, key: str, spec: Any) -> Param:
    where = f"{path}: {key}"
    if not key.strip() or any(not part for part in key.split(".")):
        raise ECGNetError(f"{where}: expected a dotted config key, e.g. training.lr")
    if not isinstance(spec, dict):
        raise ECGNetError(f"{where}: expected a mapping with 'type' (float, int or categorical), got {spec!r}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ECGNetError(f"{where}: unknown type {kind!r}; use float, int or categorical")
    unknown = set(spec) - FIELDS[kind] - {"type"}
    if unknown:
        raise ECGNetError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} for type {kind} "
                          f"(it takes {', '.join(sorted(FIELDS[kind]))})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ECGNetError(f"{where}: categorical needs a non-empty list 'choices'")
        if len({to_yaml(c) for c in choices}) != len(choices):
            raise ECGNetError(f"{where}: 'choices' holds the same value twice")
        return Param(key, kind, choices=tuple(choices))
    return _numeric(where, key, kind, spec)


def _numeric(where: str, key: str, kind: str, spec: dict) -> Param:
    number = int if kind == "int" else (int, float)
    for field in ("low", "high"):
        v = spec.get(field)
        if field not in spec or isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v):
            raise ECGNetError(f"{where}: '{field}' must be {'an integer' if kind == 'int' else 'a finite number'}, "
                              f"got {v!r}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if low >= high:  # low == high: every trial the same value, trained again and again
        raise ECGNetError(f"{where}: low ({low}) must be below high ({high}) — a fixed value belongs in the "
                          "config, not the search space")
    if not isinstance(log, bool):
        raise ECGNetError(f"{where}: 'log' must be true or false, got {log!r}")
    if log and low <= 0:
        raise ECGNetError(f"{where}: a log scale needs low > 0, got {low}")
    if step is not None:
        if log:
            raise ECGNetError(f"{where}: 'step' and 'log: true' cannot be combined")
        if isinstance(step, bool) or not isinstance(step, number) or not step > 0:
            raise ECGNetError(f"{where}: 'step' must be a positive {'integer' if kind == 'int' else 'number'}, "
                              f"got {step!r}")
    if kind == "float":
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Param(key, kind, low, high, log, step)


def check_space(space: dict[str, Param], raw_config: dict, path: str | Path) -> None:
    """Every key takes every example value (the range's ends, each choice) in the base config: a key the
    config does not have, or a value it or the model refuses, is an error naming the space file and the
    key. (A model parameter's value is checked by building the model: no data, a fraction of a second.)"""
    from ecgnet.models import build_model
    from ecgnet.models.registry import default_params

    for key, p in space.items():
        for value in p.examples():
            override = f"{key}={to_yaml(value)}"
            where = f"{path}: {key} (as --set {override})"
            config = parse_config(apply_override(raw_config, override), source=where)
            if not key.startswith("model.params."):
                continue
            name, allowed = key.split(".")[2], default_params(config.model.name)
            if name not in allowed:
                raise ECGNetError(f"{path}: {key}: model '{config.model.name}' has no parameter '{name}'; "
                                  f"it takes: {', '.join(sorted(allowed))}")
            try:
                build_model(config.model.name, 5, **config.model.params)
            except ECGNetError as e:
                raise ECGNetError(f"{where}: {e}") from e
