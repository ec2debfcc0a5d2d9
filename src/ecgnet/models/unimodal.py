"""One modality's frontend followed by one encoder: the single-branch classifier.

Every ECGNet model takes ``(signal, metadata)`` — signal (batch, 12, samples) in mV, metadata
(batch, 8) — and returns logits, so training, evaluation and `predict` treat all models alike.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.modalities.metadata import MetadataFrontend
from ecgnet.modalities.spectrogram import SpectrogramFrontend
from ecgnet.modalities.time import TimeFrontend
from ecgnet.models.encoders.cnn2d import CNN2d
from ecgnet.models.encoders.fft_transformer import FFTTransformer
from ecgnet.models.encoders.inception1d import Inception1d
from ecgnet.models.encoders.mlp import MLP
from ecgnet.models.encoders.resnet1d import ResNet1d
from ecgnet.models.encoders.s4d1d import S4D1d
from ecgnet.models.encoders.transformer1d import Transformer1d
from ecgnet.models.encoders.xresnet1d import XResNet1d
from ecgnet.models.registry import register


class UnimodalModel(nn.Module):
    def __init__(self, frontend: nn.Module, encoder: nn.Module, modality: str = "time"):
        super().__init__()
        self.frontend, self.encoder, self.modalities = frontend, encoder, (modality,)
        self.num_features = encoder.num_features

    def forward_features(self, signal: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        x = metadata if self.modalities == ("metadata",) else signal
        return self.encoder.forward_features(self.frontend(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_head(features)

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(signal, metadata))


@register("time_resnet1d")
def time_resnet1d(num_classes: int, widths=(64, 64, 128, 128), blocks_per_stage: int = 1,
                  kernel_size: int = 5, dropout: float = 0.25, center: bool = False) -> nn.Module:
    """The time-domain baseline: standardised raw signal (each window centred if ``center``) → ResNet1d."""
    encoder = ResNet1d(12, num_classes, tuple(widths), blocks_per_stage, kernel_size, dropout=dropout)
    return UnimodalModel(TimeFrontend(12, center=center), encoder)


@register("time_xresnet1d")
def time_xresnet1d(num_classes: int, widths=(64, 96, 160, 224), blocks=(2, 2, 2, 2), expansion: int = 1,
                   kernel_size: int = 5, se: bool = False, dropout: float = 0.25, center: bool = False) -> nn.Module:
    """A stronger time-domain encoder: standardised raw signal (each window centred if ``center``) →
    XResNet1d (3-conv stem, avg-pool shortcuts, zero-initialised last BN, optional squeeze-and-excitation).
    Defaults: 198 M MACs per 10 s ECG (7 windows of 2.5 s), 1.73 M parameters."""
    encoder = XResNet1d(12, num_classes, tuple(widths), tuple(blocks), expansion, kernel_size, se=se,
                        dropout=dropout)
    return UnimodalModel(TimeFrontend(12, center=center), encoder)


@register("time_inception1d")
def time_inception1d(num_classes: int, depth: int = 6, filters: int = 32, bottleneck: int = 32,
                     kernels=(5, 9, 19), downsample: bool = True, stem_width: int = 32, dropout: float = 0.25,
                     center: bool = False) -> nn.Module:
    """A stronger time-domain encoder: standardised raw signal (each window centred if ``center``) →
    Inception1d (strided stem, InceptionTime modules, residual every 3, time halved between residual groups).
    Defaults: 165 M MACs per 10 s ECG (7 windows of 2.5 s), 0.25 M parameters."""
    encoder = Inception1d(12, num_classes, depth, filters, bottleneck, tuple(kernels), downsample=downsample,
                          stem_width=stem_width, dropout=dropout)
    return UnimodalModel(TimeFrontend(12, center=center), encoder)


@register("time_s4d")
def time_s4d(num_classes: int, d_model: int = 128, d_state: int = 64, n_layers: int = 4, bidirectional: bool = True,
             block_dropout: float = 0.1, dropout: float = 0.25, center: bool = False) -> nn.Module:
    """A state-space time-domain encoder: standardised raw signal (each window centred if ``center``) →
    S4D1d (strided stem, pre-norm residual blocks of diagonal SSM convolutions over the whole window, S4D-Lin
    init, bidirectional by default). Defaults: 176 M MACs per 10 s ECG (7 windows of 2.5 s; counted: the
    convolutions, the FFTs and the kernels' Vandermonde products, not element-wise work), 0.28 M parameters."""
    encoder = S4D1d(12, num_classes, d_model, d_state, n_layers, bidirectional, block_dropout=block_dropout,
                    dropout=dropout)
    return UnimodalModel(TimeFrontend(12, center=center), encoder)


@register("time_transformer")
def time_transformer(num_classes: int, d_model: int = 96, n_heads: int = 4, n_layers: int = 4,
                     block_dropout: float = 0.1, dropout: float = 0.25, center: bool = False) -> nn.Module:
    """A Transformer time-domain encoder: standardised raw signal (each window centred if ``center``) →
    Transformer1d (two stride-2 convolutions make 40 ms tokens, sinusoidal positions, pre-norm encoder layers).
    Defaults: 208 M MACs per 10 s ECG (7 windows of 2.5 s), 0.47 M parameters."""
    encoder = Transformer1d(12, num_classes, d_model, n_heads, n_layers, block_dropout=block_dropout,
                            dropout=dropout)
    return UnimodalModel(TimeFrontend(12, center=center), encoder)


@register("frequency_transformer")
def frequency_transformer(num_classes: int, phase: bool = False, d_model: int = 64, n_layers: int = 2,
                          n_heads: int = 4, dropout: float = 0.1) -> nn.Module:
    """The frequency branch: standardised signal → per-lead log-magnitude spectrum (optionally with
    phase) → FFTTransformer over the frequency bins."""
    frontend = FrequencyFrontend(12, phase=phase)
    encoder = FFTTransformer(frontend.out_channels, num_classes, d_model=d_model, n_heads=n_heads,
                             n_layers=n_layers, dropout=dropout)
    return UnimodalModel(frontend, encoder, modality="frequency")


@register("spectrogram_cnn2d")
def spectrogram_cnn2d(num_classes: int, n_fft: int = 64, hop: int = 10, widths=(32, 64, 128),
                      dropout: float = 0.25) -> nn.Module:
    """The time–frequency branch: standardised signal → per-lead log-power STFT → CNN2d, leads as channels."""
    frontend = SpectrogramFrontend(12, n_fft=n_fft, hop=hop)
    return UnimodalModel(frontend, CNN2d(frontend.out_channels, num_classes, tuple(widths), dropout),
                         modality="spectrogram")


@register("metadata_mlp")
def metadata_mlp(num_classes: int, hidden=(64, 64), dropout: float = 0.1) -> nn.Module:
    """The metadata-only baseline: age, sex, height, weight and missing flags → MLP."""
    frontend = MetadataFrontend()
    return UnimodalModel(frontend, MLP(frontend.out_features, num_classes, tuple(hidden), dropout), modality="metadata")
