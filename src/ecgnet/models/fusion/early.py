"""Early fusion: the modalities joined at the input of one network (a ResNet1d).

Input channels, all on the time axis of the crop:
- ``time``: the standardised 12-lead signal (12 channels);
- ``frequency``: each lead's log-magnitude spectrum, batch-normalised and linearly resampled onto the
  time axis (12 channels) — the network sees spectrum and waveform side by side, position for position,
  which is what "joined at the input" can mean for representations with different axes;
- ``metadata``: the 8 metadata features broadcast as constant channels.
The spectrogram is not joined: its 12 × 33 frequency rows would dwarf the signal's 12 channels; it
enters only through intermediate and late fusion. A dropped modality's channels are zeroed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.models.encoders.resnet1d import ResNet1d
from ecgnet.models.fusion.branches import DroppableModalities, check_modalities
from ecgnet.models.registry import register

CHANNELS = {"time": 12, "frequency": 12, "metadata": 8}


class EarlyFusion(DroppableModalities, nn.Module):
    def __init__(self, num_classes: int, modalities=("time", "frequency", "metadata"),
                 widths=(64, 64, 128, 128), kernel_size: int = 5, dropout: float = 0.25):
        super().__init__()
        self.modalities = check_modalities(modalities)
        if not set(self.modalities) <= set(CHANNELS):
            raise ValueError(f"early fusion joins {', '.join(CHANNELS)}; got {list(self.modalities)}")
        self.frequency = FrequencyFrontend()  # its .norm is the time modality's standardisation too
        self.frequency_norm = nn.BatchNorm1d(12)
        self.encoder = ResNet1d(sum(CHANNELS[m] for m in self.modalities), num_classes, tuple(widths),
                                kernel_size=kernel_size, dropout=dropout)
        self.num_features = self.encoder.num_features

    def inputs(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        samples = signal.shape[-1]
        parts = []
        for m in self.modalities:
            if m == "time":
                x = self.frequency.norm(signal)
            elif m == "frequency":
                spectrum = self.frequency_norm(self.frequency(signal))
                x = F.interpolate(spectrum, size=samples, mode="linear", align_corners=True)
            else:
                x = metadata.unsqueeze(-1).expand(-1, -1, samples)
            parts.append(torch.zeros_like(x) if m in self.dropped else x)
        return torch.cat(parts, dim=1)

    def forward_features(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(self.inputs(signal, metadata))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_head(features)

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(signal, metadata))


@register("early_fusion")
def early_fusion(num_classes: int, modalities=("time", "frequency", "metadata"), widths=(64, 64, 128, 128),
                 kernel_size: int = 5, dropout: float = 0.25) -> nn.Module:
    """Time, frequency and metadata stacked as input channels of one ResNet1d."""
    return EarlyFusion(num_classes, modalities, widths, kernel_size, dropout)
