"""The Fourier transforms of the spectral frontends, and the form they take in an exported graph.

In torch, :func:`rfft` and :func:`stft` are ``torch.fft.rfft`` and ``torch.stft`` (pocketfft), as the
models were trained. While a model is exported (``torch.compiler.is_exporting()``, e.g. by
:mod:`ecgnet.export`), they are written instead as products with a cosine/sine basis computed in float64:
a matrix product for the spectrum, a strided convolution for the spectrogram (reflect padding as
``torch.stft(center=True)``). The reason is accuracy. ONNX Runtime's own DFT and STFT operators (what
the exporter emits for the FFTs) are much less precise in float32 than pocketfft, and the frontends take
the log of small magnitudes, which turns absolute errors into large ones: on 100 fold-10 windows the
spectrogram's log power differed from torch by up to 13 (bins near the 1e-8 floor; 10 % of entries by
more than 1e-2) and the spectrum's log magnitude by up to 0.03. Against the float64 transform, the basis
product is off by at most 2e-4 in log magnitude, pocketfft float32 by 2e-3 (spectrogram: 5e-3), so the
exported graph is as close to torch as torch's own float32 rounding allows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, n // 2 + 1) float64 real and imaginary parts of the one-sided DFT: e^{-2πi k f / n}."""
    angle = 2 * np.pi * np.outer(np.arange(n), np.arange(n // 2 + 1)) / n
    return np.cos(angle), -np.sin(angle)


def rfft(x: torch.Tensor) -> torch.Tensor:
    """One-sided DFT over the last axis: (..., n) → complex (..., n // 2 + 1), as ``torch.fft.rfft``."""
    if not torch.compiler.is_exporting():
        return torch.fft.rfft(x, dim=-1)
    real, imag = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in _basis(x.shape[-1]))
    return torch.complex(x @ real, x @ imag)


def stft(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(batch, samples) → complex (batch, n_fft // 2 + 1, frames), as ``torch.stft(center=True)``."""
    if not torch.compiler.is_exporting():
        return torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    basis = torch.as_tensor(np.concatenate(_basis(n_fft), axis=1).T[:, None], device=x.device)  # (2 × freqs, 1, n_fft)
    kernel = (basis * window.double()).to(x.dtype)  # windowed in float64; a constant of the graph
    padded = F.pad(x[:, None], (n_fft // 2, n_fft // 2), mode="reflect")
    out = F.conv1d(padded, kernel, stride=hop)  # (batch, 2 × freqs, frames)
    freqs = n_fft // 2 + 1
    return torch.complex(out[:, :freqs], out[:, freqs:])
