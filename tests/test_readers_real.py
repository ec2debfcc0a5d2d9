"""The real device files of ../shared/external/formats: each read with 12 leads in mV at its own rate,
plausible amplitudes, the device's statements where the file has them, chosen by content."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgnet.data.readers import FORMATS, detect, read_ecg_any, read_source
from ecgnet.data.records import LEADS
from ecgnet.errors import ECGNetError

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"
# file → (format, source rate, samples, statements that must be read, derived leads)
REAL = {
    "muse_xml/ml4h_muse_ecg_deidentified_1.xml": ("muse-xml", 240, 2500, ["SINUS TACHYCARDIA WITH ONE VENTRICULAR "
                                                  "PREMATURE BEAT", "LEFT AXIS DEVIATION"], ["III", "aVR", "aVL", "aVF"]),
    "philips_xml/129DYPRG.XML": ("philips-xml", 500, 5264, ["Sinus bradycardia", ">>> Acute MI <<<"], []),
    "philips_xml/3191723_ZZDEMOPTONLY_1-04_orig.xml": ("philips-xml", 500, 5300,
                                                       ["SINUS RHYTHM", "PROBABLE LEFT VENTRICULAR HYPERTROPHY"], []),
    "hl7_aecg/hl7_2003-12_Example_aECG.xml": ("hl7-aecg", 500, 5000, ["Sinus Rhythm"], []),
    "dicom/marcodebe_anonymous_ecg.dcm": ("dicom", 1000, 10000, ["RITMO SINUSALE", "ECG NORMALE"], []),
    "scp_ecg/ecgtoolkit_Example.scp": ("scp-ecg", 500, 5000, [], []),
}

AGE_CONTRADICTED = {"muse_xml/ml4h_muse_ecg_deidentified_1.xml": "66, but its birth and acquisition dates give 59",
                    "hl7_aecg/hl7_2003-12_Example_aECG.xml": "46, but its birth and acquisition dates give 49"}
pytestmark = pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_file_is_read(name):
    fmt, rate, samples, statements, derived = REAL[name]
    path = FORMATS_DIR / name
    assert detect(path) == fmt
    rec = read_source(path)
    assert rec.format == fmt and rec.source_rate == rate and rec.signal.shape == (12, samples)
    ranges = rec.signal.max(1) - rec.signal.min(1)
    assert 0.3 < ranges[LEADS.index("II")] < 5, ranges  # mV, not µV or raw units
    assert np.all((ranges > 0.1) & (ranges < 10)), ranges
    for s in statements:
        assert s in rec.statements, rec.statements
    assert rec.derived_leads == derived
    assert rec.sex in ("male", "female") and rec.age is not None and 0 < rec.age < 120
    assert rec.patient.get("id")
    if name in AGE_CONTRADICTED:  # the file's stated age against its own dates (what a model reads is the former)
        said = f"the file states age {AGE_CONTRADICTED[name]}"
        assert any(w.startswith(said) for w in read_ecg_any(path, rate).warnings)
    # the limb leads obey Einthoven (III = II − I; the Philips carts' calibration tail is trimmed)
    assert np.abs(rec.signal[LEADS.index("III")] - (rec.signal[1] - rec.signal[0])).max() < 0.03


def test_a_philips_file_stripped_to_its_waveform_is_read(tmp_path):
    """Real exports stripped of <dataacquisition> (a de-identification script's output, found in a public
    repository) were refused as 'not a 12-lead Philips ECG', though a 1.04 waveform's own attributes declare its
    rate, resolution and leads."""
    import re

    source = FORMATS_DIR / "philips_xml/3191723_ZZDEMOPTONLY_1-04_orig.xml"
    xml = source.read_bytes().decode("utf-16")
    stripped, n = re.subn(r"<dataacquisition[ >].*?</dataacquisition>", "", xml, flags=re.DOTALL)
    assert n == 1 and "<signalcharacteristics>" not in stripped
    (tmp_path / "stripped.xml").write_bytes(stripped.encode("utf-16"))
    rec, original = read_source(tmp_path / "stripped.xml"), read_source(source)
    assert rec.format == "philips-xml" and rec.source_rate == 500
    np.testing.assert_array_equal(rec.signal, original.signal)
    bare = re.sub(r'<parsedwaveforms [^>]*>', '<parsedwaveforms dataencoding="Base64" compression="XLI">', stripped)
    (tmp_path / "bare.xml").write_bytes(bare.encode("utf-16"))
    with pytest.raises(ECGNetError, match="bare.xml: declares no sampling rate"):  # nothing left to read it by
        read_source(tmp_path / "bare.xml")


def test_every_real_file_is_resampled_to_the_model_rate_without_amplitude_warnings():
    for name, (fmt, rate, samples, _, _) in REAL.items():
        rec = read_ecg_any(FORMATS_DIR / name, 100, resample=True)
        assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, round(samples * 100 / rate))
        assert rec.amplitude_trusted, (name, rec.warnings)


def test_muse_conflicting_rates_are_settled_by_the_devices_heart_rate(tmp_path):
    """SampleBase 240, ECGSampleBase 250, 2,500 samples: a '10 s' rule read 250 Hz, but the rhythm's beats are
    141 samples apart and the device measured 102 bpm — 240 Hz (found by cross-checking with ecgdatakit; the file's
    PR, QRS and QT in samples agree). A file whose beats settle nothing keeps its waveform's own SampleBase."""
    import re

    source = FORMATS_DIR / "muse_xml/ml4h_muse_ecg_deidentified_1.xml"
    rec = read_source(source)
    assert rec.source_rate == 240
    assert any("conflicting sampling rates" in w and "read at 240 Hz" in w and "ventricular rate" in w
               for w in rec.warnings)
    unknown = re.sub(rb"<VentricularRate>\d+</VentricularRate>", b"<VentricularRate></VentricularRate>",
                     source.read_bytes())
    (tmp_path / "no_rate.xml").write_bytes(unknown)
    rec = read_source(tmp_path / "no_rate.xml")
    assert rec.source_rate == 240 and any("could not decide" in w for w in rec.warnings)


