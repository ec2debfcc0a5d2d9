"""A real ECG file that a well-kept library ships with itself: pydicom's ``waveform_ecg.dcm`` (a Mortara
12-lead ECG, 1,000 Hz, rhythm and median-beat groups; the same file as ../shared's
``dicom/marcodebe_anonymous_ecg.dcm``, so these tests run without ../shared, in a clean venv too).
ECGNet's hand-written sample conversion must give what pydicom's own ``waveform_array`` gives (sensitivity,
its correction factor and baseline), which tests/test_readers_real.py does not check."""

from __future__ import annotations

import numpy as np
import pytest

from ecgnet.data.readers import detect, read_ecg_any, read_source
from ecgnet.data.records import LEADS

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402


@pytest.fixture(scope="module")
def mortara():
    path = get_testdata_file("waveform_ecg.dcm")
    if path is None:
        pytest.skip("pydicom's test files are not installed")
    return path


def test_pydicoms_mortara_ecg_reads_as_pydicom_converts_it(mortara):
    ds = pydicom.dcmread(mortara)
    assert detect(mortara) == "dicom"
    rec = read_source(mortara)
    rhythm = ds.WaveformSequence[0]  # the 10 s rhythm group, not the 1.2 s median beats
    assert rec.source_rate == float(rhythm.SamplingFrequency) == 1000
    assert rec.signal.shape == (12, rhythm.NumberOfWaveformSamples) == (12, 10_000)
    names = [ch.ChannelSourceSequence[0].CodeMeaning for ch in rhythm.ChannelDefinitionSequence]
    reference = ds.waveform_array(0).T / 1000.0  # pydicom applies sensitivity, correction and baseline: µV → mV
    for i, name in enumerate(names):
        lead = "I" if name.startswith("Lead I ") else name.removeprefix("Lead ").upper()
        np.testing.assert_allclose(rec.signal[LEADS.index(lead)], reference[i], atol=1e-9)
    assert rec.age == 42 and rec.sex == "female" and rec.derived_leads == []


def test_pydicoms_mortara_ecg_is_predicted_at_the_model_rate(mortara):
    from ecgnet.inference.predictor import Predictor

    rec = read_ecg_any(mortara, sampling_rate=100, resample=True)
    assert rec.signal.shape == (12, 1000) and rec.amplitude_trusted
    result = Predictor("long_time").predict_record(rec)
    assert result["format"] == "dicom" and result["source_rate"] == 1000 and len(result["diagnoses"]) == 5
    assert result["warnings"] == [] and all(0 <= d["probability"] <= 1 for d in result["diagnoses"])
