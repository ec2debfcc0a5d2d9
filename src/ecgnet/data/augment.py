"""Training-time augmentations that imitate how ECGs differ between acquisition systems, applied to a
batch of (batch, 12, samples) signals in mV on the training device.

Each augmentation hits a record with probability ``P`` (0.5) and draws its strength per record:

- ``amplitude``: one gain for the record (log-uniform 0.67–1.5) and a small one per lead (±10 %), for
  calibration and electrode/body differences;
- ``baseline_wander``: two sinusoids per lead at 0.05–0.5 Hz, up to 0.25 mV each (respiration, motion);
- ``noise``: white noise of 0–0.03 mV standard deviation (muscle, amplifier);
- ``filter``: another device's filters — a first-order high-pass at 0.05–0.7 Hz and a second-order
  low-pass at 20–45 Hz, zero-phase, applied in the frequency domain;
- ``lead_mix``: precordial electrodes placed a little off — each V lead mixed with a neighbour (0–20 %).

Power-line interference is left out: at 100 Hz, 50 Hz is the Nyquist frequency and the resampler
removes 50/60 Hz before a record reaches the model.
"""

from __future__ import annotations

import math

import torch

P = 0.5
NAMES = ("amplitude", "baseline_wander", "noise", "filter", "lead_mix")
_PRECORDIAL = slice(6, 12)


def augment(x: torch.Tensor, names: tuple[str, ...] | list[str], sampling_rate: float, p: float = P) -> torch.Tensor:
    """Apply the named augmentations, in the order of :data:`NAMES`, each to a share ``p`` of the
    records of a (batch, 12, samples) batch."""
    for name in NAMES:
        if name in names:
            hit = torch.rand(x.shape[0], 1, 1, device=x.device) < p
            x = torch.where(hit, _AUGMENTATIONS[name](x, sampling_rate), x)
    return x


def _uniform(shape, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(shape, device=like.device, dtype=like.dtype).uniform_(low, high)


def amplitude(x: torch.Tensor, fs: float) -> torch.Tensor:
    record = torch.exp(_uniform((x.shape[0], 1, 1), math.log(0.67), math.log(1.5), x))
    lead = _uniform((x.shape[0], x.shape[1], 1), 0.9, 1.1, x)
    return x * record * lead


def baseline_wander(x: torch.Tensor, fs: float) -> torch.Tensor:
    t = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype) / fs
    wander = torch.zeros_like(x)
    for _ in range(2):
        f = _uniform((x.shape[0], 1, 1), 0.05, 0.5, x)
        phase = _uniform((x.shape[0], x.shape[1], 1), 0, 2 * math.pi, x)
        amp = _uniform((x.shape[0], x.shape[1], 1), 0, 0.25, x)
        wander = wander + amp * torch.sin(2 * math.pi * f * t + phase)
    return x + wander


def noise(x: torch.Tensor, fs: float) -> torch.Tensor:
    sigma = _uniform((x.shape[0], 1, 1), 0, 0.03, x)
    return x + sigma * torch.randn_like(x)


def filter(x: torch.Tensor, fs: float) -> torch.Tensor:  # noqa: A001  (the augmentation's name)
    f = torch.fft.rfftfreq(x.shape[-1], d=1 / fs).to(x.device, x.dtype).clamp_min(1e-3)
    high = _uniform((x.shape[0], 1, 1), 0.05, 0.7, x)
    low = _uniform((x.shape[0], 1, 1), 20, 45, x)
    response = 1 / torch.sqrt(1 + (high / f) ** 2) / torch.sqrt(1 + (f / low) ** 4)
    return torch.fft.irfft(torch.fft.rfft(x) * response, n=x.shape[-1])


def lead_mix(x: torch.Tensor, fs: float) -> torch.Tensor:
    v = x[:, _PRECORDIAL]
    neighbour = torch.where(torch.rand(x.shape[0], 6, 1, device=x.device) < 0.5,
                            torch.roll(v, 1, dims=1), torch.roll(v, -1, dims=1))
    neighbour[:, 0] = v[:, 1]  # V1 and V6 have one neighbour each
    neighbour[:, -1] = v[:, -2]
    a = _uniform((x.shape[0], 6, 1), 0, 0.2, x)
    out = x.clone()
    out[:, _PRECORDIAL] = (1 - a) * v + a * neighbour
    return out


_AUGMENTATIONS = {"amplitude": amplitude, "baseline_wander": baseline_wander, "noise": noise,
                  "filter": filter, "lead_mix": lead_mix}
