"""Issue 20 item 4: the amplitude checks see the signal as recorded, before resampling.

A record whose 12 leads each span exactly 1 mV (a per-lead normalised signal) must be flagged at any source
rate, also when it is resampled to the model's 100 Hz (resampling changes each lead's range differently)."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgnet.data.records import LEADS, read_ecg

NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def normalised(fs: int, seconds: float = 10.0) -> np.ndarray:
    """(12, samples): 12 different waveforms, each scaled to span exactly 1 mV (min −0.5, max +0.5)."""
    rng = np.random.default_rng(fs)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    leads = []
    for i in range(12):
        x = np.exp(-((t % (0.7 + 0.03 * i)) - 0.3) ** 2 / (2 * (0.003 + 0.0004 * i) ** 2))  # narrow QRS-like spikes
        x += 0.2 * np.sin(2 * np.pi * (0.3 + i) * t)
        x += rng.normal(0, 0.01, n)
        leads.append((x - x.min()) / (x.max() - x.min()) - 0.5)
    return np.stack(leads)


def normalised_record(directory, fs: int, seconds: float = 10.0):
    """:func:`normalised` as a WFDB record."""
    signal = normalised(fs, seconds).T
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


@pytest.mark.parametrize("kind", ["pulse", "zeros"])
def test_a_wfdb_record_of_12_identical_leads_is_said_to_hold_no_ecg(tmp_path, kind):
    """WFDB says what the other readers say of a leads-off record, and only that (it said 'flat lead: I, II, …',
    'median lead range 0 mV' or 'every lead spans the same 1 mV' and no word of the electrodes)."""
    from ecgnet.data.readers import read_ecg_any
    from ecgnet.data.records import NO_ECG

    signal = np.zeros((5000, 12))
    if kind == "pulse":
        signal[1000:1100] = 1.0
    wfdb.wrsamp("off", fs=500, units=["mV"] * 12, sig_name=NAMES, p_signal=signal, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    for rec in (read_ecg(tmp_path / "off.hea", 100, resample=True),
                read_ecg_any(tmp_path / "off.hea", 100, resample=True)):
        assert rec.warnings == [NO_ECG] and not rec.amplitude_trusted


@pytest.mark.parametrize("kind", ["pulse", "zeros"])
def test_a_record_of_12_identical_leads_is_said_to_hold_no_ecg_once(tmp_path, kind):
    """Leads off: every lead the cart's 1 mV calibration pulse (or a flat line). The reader says no ECG was recorded;
    read_ecg_any added 'every lead spans the same 1 mV (normalised per lead?)' (or 'flat lead: I, II, …' and a
    median range of 0 mV) and a coarse resolution of 1,000 µV steps, saying it again, wrongly."""
    from ecg_writers import write_dicom

    from ecgnet.data.readers import read_ecg_any

    signal = np.zeros((12, 5000))
    if kind == "pulse":
        signal[:, 1000:1100] = 1.0
    rec = read_ecg_any(write_dicom(tmp_path / "off.dcm", signal), 100, resample=True)
    assert rec.warnings == [("all 12 leads are identical throughout: no ECG was recorded (electrodes off?), only a "
                             "flat line or the device's calibration pulse")] and not rec.amplitude_trusted


def test_differing_leads_spanning_the_same_1_mv_still_get_the_amplitude_warning(tmp_path):
    """A genuine per-lead normalisation in a DICOM file: its leads differ, so it holds an ECG, and the amplitude
    check still says so (not the no-ECG warning)."""
    from ecg_writers import write_dicom

    from ecgnet.data.readers import read_ecg_any

    rec = read_ecg_any(write_dicom(tmp_path / "norm.dcm", normalised(500)), 100, resample=True)
    assert not rec.amplitude_trusted and not any("identical" in w for w in rec.warnings), rec.warnings
    assert any("every lead spans the same 1 mV" in w for w in rec.warnings), rec.warnings
