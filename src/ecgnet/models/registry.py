"""Build models by name from a config: ``build_model("time_resnet1d", num_classes=5, widths=[64, 128])``.

Each entry is a small function, registered with ``@register(name)`` in the module that defines the
model (``unimodal.py``, ``fusion/…``), that assembles frontends, encoders and fusion; its keyword
arguments are the config's ``model.params``, so an unknown parameter is reported as a config error.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from ecgnet.errors import ECGNetError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def add(fn):
        known = _REGISTRY.get(name)
        where = (fn.__module__, fn.__qualname__)
        if known is not None and (known.__module__, known.__qualname__) != where:  # not a module reloaded: a clash
            raise ValueError(f"model name '{name}' is registered twice ({known.__module__}.{known.__qualname__} and "
                             f"{'.'.join(where)})")
        _REGISTRY[name] = fn
        return fn
    return add


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, num_classes: int, **params) -> nn.Module:
    if name not in _REGISTRY:
        raise ECGNetError(f"unknown model '{name}': choose one of {', '.join(list_models())}")
    builder = _REGISTRY[name]
    allowed = set(inspect.signature(builder).parameters) - {"num_classes"}
    unknown = set(params) - allowed
    if unknown:
        raise ECGNetError(f"model '{name}' has no parameter(s) {', '.join(sorted(unknown))}; "
                          f"it takes: {', '.join(sorted(allowed))}")
    try:
        return builder(num_classes=num_classes, **params)
    except (ValueError, TypeError) as e:  # a value of the wrong kind or range (dropout 2, widths 64)
        raise ECGNetError(f"model '{name}' refuses its parameters ({' '.join(str(e).split())}); "
                          f"given: {', '.join(f'{k}={v!r}' for k, v in sorted(params.items())) or 'none'}") from e


def default_params(name: str) -> dict:
    """The parameters a model is built with when its config leaves them out."""
    if name not in _REGISTRY:
        raise ECGNetError(f"unknown model '{name}': choose one of {', '.join(list_models())}")
    return {k: p.default for k, p in inspect.signature(_REGISTRY[name]).parameters.items()
            if k != "num_classes" and p.default is not inspect.Parameter.empty}
