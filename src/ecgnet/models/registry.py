"""Build models by name from a config: ``build_model("time_resnet1d", num_classes=5, widths=[64, 128])``.

Each entry is a small function that assembles frontends, encoders and fusion; its keyword arguments
are the config's ``model.params``, so an unknown parameter is reported as a config error.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from ecgnet.errors import ECGNetError
from ecgnet.modalities.time import TimeFrontend
from ecgnet.models.encoders.resnet1d import ResNet1d
from ecgnet.models.unimodal import UnimodalModel

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def add(fn):
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
    return builder(num_classes=num_classes, **params)


@register("time_resnet1d")
def time_resnet1d(num_classes: int, widths=(64, 64, 128, 128), blocks_per_stage: int = 1,
                  kernel_size: int = 5, dropout: float = 0.25) -> nn.Module:
    """The time-domain baseline: standardised raw signal → ResNet1d."""
    encoder = ResNet1d(12, num_classes, tuple(widths), blocks_per_stage, kernel_size, dropout=dropout)
    return UnimodalModel(TimeFrontend(12), encoder)
