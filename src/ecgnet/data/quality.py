"""Signal quality per lead: is a lead flat, saturated (clipped), disconnected, noisy or wandering?

Five flags, each a measurement on one lead of a (12, samples) mV signal at its own sampling rate compared
with a bound:

- ``flat``: some 2 s window (windows every 0.25 s) spans less than ``FLAT_MV`` peak to peak — every 2 s of
  a recorded lead hold a QRS complex at any heart rate above 30/min;
- ``saturated``: the lead stays at its own maximum or minimum value (the amplifier's rail, within
  ``EXTREME_TOL_MV``) for longer than ``SATURATED_S`` — a clipped peak; a physiological peak leaves its
  extreme value within a few samples;
- ``disconnected``: flat or at a rail for at least 90 % of the record (lead off); it replaces the two
  flags above;
- ``noise``: high-frequency noise: the median, over 0.2 s windows, of the RMS of the 25–50 Hz band is above
  ``NOISE_MV`` (the median leaves out the QRS complexes, which have power in that band too);
- ``wander``: baseline wander: the peak-to-peak excursion of the signal below 0.5 Hz (2nd-order
  Butterworth, zero phase) is above ``WANDER_MV``.

The bounds are tail percentiles of each measurement on the leads of PTB-XL's training folds 1–8, in the
records that carry none of its four quality annotations (``baseline_drift``, ``static_noise``,
``burst_noise``, ``electrodes_problems``), at 100 Hz: the 0.01th percentile for ``flat``, the 99.99th for
``saturated`` (defects no clean lead shows), the 99.5th for ``noise`` and ``wander`` (graded: one clean lead
in 200 exceeds them). ``python -m reports.quality.bounds`` measures them and the flags' agreement with the
annotations on fold 10 (reports/quality/README.md). Durations are in seconds and bands in Hz, so the
measurements mean the same at any rate; at rates above 100 Hz a run at the rail is seen at least as
finely as at 100 Hz, so the saturation bound is conservative there.

The module knows nothing of lead names or files: callers pass the names (``ecgnet.data.records.LEADS``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

FLAGS = ("disconnected", "flat", "saturated", "noise", "wander")
DESCRIPTIONS = {"disconnected": "disconnected (lead off)", "flat": "flat stretch", "saturated": "clipped (saturated)",
                "noise": "high-frequency noise", "wander": "baseline wander"}

# Bounds: `python -m reports.quality.bounds` on PTB-XL 1.0.1 at 100 Hz, folds 1–8, 13,493 records without
# quality annotations (161,916 leads); see reports/quality/bounds.json.
FLAT_MV = 0.102  # 0.01th percentile of the smallest 2 s peak-to-peak span of a lead
SATURATED_S = 0.07  # 99.99th percentile of the longest run at the lead's extreme value (7 samples at 100 Hz)
NOISE_MV = 0.0422  # 99.5th percentile of the median 0.2 s RMS of the 25–50 Hz band
WANDER_MV = 1.99  # 99.5th percentile of the < 0.5 Hz excursion, peak to peak

EXTREME_TOL_MV = 1e-4  # "at the extreme value": within this of the lead's max or min (below any ADC step)
DISCONNECTED_FRACTION = 0.9  # flat or at a rail for at least this share of the record (lead off)
FLAT_WINDOW_S, FLAT_HOP_S = 2.0, 0.25
NOISE_BAND_HZ, NOISE_WINDOW_S = (25.0, 50.0), 0.2
WANDER_CUTOFF_HZ = 0.5


@dataclass(frozen=True)
class LeadQuality:
    """One lead's flags (a subset of FLAGS, in that order) and the measurements behind them."""

    lead: str
    flags: tuple[str, ...]
    flat_s: float  # seconds covered by flat 2 s windows
    saturated_s: float  # the longest run at the lead's maximum or minimum
    noise_mv: float
    wander_mv: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flags"] = list(self.flags)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def measure(signal: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    """The four measurements of every lead of ``signal`` (..., samples) in mV at ``rate`` Hz, each an
    array of shape ``signal.shape[:-1]`` (vectorised: a whole dataset chunk (records, 12, samples) at once)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.shape[-1] < 2:
        raise ValueError(f"a signal of {x.shape[-1]} samples has no quality to measure")
    seconds = x.shape[-1] / rate
    return {"flat_s": flat_seconds(x, rate), "saturated_s": longest_extreme_run(x) / rate,
            "noise_mv": noise_level(x, rate), "wander_mv": wander(x, rate), "seconds": np.full(x.shape[:-1], seconds)}


def flags_from(m: dict[str, np.ndarray]) -> np.ndarray:
    """Measurements (from :func:`measure`) → boolean flags, shape (..., len(FLAGS))."""
    seconds = m["seconds"]
    disconnected = (m["flat_s"] >= DISCONNECTED_FRACTION * seconds) | (m["saturated_s"] >= DISCONNECTED_FRACTION * seconds)
    flat = (m["flat_s"] > 0) & ~disconnected
    saturated = (m["saturated_s"] > SATURATED_S) & ~disconnected
    noise = (m["noise_mv"] > NOISE_MV) & ~disconnected
    wander_ = (m["wander_mv"] > WANDER_MV) & ~disconnected
    return np.stack([disconnected, flat, saturated, noise, wander_], axis=-1)


