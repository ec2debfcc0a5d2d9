"""One modality's path, frontend → encoder → embedding, and test-time modality dropping.

Fusion models hold one :class:`Branch` per modality and only see its ``forward_features``.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.modalities.metadata import MetadataFrontend
from ecgnet.modalities.spectrogram import SpectrogramFrontend
from ecgnet.modalities.time import TimeFrontend
from ecgnet.models.encoders.cnn2d import CNN2d
from ecgnet.models.encoders.fft_transformer import FFTTransformer
from ecgnet.models.encoders.mlp import MLP
from ecgnet.models.encoders.resnet1d import ResNet1d

MODALITIES = ("time", "frequency", "spectrogram", "metadata")


class Branch(nn.Module):
    def __init__(self, modality: str, frontend: nn.Module, encoder: nn.Module):
        super().__init__()
        self.modality, self.frontend, self.encoder = modality, frontend, encoder
        self.num_features = encoder.num_features

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        x = metadata if self.modality == "metadata" else signal
        return self.encoder.forward_features(self.frontend(x))


def make_branch(modality: str) -> Branch:
    """The default encoder of each modality: the single-modality model's, but for the spectrogram CNN's narrower
    widths (16, 32, 64; spectrogram_cnn2d defaults to 32, 64, 128)."""
    if modality == "time":
        return Branch(modality, TimeFrontend(), ResNet1d(12))
    if modality == "frequency":
        return Branch(modality, FrequencyFrontend(), FFTTransformer(12))
    if modality == "spectrogram":
        return Branch(modality, SpectrogramFrontend(), CNN2d(12, widths=(16, 32, 64)))
    if modality == "metadata":
        return Branch(modality, MetadataFrontend(), MLP(8))
    raise ValueError(f"unknown modality '{modality}': choose from {', '.join(MODALITIES)}")


def check_modalities(modalities) -> tuple[str, ...]:
    modalities = tuple(modalities)
    unknown = set(modalities) - set(MODALITIES)
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names from {', '.join(MODALITIES)}, got {list(modalities)}")
    return modalities


class DroppableModalities:
    """Mixin: ``with model.drop({"time"}): ...`` evaluates the model with those modalities missing
    (how each model represents a missing modality is its own: zeroed channels, a learned token)."""

    modalities: tuple[str, ...]
    dropped: frozenset = frozenset()

    @contextlib.contextmanager
    def drop(self, modalities):
        unknown = set(modalities) - set(self.modalities)
        if unknown:
            raise ValueError(f"this model has no modality {sorted(unknown)}; it uses {list(self.modalities)}")
        previous, self.dropped = self.dropped, frozenset(modalities)
        try:
            yield self
        finally:
            self.dropped = previous
