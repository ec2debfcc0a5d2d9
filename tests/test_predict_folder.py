"""`ecgnet predict` on folders: one CSV row per record, a broken record reported and never stopping the
others, records longer than 10 s covered whole, and metadata taken from the header."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.config import parse_config
from ecgnet.inference.predictor import Predictor
from ecgnet.models import build_model
from ecgnet.runs import save_model
from test_records import write_challenge

CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


@pytest.fixture
def folder(tmp_path):
    """Three readable Challenge records (one of 30 s, one at 1000 Hz) and one with a truncated .mat."""
    root = tmp_path / "challenge"
    write_challenge(root / "a", name="A0001")
    write_challenge(root / "a", name="A0002", seconds=30, seed=1)
    write_challenge(root / "b", name="S0001", fs=1000, seed=2)
    broken, _ = write_challenge(root / "b", name="Z0001", seed=3)
    mat = broken.with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[:5000])
    return root


def test_folder_to_csv_with_a_broken_record(folder, untrained_run, tmp_path):
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", str(folder), "--checkpoint", str(untrained_run), "--resample",
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "Z0001.hea" in result.stderr and result.stderr.count("error:") == 1
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["path", *(f"p_{c}" for c in CLASSES), "positives", "warnings", "notes",
                                   "seconds", "coverage", "format", "statements", "model", "engine", "weights_sha256",
                                   "site", "error"]
    assert list(table["format"]) == ["wfdb", "wfdb", "wfdb", ""]
    assert [p.rsplit("/", 1)[-1] for p in table["path"]] == ["A0001.hea", "A0002.hea", "S0001.hea", "Z0001.hea"]
    ok, bad = table.iloc[:3], table.iloc[3]
    assert (ok["error"] == "").all() and "Z0001.hea" in bad["error"]
    assert ok[[f"p_{c}" for c in CLASSES]].map(lambda p: 0 <= float(p) <= 1).all().all()
    assert bad[[f"p_{c}" for c in CLASSES]].eq("").all()
    assert "3 segments of 10 s" in ok.iloc[1]["coverage"] and float(ok.iloc[1]["seconds"]) == 30
    assert "resampled: 1000 Hz → 100 Hz" in ok.iloc[2]["notes"] and "resampled" not in ok.iloc[2]["warnings"]
    assert "3 of 4 records diagnosed" in result.stdout


def test_a_long_record_is_the_average_of_its_10_second_segments(folder, untrained_run):
    predictor = Predictor(untrained_run)
    res = predictor.predict_file(folder / "a" / "A0002.hea", resample=True)
    from ecgnet.data.records import read_ecg

    signal = read_ecg(folder / "a" / "A0002.hea", 100, resample=True).signal
    segments = [predictor.predict_signal(signal[:, s:s + 1000], predictor.metadata_vector()) for s in (0, 1000, 2000)]
    expected = dict(zip(predictor.classes, np.mean(segments, 0)))
    assert {d["class"]: d["probability"] for d in res["diagnoses"]} == pytest.approx(expected, abs=1e-4)
    assert any(n.startswith("longer than 10 s") for n in res["notes"]) and not res["warnings"]


def test_untrusted_amplitude_gets_no_calls(tmp_path, untrained_run):
    path, _ = write_challenge(tmp_path, per_lead_uv=[1000] * 12)
    predictor = Predictor(untrained_run)
    predictor.run.thresholds = {c: 0.5 for c in predictor.classes}
    res = predictor.predict_file(path, resample=True)
    assert not res["amplitude_trusted"] and res["positives"] == []
    assert all(d["positive"] is None for d in res["diagnoses"])
    assert any("cannot be trusted" in w for w in res["warnings"])


@pytest.fixture(scope="module")
def metadata_run(tmp_path_factory):
    """An untrained early-fusion run that uses metadata (no data needed)."""
    config = parse_config({"name": "untrained_meta", "model": {"name": "early_fusion", "params": {
        "modalities": ["time", "metadata"], "widths": [16, 32]}}}, source="untrained_meta")
    torch.manual_seed(0)
    model = build_model(config.model.name, 5, **config.model.params).eval()
    run_dir = tmp_path_factory.mktemp("meta") / config.name
    save_model(run_dir, model, config, {"name": config.name, "classes": CLASSES, "seed": 0,
                                        "metadata_scaler": {"mean": [60, 0.5, 170, 75], "std": [15, 0.5, 10, 15]}})
    return run_dir


def test_metadata_comes_from_the_header_and_options_override(tmp_path, metadata_run):
    path, _ = write_challenge(tmp_path)  # "#Age: 61", "#Sex: Female"
    predictor = Predictor(metadata_run)
    from_header = predictor.predict_file(path, resample=True)
    assert from_header["metadata"] == {"age": 61.0, "sex": "female"}
    overridden = predictor.predict_file(path, resample=True, age=30)
    assert overridden["metadata"] == {"age": 30, "sex": "female"}
    assert from_header["diagnoses"] != overridden["diagnoses"]


def test_the_other_coverings_of_a_long_record(folder, untrained_run):
    from ecgnet.data.records import read_ecg
    from ecgnet.errors import ECGNetError
    from ecgnet.models.windows import windowed_proba

    path = folder / "a" / "A0002.hea"
    signal = read_ecg(path, 100, resample=True).signal
    first = Predictor(untrained_run, long_records="first")
    res = first.predict_file(path, resample=True)
    expected = dict(zip(first.classes, Predictor(untrained_run).predict_signal(signal[:, :1000], first.metadata_vector())))
    assert {d["class"]: d["probability"] for d in res["diagnoses"]} == pytest.approx(expected, abs=1e-4)
    assert res["coverage"].startswith("the first 10 s of 30.0 s")
    windows = Predictor(untrained_run, long_records="windows")
    whole = windowed_proba(windows.engine, torch.as_tensor(signal[None]), torch.as_tensor(windows.metadata_vector()[None]),
                           250, 125)[0].numpy()
    np.testing.assert_allclose(windows.predict_signal(signal, windows.metadata_vector()), whole, atol=1e-6)
    with pytest.raises(ECGNetError, match="--long-records"):
        Predictor(untrained_run, long_records="all")


def test_one_record_with_out_prints_its_diagnoses_and_where_the_row_went(untrained_run, write_record, tmp_path):
    path, _ = write_record("one")
    out = tmp_path / "one.csv"
    result = CliRunner().invoke(app, ["predict", str(path), "--checkpoint", str(untrained_run), "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and result.stdout.rstrip().endswith(f"→ {out}")  # the CSV was never mentioned
    as_json = tmp_path / "one.json"  # --out p.json got CSV (a wheel-user audit): a .json name gets --json's JSON
    result = CliRunner().invoke(app, ["predict", str(path), "--checkpoint", str(untrained_run), "--out", str(as_json),
                                      "--no-progress", "--json"])
    assert result.exit_code == 0 and json.loads(as_json.read_text()) == json.loads(result.stdout)


def test_the_library_refuses_what_would_give_a_wrong_diagnosis_silently(untrained_run, write_record):
    """Through the Python API: a record read at another rate than the model's (a 500 Hz signal scored as 100 Hz
    gave confident wrong calls), NaN in the signal (NaN probabilities, every call 'negative'), an implausible
    or misspelt patient field (age inf; age_years raised a raw TypeError). A dataset's own values are taken as they
    are (PTB-XL's heights of 6 cm); plausibility is checked where a user types them (check_patient)."""
    from ecgnet.data.readers import read_ecg_any
    from ecgnet.errors import ECGNetError

    predictor = Predictor(untrained_run)
    path, _ = write_record("rate")
    at_500 = read_ecg_any(path, 500, resample=True)
    with pytest.raises(ECGNetError, match=r"at 500 Hz, the model reads 100 Hz \(read it with read_ecg_any"):
        predictor.predict_record(at_500)
    record = read_ecg_any(path, 100)
    predictor.predict_record(record)  # as read: fine
    record.signal[3, 100:110] = np.nan
    with pytest.raises(ECGNetError, match="NaN or infinite"):
        predictor.predict_record(record)
    record = read_ecg_any(path, 100)
    with pytest.raises(ECGNetError, match="age must be a finite number"):
        predictor.predict_record(record, age=float("inf"))
    with pytest.raises(ECGNetError, match="sex must be male or female"):
        predictor.predict_record(record, sex="bogus")
    with pytest.raises(ECGNetError, match="unknown patient field\\(s\\) age_years: give age, sex, height, weight"):
        predictor.predict_record(record, age_years=60)


def test_the_library_resamples_by_default_as_the_cli_does(untrained_run, write_record):
    """predict_many over a folder of 500 Hz files gave an error row for every record (resample=False by
    default) while `ecgnet predict` resampled them."""
    from ecgnet.inference.batch import predict_many

    path = write_record("fast", fs=500)[0]
    predictor = Predictor(untrained_run)
    (result,) = predict_many(predictor, [path], progress=False)
    assert "error" not in result and "resampled: 500 Hz → 100 Hz" in result["notes"]
    assert "resampled: 500 Hz → 100 Hz" in predictor.predict_file(path)["notes"]


def test_the_array_api_checks_shapes_at_its_boundary():
    """Predictor.predict_signal and predict_proba took any array: a (samples, 12) record got '0.1 s long',
    11 leads or metadata of 3 features a raw torch error, NaN samples were scored, float64 arrays a dtype
    error, 3 records with 2 metadata rows were accepted and aggregate='median' silently meant 'mean'."""
    from ecgnet.errors import ECGNetError
    from ecgnet.inference.batch import predict_proba
    from ecgnet.runs.directory import Run

    predictor = Predictor("baseline_time")
    signal, unknown = np.random.default_rng(0).normal(0, 0.3, (12, 1000)), predictor.metadata_vector()
    assert predictor.predict_signal(signal.tolist(), unknown).shape == (5,)  # a list, float64: fine
    for bad_signal, bad_metadata, message in ((signal.T, unknown, r"leads first .*got shape \(1000, 12\)"),
                                              (signal[:11], unknown, "got shape"), (signal[0], unknown, "got shape"),
                                              (np.full_like(signal, np.nan), unknown, "NaN"),
                                              (signal, unknown[:3], "8 features"), (signal, None, "8 features")):
        with pytest.raises(ECGNetError, match=message):
            predictor.predict_signal(bad_signal, bad_metadata)
    run = Run.open("baseline_time")
    three, metadata = np.stack([signal] * 3), np.zeros((3, 8))
    p = predict_proba(run.model, three, metadata, run.window, run.stride)  # float64 in: cast
    np.testing.assert_allclose(p[0], predictor.predict_signal(signal, np.zeros(8)), atol=1e-6)
    for args, message in (((three, metadata[:2]), "one row of features per record"),
                          ((signal, metadata[:1]), r"\(records, 12, samples\)")):
        with pytest.raises(ValueError, match=message):
            predict_proba(run.model, *args, run.window, run.stride)
    with pytest.raises(ValueError, match="aggregate must be one of max, mean, not 'median'"):
        predict_proba(run.model, three, metadata, run.window, run.stride, aggregate="median")


def test_a_model_that_reads_only_the_patient_data_says_so_and_calls_nothing_without_it(write_record, untrained_run):
    """The metadata run reads age, sex, height and weight, never the ECG: on a record without them it called MI,
    CD and STTC positive and said it saw 'the whole 10.0 s' (found in a viewer audit). It says what it reads,
    and with none of it known it makes no calls."""
    from pathlib import Path

    from ecgnet.data.readers import read_ecg_any
    from ecgnet.inference.predictor import METADATA_ONLY, NOTHING_READ

    run = Path(__file__).resolve().parents[1] / "runs" / "metadata"
    if not (run / "model.safetensors").is_file():
        pytest.skip("needs the committed runs/metadata")
    predictor = Predictor(run)
    assert not predictor.reads_signal and Predictor(untrained_run).reads_signal
    record = read_ecg_any(write_record("blind")[0], 100)
    told_nothing = predictor.predict_record(record)
    assert told_nothing["warnings"][:2] == [METADATA_ONLY, NOTHING_READ]
    assert told_nothing["positives"] == [] and {d["positive"] for d in told_nothing["diagnoses"]} == {None}
    assert told_nothing["coverage"].startswith("none of the ECG")
    told = predictor.predict_record(record, age=70, sex="male")
    assert told["warnings"][0] == METADATA_ONLY and NOTHING_READ not in told["warnings"]
    assert {d["positive"] for d in told["diagnoses"]} <= {True, False}
    record.amplitude_trusted = False  # the ECG's amplitudes are no concern of a model that does not read them
    assert {d["positive"] for d in predictor.predict_record(record, age=70)["diagnoses"]} <= {True, False}


def test_thresholds_under_five_percent_are_named(untrained_run, tmp_path):
    """A 71-class model called ventricular aneurysm 'positive' at 1.4 % (its Youden threshold: 0.5 %), and a site's
    fine-tuned HYP at 4 %: predict's header names such thresholds (found in the viewer and site audits)."""
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(untrained_run, run)
    assert Predictor(run).low_thresholds() is None  # no thresholds at all
    (run / "val").mkdir()
    thresholds = dict(zip(["CD", "HYP", "MI", "NORM", "STTC"], [0.03, 0.2, 0.004, 0.5, 0.6]))
    (run / "val" / "metrics.json").write_text(json.dumps({"per_class": {c: {"threshold": t}
                                                                         for c, t in thresholds.items()}}))
    note = Predictor(run).low_thresholds()
    assert note.startswith("2 classes have a threshold under 0.05 (") and "0.004" in note and "0.030" in note


def _muse_with(path, birth_year: int, extra_lead: str):
    """A GE MUSE file (stated age 61) whose dates give another age, with a lead no model reads: two warnings
    whose text holds a number or a lead name of its own."""
    import copy
    import xml.etree.ElementTree as ET

    from ecg_writers import ecg, write_muse

    tree = ET.parse(write_muse(path, ecg(500, 10, seed=birth_year)))
    root = tree.getroot()
    ET.SubElement(root.find("PatientDemographics"), "DateofBirth").text = f"01-15-{birth_year}"
    ET.SubElement(ET.SubElement(root, "TestDemographics"), "AcquisitionDate").text = "03-01-2020"
    wave = root.find("Waveform")
    lead = copy.deepcopy(wave.findall("LeadData")[-1])
    lead.find("LeadID").text = extra_lead
    wave.append(lead)
    tree.write(path, encoding="ISO-8859-1", xml_declaration=True)


def test_the_closing_summary_groups_warnings_by_kind(untrained_run, tmp_path):
    """predict FOLDER --out: the summary lists each kind of warning once — the same warning with another age or
    lead name in it is the same kind — with how many records have it and one example (the age warning of three
    files was listed three times, once per pair of ages)."""
    folder = tmp_path / "muse"
    folder.mkdir()
    for year, lead in ((1940, "V4R"), (1950, "V3R"), (1980, "V7")):
        _muse_with(folder / f"ecg_{year}.xml", year, lead)
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(app, ["predict", str(folder), "--checkpoint", str(untrained_run), "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    warnings = pd.read_csv(out, keep_default_na=False)["warnings"]
    assert len({w for row in warnings for w in row.split(";") if "states age" in w}) == 3  # three variants
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 of 3 records diagnosed (3 with warnings; 0 failed)")
    kinds = [line for line in lines[1:] if line.startswith("  warning in ")]
    assert len(kinds) == len(lines) - 1 == 2, result.stdout
    age = next(line for line in kinds if "states age" in line)
    assert age.startswith("  warning in 3 records: the file states age …, but its birth and acquisition dates give "
                          "… — e.g. ") and age.count("states age") == 2  # the kind, then its one example
    assert "ecg_1940.xml: the file states age 61, but its birth and acquisition dates give 80" in age
    lead = next(line for line in kinds if "standard leads" in line)
    assert lead.startswith("  warning in 3 records: lead '…' is not one of the … standard leads — e.g. ")
    assert "lead 'V4R' is not one of the 12 standard leads: ignored" in lead and "V3R" not in lead

    from ecgnet.inference.batch import summary, warning_kind

    s = summary([{"record": "a", "warnings": ["flat lead: V2, V4 (range < 0.02 mV)", "flat lead: V1"]},
                 {"record": "b", "warnings": ["flat lead: V6"]}, {"record": "c", "error": "c: unreadable"}])
    assert s["warnings"] == {"flat lead": 2} and s["examples"]["flat lead"] == {
        "record": "a", "warning": "flat lead: V2, V4 (range < 0.02 mV)"}  # a record counts once per kind
    assert warning_kind("3 ECG channel(s) without a physical dimension (ECG I, X, Y …): read as µV") == \
        warning_kind("12 ECG channel(s) without a physical dimension (I, II, III …): read as µV")
    assert warning_kind("lead(s) I, II without a ChannelSensitivity (or one of 0): x") == \
        warning_kind("lead(s) aVF without a ChannelSensitivity (or one of 0): x")
    assert warning_kind("sequence MDC_ECG_LEAD_V3R is not one of the 12 standard leads: ignored") == \
        warning_kind("sequence MDC_ECG_LEAD_V4R is not one of the 12 standard leads: ignored")
    assert warning_kind("flat lead: V1") != warning_kind("coarse amplitude resolution: 61 µV per step")