def lead_quality(signal: np.ndarray, rate: float, leads: Sequence[str]) -> list[LeadQuality]:
    """One :class:`LeadQuality` per lead of a (leads, samples) mV signal at ``rate`` Hz — best on the
    signal as recorded (before resampling, which smooths a clipped plateau)."""
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise ValueError(f"expected ({len(leads)}, samples), got {signal.shape}")
    m = measure(signal, rate)
    f = flags_from(m)
    return [LeadQuality(lead, tuple(name for name, on in zip(FLAGS, f[i]) if on), float(m["flat_s"][i]),
                        float(m["saturated_s"][i]), float(m["noise_mv"][i]), float(m["wander_mv"][i]))
            for i, lead in enumerate(leads)]


def summary(quality: Sequence[LeadQuality], name=str) -> list[str]:
    """One line per flag that fired, naming its leads (``name``: lead → how to print it):
    ``high-frequency noise: V1, V2 (25–50 Hz RMS > 0.0422 mV)``."""
    bounds = {"flat": f"< {FLAT_MV:g} mV over {FLAT_WINDOW_S:g} s", "saturated": f"at the rail > {SATURATED_S:g} s",
              "noise": f"25–50 Hz RMS > {NOISE_MV:g} mV", "wander": f"< 0.5 Hz excursion > {WANDER_MV:g} mV",
              "disconnected": f"flat or at the rail ≥ {DISCONNECTED_FRACTION:.0%} of the record"}
    out = []
    for flag in FLAGS:
        leads = [name(q.lead) for q in quality if flag in q.flags]
        if leads:
            out.append(f"{DESCRIPTIONS[flag]}: {', '.join(leads)} ({bounds[flag]})")
    return out


# --- the measurements --------------------------------------------------------------------------------

def longest_run(mask: np.ndarray) -> np.ndarray:
    """The longest run of True along the last axis (vectorised)."""
    idx = np.arange(1, mask.shape[-1] + 1)
    last_false = np.maximum.accumulate(np.where(mask, 0, idx), axis=-1)
    return (idx - last_false).max(-1)


def longest_extreme_run(x: np.ndarray) -> np.ndarray:
    """Samples in the longest run at the lead's maximum or minimum (within EXTREME_TOL_MV)."""
    high = x >= x.max(-1, keepdims=True) - EXTREME_TOL_MV
    low = x <= x.min(-1, keepdims=True) + EXTREME_TOL_MV
    return np.maximum(longest_run(high), longest_run(low))


def flat_seconds(x: np.ndarray, rate: float) -> np.ndarray:
    """Seconds of the lead covered by 2 s windows (every 0.25 s) spanning less than FLAT_MV; a record
    shorter than 2 s is one window."""
    hop = max(1, int(round(FLAT_HOP_S * rate)))
    per_window = max(1, int(round(FLAT_WINDOW_S / FLAT_HOP_S)))
    blocks = x.shape[-1] // hop
    if blocks < per_window:  # shorter than a window: the whole record
        return np.where(np.ptp(x, -1) < FLAT_MV, x.shape[-1] / rate, 0.0)
    b = x[..., :blocks * hop].reshape(*x.shape[:-1], blocks, hop)
    hi, lo = b.max(-1), b.min(-1)
    n = blocks - per_window + 1  # windows of per_window consecutive blocks
    win_hi = np.max([hi[..., k:k + n] for k in range(per_window)], axis=0)
    win_lo = np.min([lo[..., k:k + n] for k in range(per_window)], axis=0)
    flat = (win_hi - win_lo) < FLAT_MV
    covered = np.zeros(hi.shape, dtype=bool)  # a block is covered by any flat window that contains it
    for k in range(per_window):
        covered[..., k:k + n] |= flat
    return covered.sum(-1) * hop / rate


def _band(x: np.ndarray, rate: float, low: float, high: float) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    nyquist = rate / 2
    if low >= nyquist * 0.98:
        return np.zeros_like(x)
    sos = (butter(4, low, "highpass", fs=rate, output="sos") if high >= nyquist * 0.98
           else butter(4, (low, high), "bandpass", fs=rate, output="sos"))
    return sosfiltfilt(sos, x, axis=-1, padlen=min(3 * (2 * len(sos) + 1), x.shape[-1] - 1))


def noise_level(x: np.ndarray, rate: float) -> np.ndarray:
    """Median over 0.2 s windows of the RMS of the 25–50 Hz band (mV)."""
    h = _band(x, rate, *NOISE_BAND_HZ)
    w = max(1, int(round(NOISE_WINDOW_S * rate)))
    k = max(1, h.shape[-1] // w)
    if h.shape[-1] < w:
        return np.sqrt((h ** 2).mean(-1))
    windows = h[..., :k * w].reshape(*h.shape[:-1], k, w)
    return np.median(np.sqrt((windows ** 2).mean(-1)), -1)


def wander(x: np.ndarray, rate: float) -> np.ndarray:
    """Peak-to-peak excursion of the signal below 0.5 Hz (mV)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, WANDER_CUTOFF_HZ, "lowpass", fs=rate, output="sos")
    base = sosfiltfilt(sos, x, axis=-1, padlen=min(3 * (2 * len(sos) + 1), x.shape[-1] - 1))
    return np.ptp(base, -1)
