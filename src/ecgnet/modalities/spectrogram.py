"""Time–frequency modality: a per-lead log-power spectrogram (short-time Fourier transform).

Why these defaults at 100 Hz: ``n_fft=64`` samples is a 0.64 s Hann window — about one beat at normal
heart rates — giving 33 bins from 0 to 50 Hz spaced 100 / 64 ≈ 1.6 Hz apart, enough to separate the
QRS band (~5–15 Hz) from the P/T-wave band (~1–5 Hz) while still locating each beat in time.
``hop=10`` samples (0.1 s) gives 26 frames for a 2.5 s crop (``center=True``: frames = samples // hop
+ 1), so each beat spans several frames. Both are parameters for other rates or trade-offs.

Computed with ``torch.stft`` (:mod:`ecgnet.modalities.dft`) on the batch (CPU or GPU, follows the
crops and any augmentation), after the per-lead standardisation of a `TimeFrontend` fitted on the
training folds. Leads become the channels of a (batch, leads, freq, frames) image for a 2D CNN. The
power is normalised by the squared window sum, so a sinusoid of amplitude A peaks at about A²/4
whatever ``n_fft``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecgnet.modalities import dft
from ecgnet.modalities.time import TimeFrontend


class SpectrogramFrontend(nn.Module):
    """(batch, leads, samples) mV → (batch, leads, n_fft // 2 + 1, samples // hop + 1) log power."""

    def __init__(self, n_leads: int = 12, n_fft: int = 64, hop: int = 10, eps: float = 1e-8):
        super().__init__()
        self.norm = TimeFrontend(n_leads)
        self.n_leads, self.n_fft, self.hop, self.eps = n_leads, n_fft, hop, eps
        self.out_channels = n_leads
        self.n_freqs = n_fft // 2 + 1
        # not persistent: derived from n_fft, so it stays out of the saved weights but follows .to(device)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def fit(self, signals: np.ndarray) -> "SpectrogramFrontend":
        """Fit the inner per-lead standardisation on (records, leads, samples) training signals."""
        self.norm.fit(signals)
        return self

    def frequencies(self, fs: float = 100) -> np.ndarray:
        """Centre frequency in Hz of each frequency row."""
        return np.fft.rfftfreq(self.n_fft, d=1.0 / fs)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = self.norm(signal)
        batch, leads, samples = x.shape
        window = self.window.to(dtype=x.dtype)
        spec = dft.stft(x.reshape(batch * leads, samples), self.n_fft, self.hop, window)
        power = (spec.abs() / window.sum()).square()
        return torch.log(power + self.eps).reshape(batch, leads, *spec.shape[-2:])
