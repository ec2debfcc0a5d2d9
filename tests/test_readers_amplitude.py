"""Issue 20 item 4: the amplitude checks see the signal as recorded, before resampling.

A record whose 12 leads each span exactly 1 mV (a per-lead normalised signal) must be flagged at any source
rate, also when it is resampled to the model's 100 Hz (resampling changes each lead's range differently)."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgnet.data.records import LEADS, read_ecg

NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def normalised_record(directory, fs: int, seconds: float = 10.0):
    """12 different waveforms, each scaled to span exactly 1 mV (min −0.5, max +0.5)."""
    rng = np.random.default_rng(fs)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    leads = []
    for i in range(12):
        x = np.exp(-((t % (0.7 + 0.03 * i)) - 0.3) ** 2 / (2 * (0.003 + 0.0004 * i) ** 2))  # narrow QRS-like spikes
        x += 0.2 * np.sin(2 * np.pi * (0.3 + i) * t)
        x += rng.normal(0, 0.01, n)
        leads.append((x - x.min()) / (x.max() - x.min()) - 0.5)
    signal = np.stack(leads, 1)
    wfdb.wrsamp(f"norm{fs}", fs=fs, units=["mV"] * 12, sig_name=NAMES, p_signal=signal, fmt=["16"] * 12,
                adc_gain=[10000.0] * 12, baseline=[0] * 12, write_dir=str(directory))
    return directory / f"norm{fs}.hea"


@pytest.mark.parametrize("fs", [500, 1000])
def test_equal_lead_ranges_are_flagged_before_resampling(tmp_path, fs):
    header = normalised_record(tmp_path, fs)
    rec = read_ecg(header, 100, resample=True)
    assert rec.signal.shape == (len(LEADS), 1000)
    ranges = rec.signal.max(-1) - rec.signal.min(-1)
    assert ranges.std() / ranges.mean() > 0.02  # after resampling the ranges differ: a late check would miss it
    assert not rec.amplitude_trusted
    assert any("every lead spans the same" in w for w in rec.warnings), rec.warnings


def test_equal_lead_ranges_flagged_through_the_dispatcher(tmp_path):
    from ecgnet.data.readers import read_ecg_any

    rec = read_ecg_any(normalised_record(tmp_path, 500), 100, resample=True)
    assert rec.format == "wfdb" and not rec.amplitude_trusted
    assert any("every lead spans the same" in w for w in rec.warnings)
