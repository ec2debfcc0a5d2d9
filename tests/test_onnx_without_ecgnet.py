"""docs/onnx_without_ecgnet.py — a deployment that imports nothing from ecgnet and follows an export's metadata
alone — gives `ecgnet predict`'s probabilities (within 1e-5) and the same calls: on PTB-XL fold-10 records at
100 Hz with their age, sex, height and weight, on Challenge records at 500 and 1000 Hz longer than 10 s (resampled,
overlapping segments, the header's #Age/#Sex), on records written here (7 s at 250 Hz, 8 leads at 360 Hz), and it
withholds the calls where predict does (a flat lead, amplitudes that are not mV, gain 0). The model reads patient
data, so the metadata's encoding and scaler count too.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgnet.data.records import read_ecg
from ecgnet.errors import ECGNetError
from ecgnet.export import export
from ecgnet.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docs" / "onnx_without_ecgnet.py"
SAMPLES = REPO.parent / "shared" / "external" / "cinc2021-samples"
MODEL = "intermediate_concat_weighted_bce"  # reads age, sex, height and weight beside the ECG
TOLERANCE = 1e-5
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
# fold 10: ages 55–92 (92 is read as 90), male and female, heights known and not
PTBXL_RECORDS = (9, 38, 116, 274, 1792, 2160)
# 500 Hz: 11.9 s (two overlapping segments), 25 s, 10 s, and a Ningbo record with a flat lead; 1000 Hz: 38.4 s
CHALLENGE = ("cpsc_2018/A0004", "cpsc_2018/A0005", "chapman_shaoxing/JS00001", "ningbo/JS20004", "ptb/S0001")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("onnx_without_ecgnet", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    return export(MODEL, out=tmp_path_factory.mktemp("export") / "model.onnx")


@pytest.fixture(scope="module")
def model(script, onnx_file):
    """The script's (ONNX Runtime session, metadata) of the export."""
    return script.load(onnx_file)


@pytest.fixture(scope="module")
def predictor():
    return Predictor(MODEL)


def agree(script, model, predictor, path, **patient) -> dict:
    """The script's result for ``path``, once its probabilities and calls are checked against predict's."""
    expected = predictor.predict_file(path, **patient)
    got = script.diagnose(*model, path, **patient)
    p = {d["class"]: d["probability"] for d in expected["diagnoses"]}
    assert set(got["probabilities"]) == set(p)
    assert max(abs(got["probabilities"][c] - p[c]) for c in p) <= TOLERANCE, (path, got["probabilities"], p)
    assert got["positive"] == {d["class"]: d["positive"] for d in expected["diagnoses"] if d["positive"] is not None}
    assert bool(got["withheld"]) == (not expected["amplitude_trusted"]), (path, got["withheld"], expected["warnings"])
    return got


def ecg(fs: float, seconds: float, leads: int = 12) -> np.ndarray:
    """A synthetic ECG (leads, samples) in mV: P, QRS and T waves at 75 beats/min, a gain per lead, some noise."""
    t = np.arange(round(fs * seconds)) / fs
    wave = sum(a * np.exp(-((t % 0.8) - c) ** 2 / (2 * w ** 2)) for c, w, a in
               ((0.15, 0.025, 0.12), (0.3, 0.012, 1.1), (0.32, 0.01, -0.3), (0.55, 0.045, 0.3)))
    gains = np.linspace(-0.8, 1.6, leads)[np.random.default_rng(0).permutation(leads)]
    return gains[:, None] * wave + np.random.default_rng(1).normal(0, 0.01, (leads, t.size)) + 0.2


def write(folder: Path, name: str, signal: np.ndarray, fs: float, leads=LEADS, gain: str | None = None) -> Path:
    n = len(leads)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * n, sig_name=list(leads), p_signal=signal.T, fmt=["16"] * n,
                adc_gain=[1000.0] * n, baseline=[0] * n, write_dir=str(folder), comments=["Age: 67", "Sex: Female"])
    header = folder / f"{name}.hea"
    if gain is not None:  # the header's gain field as another writer would put it
        header.write_text(header.read_text().replace("1000.0(0)/mV", gain, 1))
    return header