def test_scp_and_hl7_of_the_same_recording_agree():
    """The README: the SCP file is ECG Toolkit's conversion of the HL7 example's Mortara recording."""
    scp = read_source(FORMATS_DIR / "scp_ecg/ecgtoolkit_Example.scp").signal
    hl7 = read_source(FORMATS_DIR / "hl7_aecg/hl7_2003-12_Example_aECG.xml").signal
    assert np.abs(scp - hl7).max() < 0.005


def test_format_is_chosen_by_content_not_extension(tmp_path):
    for name, (fmt, *_rest) in REAL.items():
        disguised = tmp_path / f"{Path(name).stem}.bin"
        shutil.copy(FORMATS_DIR / name, disguised)
        assert detect(disguised) == fmt
    # no real WFDB, EDF or CardioSoft file here: the tests write them (test_records, test_readers_binary/_xml)
    assert set(f for f, *_ in REAL.values()) | {"wfdb", "edf", "cardiosoft-xml"} == set(FORMATS)


@pytest.mark.slow
def test_real_files_are_predicted(tmp_path):
    """Every real file diagnosed by the bundled default model (probabilities in [0, 1], one per class)."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.runs.bundled import DEFAULT_MODEL

    predictor = Predictor(DEFAULT_MODEL)
    for name in REAL:
        rec = read_ecg_any(FORMATS_DIR / name, predictor.rate, resample=True)
        out = predictor.predict_record(rec)
        probs = [d["probability"] for d in out["diagnoses"]]
        assert len(probs) == len(predictor.classes) and all(0 <= p <= 1 for p in probs)


def test_damaged_real_files_fail_with_one_clear_error(tmp_path):
    """Bytes flipped, cut, deleted or inserted (fixed seed): each file reads or fails with an ECGNetError
    naming it — never another exception (900 such cases per seed ran clean when this was written)."""
    import random

    from ecgnet.errors import ECGNetError

    rng = random.Random(0)
    for name in REAL:
        data = (FORMATS_DIR / name).read_bytes()
        for k in range(16):
            b = bytearray(data)
            i = rng.randrange(len(b))
            if k % 4 == 0:
                for _ in range(rng.randint(1, 20)):
                    b[rng.randrange(len(b))] = rng.randrange(256)
            elif k % 4 == 1:
                b = b[:i]
            elif k % 4 == 2:
                del b[i:i + rng.randint(1, 200)]
            else:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 50)))
            path = tmp_path / Path(name).name
            path.write_bytes(bytes(b))
            try:
                rec = read_ecg_any(path, 100, resample=True)
            except ECGNetError as e:
                assert str(path) in str(e) and "\n" not in str(e)  # one line naming the file
            else:  # read despite the damage: still 12 leads of finite float32 samples
                assert rec.signal.shape[0] == 12 and rec.signal.dtype == np.float32
                assert np.isfinite(rec.signal).all()
