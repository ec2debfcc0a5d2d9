"""Frequency modality: the per-lead magnitude spectrum of the (standardised) crop.

Why: rhythm and morphology show up as spectral structure — the heart rate and its harmonics, the QRS
energy at roughly 5–15 Hz, the slower P/T waves at 1–5 Hz, baseline wander below 0.5 Hz. A 2.5 s crop
at 100 Hz gives 126 rfft bins from 0 to 50 Hz (Nyquist) spaced 1 / 2.5 s = 0.4 Hz apart, fine enough
to separate the heart-rate fundamental (~1–2 Hz) from its harmonics.

The FFT is computed in torch on the batch (:mod:`ecgnet.modalities.dft`), so it runs on CPU or GPU
and sees exactly the crops (and any augmentation) the model is trained on; nothing is precomputed.
The per-lead standardisation (a `TimeFrontend`, fitted on the training folds) is applied first, so
voltage differences between leads stay comparable and the saved weights carry the statistics.

The spectrum is amplitude-normalised (divided by the window's sum) so a sinusoid of amplitude A gives
a peak of about A/2 whatever the crop length; a different length still changes the bin spacing, so a
model should be evaluated on windows of the length it was trained on (as windowed inference does).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecgnet.modalities import dft
from ecgnet.modalities.time import TimeFrontend


class FrequencyFrontend(nn.Module):
    """(batch, leads, samples) mV → (batch, leads, samples // 2 + 1) log magnitude.

    With ``phase=True`` the cosine and sine of each bin's phase are appended as channels:
    (batch, 3 × leads, bins), ordered [log magnitude, cos phase, sin phase].
    """

    def __init__(self, n_leads: int = 12, phase: bool = False, eps: float = 1e-4):
        super().__init__()
        self.norm = TimeFrontend(n_leads)
        self.n_leads, self.phase, self.eps = n_leads, phase, eps
        self.out_channels = n_leads * (3 if phase else 1)

    def fit(self, signals: np.ndarray) -> "FrequencyFrontend":
        """Fit the inner per-lead standardisation on (records, leads, samples) training signals."""
        self.norm.fit(signals)
        return self

    @staticmethod
    def frequencies(samples: int, fs: float = 100) -> np.ndarray:
        """Centre frequency in Hz of each output bin for a crop of ``samples`` at ``fs`` Hz."""
        return np.fft.rfftfreq(samples, d=1.0 / fs)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = self.norm(signal)
        window = torch.hann_window(x.shape[-1], dtype=x.dtype, device=x.device)
        spectrum = dft.rfft(x * window) / window.sum()
        out = torch.log(spectrum.abs() + self.eps)
        if not self.phase:
            return out
        angle = torch.angle(spectrum)
        return torch.cat([out, torch.cos(angle), torch.sin(angle)], dim=1)