@pytest.mark.slow
def test_ptbxl_fold_10_records_with_their_patient_data(script, model, predictor, ptbxl_root, ptbxl_tables):
    db, _ = ptbxl_tables
    for ecg_id in PTBXL_RECORDS:
        row = db.loc[ecg_id]
        assert row["strat_fold"] == 10
        patient = {"age": row["age"], "sex": ["male", "female"][int(row["sex"])],
                   "height": row["height"], "weight": row["weight"]}
        patient = {k: v for k, v in patient.items() if not (isinstance(v, float) and np.isnan(v))}
        got = agree(script, model, predictor, ptbxl_root / f"{row['filename_lr']}.hea", **patient)
        assert not got["withheld"] and len(got["positive"]) == 5


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="needs ../shared/external/cinc2021-samples")
def test_challenge_records_at_500_and_1000_hz_longer_than_10_s(script, model, predictor):
    results = {name: agree(script, model, predictor, SAMPLES / f"{name}.hea") for name in CHALLENGE}
    assert results["ningbo/JS20004"]["withheld"] == ["flat lead (range < 0.02 mV)"]
    assert results["ningbo/JS20004"]["positive"] == {}
    assert all(len(r["positive"]) == 5 for name, r in results.items() if name != "ningbo/JS20004")


@pytest.mark.slow
def test_records_written_here_short_other_rates_eight_leads_and_withheld(script, model, predictor, tmp_path):
    short = ecg(250, 7)  # one segment of its own length, resampled 250 → 100 Hz (2/5)
    got = agree(script, model, predictor, write(tmp_path, "short", short, 250))
    assert not got["withheld"] and len(got["positive"]) == 5
    eight = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]  # III, aVR, aVL, aVF derived; 360 Hz (5/18), 12 s
    assert agree(script, model, predictor, write(tmp_path, "eight", ecg(360, 12, 8), 360, eight))["positive"]

    flat = short.copy()
    flat[LEADS.index("V3")] = 0.05
    same = short / np.ptp(short, axis=1, keepdims=True)  # normalised per lead: every lead spans 1
    for name, signal, gain, why in (("flat", flat, None, "flat lead"), ("volts", short / 1000, None, "median lead"),
                                    ("same", same, None, "every lead spans the same range"),
                                    ("gain0", short, "0/mV", "gain 0")):
        got = agree(script, model, predictor, write(tmp_path, name, signal, 250, gain=gain))
        assert got["positive"] == {} and any(w.startswith(why) for w in got["withheld"]), (name, got["withheld"])


