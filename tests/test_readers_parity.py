"""The same recording in three formats gives the same diagnosis: PTB-XL records (WFDB) rewritten as EDF+
by pyedflib and as a DICOM 12-lead waveform by pydicom, each predicted by the bundled default model."""

from __future__ import annotations

import numpy as np
import pytest
from ecg_writers import write_dicom, write_edf_pyedflib

from ecgnet.data.readers import read_ecg_any
from ecgnet.data.records import read_ecg

RECORDS = ["00001", "00100", "01000", "05000", "10000"]  # ecg_ids across the database


@pytest.fixture(scope="module")
def predictor():
    from ecgnet.inference.predictor import Predictor
    from ecgnet.runs.bundled import DEFAULT_MODEL

    return Predictor(DEFAULT_MODEL)


@pytest.mark.slow
def test_wfdb_edf_and_dicom_give_the_same_probabilities(ptbxl_root, predictor, tmp_path):
    worst = 0.0
    for ecg_id in RECORDS:
        header = ptbxl_root / "records100" / f"{ecg_id[:2]}000" / f"{ecg_id}_lr.hea"
        wfdb_rec = read_ecg(header, predictor.rate)
        x = wfdb_rec.signal.astype(np.float64)
        files = {"edf": write_edf_pyedflib(tmp_path / f"{ecg_id}.edf", x, fs=100),
                 "dicom": write_dicom(tmp_path / f"{ecg_id}.dcm", x, fs=100, uv_per_unit=1.0)}
        ref = np.array([d["probability"] for d in sorted(predictor.predict_record(wfdb_rec)["diagnoses"],
                                                         key=lambda d: d["class"])])
        for fmt, path in files.items():
            rec = read_ecg_any(path, predictor.rate)
            assert rec.format == fmt
            probs = np.array([d["probability"] for d in sorted(predictor.predict_record(rec)["diagnoses"],
                                                               key=lambda d: d["class"])])
            worst = max(worst, float(np.abs(probs - ref).max()))
    assert worst < 0.02, worst