@pytest.mark.slow
def test_the_command_line_and_a_site_profile(script, model, onnx_file, tmp_path):
    """The script's command line (--json, the patient options); with ``ecgnet.site`` in the file, the site's
    calibration and thresholds, as ``predict --site``."""
    from ecgnet.export.site import with_site
    from ecgnet.runs import profiles
    from ecgnet.runs.bundled import bundled_root

    header = write(tmp_path, "short", ecg(250, 7), 250)
    out = subprocess.run([sys.executable, str(SCRIPT), str(onnx_file), str(header), "--json", "--age", "95",
                          "--height", "181"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [script.diagnose(*model, header, age=95, height=181)]

    run = tmp_path / MODEL
    shutil.copytree(bundled_root() / MODEL, run)
    classes = ["CD", "HYP", "MI", "NORM", "STTC"]
    calibrators = {c: {"kind": "temperature", "temperature": 0.5 + k} for k, c in enumerate(classes)}
    calibrators["MI"] = {"kind": "isotonic", "x": [0.0, 0.3, 0.6, 1.0], "y": [0.05, 0.2, 0.7, 0.9]}
    calibrators["HYP"] = {"kind": "none"}
    profiles.save_profile(run, {"site": "clinic", "run": MODEL, "classes": classes, "calibrators": calibrators,
                                "thresholds": {c: 0.2 + 0.15 * k for k, c in enumerate(classes)},
                                "method": "youden", "calibration": "temperature"})
    with_profile = tmp_path / "site.onnx"
    with_profile.write_bytes(with_site(onnx_file.read_bytes(), profiles.load_profile(run, "clinic", classes)))
    calibrated = agree(script, script.load(with_profile), Predictor(run, site="clinic"), header, age=95, height=181)
    plain = json.loads(out)[0]["probabilities"]
    assert calibrated["probabilities"]["HYP"] == plain["HYP"]  # kind 'none'
    assert all(abs(calibrated["probabilities"][c] - plain[c]) > 1e-3 for c in ("CD", "MI", "NORM", "STTC"))


def test_the_script_reads_the_metadata_as_ecgnet_means_it(script, predictor):
    """Without an export: the amplitude bounds of ecgnet.calls, the script's patient encoding (of a file's age text
    too) and its segment and window starts are ecgnet's own."""
    from ecgnet.data.patient import age_from
    from ecgnet.data.records import amplitude_problems
    from ecgnet.export.onnx import _metadata
    from ecgnet.models.windows import window_starts

    meta = {k.removeprefix("ecgnet."): json.loads(v) for k, v in _metadata(predictor.run).items()}
    pre = meta["preprocessing"]
    for patient in ({}, {"age": 95, "sex": "female", "height": 170}, {"age": 89.5, "weight": 0},
                    {"age": 300, "sex": "male", "height": -1, "weight": 80.5}):
        assert np.allclose(script.metadata_vector(pre, **patient), predictor.metadata_vector(**patient), atol=1e-6)
    for text in (">89", "> 89", ">89.0", "300", "200", "-3", ">40", "NaN", "64", "149.5"):  # a header's age
        assert np.allclose(script.metadata_vector(pre, age=text), predictor.metadata_vector(age=age_from(text)),
                           atol=1e-6), text
    for n, length, stride in ((1000, 250, 125), (700, 250, 125), (3840, 1000, 1000), (1190, 1000, 1000),
                              (250, 250, 125), (600, 1000, 1000)):
        assert script.starts(n, length, stride) == window_starts(n, length, stride)
    signal = ecg(100, 10)
    flat, same = signal.copy(), signal / np.ptp(signal, axis=1, keepdims=True)
    flat[3] = np.linspace(0, 0.02, 1000)  # a range of 0.02 mV is not flat, 0.99 × that is
    def kinds(reasons):  # the rule behind each reason, in either wording
        return sorted(k for r in reasons for k in ("flat", "same", "median") if k in r)

    for x in (signal, flat, 0.99 * flat, same, signal * 20, signal / 10, np.zeros_like(signal)):
        ours = kinds(script.withheld_calls(x, False, meta["calls"]["amplitude_bounds"]))
        assert ours == kinds(amplitude_problems(x)) and len(ours) == len(amplitude_problems(x)), x[:, :3]
    assert not amplitude_problems(flat) and amplitude_problems(0.99 * flat)


def test_a_record_with_invalid_samples_is_refused_as_predict_refuses_it(script, tmp_path):
    """WFDB's invalid-sample value reads as NaN: every probability was NaN and --json printed the token NaN."""
    signal = ecg(100, 10)
    signal[4, 500] = np.nan  # wfdb writes it as the format's invalid value
    path = write(tmp_path, "gap", signal, 100)
    with pytest.raises(ECGNetError, match="NaN or infinite"):
        read_ecg(path, 100)
    with pytest.raises(SystemExit, match="NaN or infinite samples"):
        script.read_wfdb(path, ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])

