"""int8 calibrated on a manifest of the site's own records (``ecgnet export RUN --quantize int8
--calibration-manifest M.csv``), without PTB-XL: the file runs in ONNX Runtime (``predict --engine onnx-int8``)
near fp32, its metadata names the manifest; a run trained on a manifest calibrates on it by default; bad
records are left out and counted; too few records, a missing manifest are refused in one line. The PTB-XL
calibration is unchanged (``tests/test_export.py``; its windows and batches are checked here without data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from conftest import write_wfdb
from ecgnet.checksum import sha256_file
from ecgnet.cli import app
from ecgnet.errors import ECGNetError
from ecgnet.export import export
from ecgnet.export.int8 import (MIN_MANIFEST_RECORDS, batch_size, calibration_source, calibration_windows,
                                manifest_calibration)
from ecgnet.inference.engines import OnnxModel
from ecgnet.inference.predictor import Predictor
from ecgnet.models.windows import windowed_proba
from ecgnet.runs import Run

INT8_MEAN = 0.01  # as tests/test_export.py bounds int8 against fp32 on fold 10


@pytest.fixture
def no_ptbxl(tmp_path, monkeypatch):
    """No PTB-XL, and the manifest's signal cache in the test's folder."""
    monkeypatch.delenv("ECGNET_DATA", raising=False)
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))


def site_manifest(folder: Path, n: int = 20, short: int = 0, extra: str = "") -> Path:
    """``n`` readable 10 s records (and ``short`` of 6 s) of a site, with age and sex, in ``folder``/site.csv."""
    lines = ["record,age,sex"]
    for i in range(n + short):
        write_wfdb(folder / "ecg", f"r{i:02d}", samples=600 if i >= n else None, seed=i)
        lines.append(f"ecg/r{i:02d}.hea,{40 + i},{'female' if i % 2 else 'male'}")
    path = folder / "site.csv"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def run(untrained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(untrained_run, copy)
    return copy


def quantization(path) -> dict:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props["ecgnet.quantization"])


def test_int8_calibrated_on_a_manifest_runs_near_fp32_without_ptbxl(run, tmp_path, no_ptbxl):
    # 20 records of 10 s, 2 of 6 s (their windows within their own 6 s), one whose header is damaged, one
    # under 2.5 s (unreadable both: left out, counted), a row whose file is missing (a bad row, skipped)
    manifest = site_manifest(tmp_path, n=20, short=2)
    (tmp_path / "ecg" / "damaged.hea").write_text("this is no WFDB header\n")
    write_wfdb(tmp_path / "ecg", "brief", samples=200, seed=99)
    with manifest.open("a") as fh:
        fh.write("ecg/damaged.hea,50,male\necg/brief.hea,51,female\necg/gone.hea,52,male\n")
    result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8",
                                      "--calibration-manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"int8 is calibrated on up to 128 records of {manifest}" in said and "not on PTB-XL" in said
    assert f"int8 calibrated on 22 records of {manifest.resolve()}" in said
    assert "left out: 1 bad manifest rows, 2 unreadable records" in said

    used = quantization(run / "model.int8.onnx")
    assert used["type"] == "int8" and used["calibration"] == "99.99th percentile on 22 records of the manifest site.csv"
    assert used["calibration_manifest"] == {
        "path": str(manifest.resolve()), "sha256": sha256_file(manifest), "records": 22, "seed": 1, "rows": 24,
        "rows_skipped": 1, "drawn": 24, "unreadable": 2, "shorter_than_input": 0, "input_seconds": 2.5,
        "chosen": "--calibration-manifest"}

    predictor = Predictor(run, engine="onnx-int8")  # ONNX Runtime on the int8 file, as predict runs it
    assert predictor.engine.quantization == used
    got = predictor.predict_file(tmp_path / "ecg" / "r03.hea")
    expected = Predictor(run).predict_file(tmp_path / "ecg" / "r03.hea")
    p = {d["class"]: d["probability"] for d in got["diagnoses"]}
    assert p.keys() == {d["class"] for d in expected["diagnoses"]}
    assert all(abs(p[d["class"]] - d["probability"]) <= 0.1 for d in expected["diagnoses"])

    fp32 = OnnxModel(export(run, out=tmp_path / "fp32.onnx"))
    int8 = OnnxModel(run / "model.int8.onnx")
    records, _ = manifest_calibration(Run.open(run), manifest)
    signal, metadata = torch.as_tensor(records.signal), torch.as_tensor(records.metadata)
    dp = (windowed_proba(int8, signal, metadata, 250, 125) - windowed_proba(fp32, signal, metadata, 250, 125)).abs()
    dp = dp.numpy()
    assert dp.shape == (22, 5) and dp.max() > 0  # quantized: not the fp32 graph
    assert dp.mean() <= INT8_MEAN


def test_a_run_trained_on_a_manifest_calibrates_on_it_by_default(run, tmp_path, no_ptbxl):
    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS)
    info = json.loads((run / "run.json").read_text())
    info["collection"] = {"name": "site", "manifest": str(manifest.resolve()), "records": MIN_MANIFEST_RECORDS}
    (run / "run.json").write_text(json.dumps(info))
    result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (f"records of {manifest.resolve()}, the manifest this run was trained on (run.json: collection.manifest; "
            "no --data or ECGNET_DATA given)") in said
    assert f"int8 calibrated on {MIN_MANIFEST_RECORDS} records" in said and "left out" not in said
    used = quantization(run / "model.int8.onnx")["calibration_manifest"]
    assert (used["path"], used["records"]) == (str(manifest.resolve()), MIN_MANIFEST_RECORDS)
    assert used["chosen"] == "the run's training manifest (run.json: collection.manifest)"

    # PTB-XL given: PTB-XL, as before (a PTB-XL folder's two tables are enough to choose it)
    ptbxl = tmp_path / "ptbxl"
    ptbxl.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (ptbxl / name).write_text("")
    assert calibration_source(info, data=ptbxl).root == ptbxl
    assert calibration_source(info, data=ptbxl, manifest=manifest).manifest == manifest  # the option wins
    # the training manifest gone: both ways said
    manifest.unlink()
    with pytest.raises(ECGNetError, match=r"calibrates on PTB-XL's training folds: no PTB-XL folder given.*; or on "
                                          r"records of your own: --calibration-manifest M.csv \(the run's training "
                                          r"manifest .*site.csv is not there any more\)"):
        calibration_source(info)


def test_manifest_calibration_reads_as_predict_scales(run, tmp_path, no_ptbxl):
    """The run's own metadata scaler (run.json), as predict scales a record's age and sex; 128 records at most,
    drawn with the seed (the same ones each time)."""
    info = json.loads((run / "run.json").read_text())
    info["metadata_scaler"] = {"mean": [60.0, 0.5, 170.0, 70.0], "std": [10.0, 0.5, 10.0, 15.0]}
    (run / "run.json").write_text(json.dumps(info))
    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS)
    records, account = manifest_calibration(Run.open(run), manifest)
    predictor = Predictor(run)
    expected = {tuple(predictor.metadata_vector(age=40 + i, sex="female" if i % 2 else "male"))
                for i in range(MIN_MANIFEST_RECORDS)}
    assert {tuple(m) for m in records.metadata} == expected
    assert records.signal.shape == (MIN_MANIFEST_RECORDS, 12, 1000) and (records.lengths == 1000).all()
    assert account["records"] == account["drawn"] == MIN_MANIFEST_RECORDS


def test_int8_calibration_errors(run, tmp_path, no_ptbxl):
    with pytest.raises(ECGNetError, match=r"--calibration-manifest .*nowhere.csv: no such file"):
        export(run, quantize="int8", calibration_manifest=tmp_path / "nowhere.csv")
    with pytest.raises(ECGNetError, match=r"--calibration-manifest .*: a folder, not a manifest CSV"):
        export(run, quantize="int8", calibration_manifest=tmp_path)
    result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8", "--calibration-manifest",
                                      str(tmp_path / "nowhere.csv")])
    assert result.exit_code == 2 and "nowhere.csv: no such file" in result.output
    few = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS - 2, extra="ecg/gone.hea,50,male\n")
    with pytest.raises(ECGNetError, match=rf"site.csv: {MIN_MANIFEST_RECORDS - 2} usable record\(s\) for int8 "
                                          rf"calibration \(1 bad rows skipped\); it needs at least "
                                          rf"{MIN_MANIFEST_RECORDS} \(it takes up to 128\)"):
        export(run, quantize="int8", calibration_manifest=few)
    with pytest.raises(ECGNetError, match="--calibration-manifest calibrates --quantize int8"):
        export(run, out=tmp_path / "m.onnx", calibration_manifest=few)
    assert not (run / "model.int8.onnx").exists() and not (tmp_path / "m.onnx").exists()


def test_calibration_windows_stay_within_each_record():
    """10 s records: the slices the PTB-XL calibration always took, window-major; a 6 s record's windows end at
    its own end, never in the repeated rest of its row. Batches are equal (ONNX Runtime stacks them)."""
    rng = np.random.default_rng(0)
    signal, metadata = rng.normal(size=(3, 12, 1000)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    crops, meta = calibration_windows(signal, metadata, [1000] * 3, 250, 125)
    starts = [0, 125, 250, 375, 500, 625, 750]
    assert np.array_equal(crops, np.concatenate([signal[:, :, s:s + 250] for s in starts]))
    assert np.array_equal(meta, np.repeat(metadata[None], 7, 0).reshape(-1, 8))
    crops, meta = calibration_windows(signal, metadata, [1000, 600, 1000], 250, 125)
    short = [c for c, m in zip(crops, meta) if np.array_equal(m, metadata[1])]
    assert len(crops) == 7 + 4 + 7 and len(short) == 4  # starts 0, 125, 250, 350
    assert np.array_equal(short[-1], signal[1, :, 350:600])
    assert [batch_size(n) for n in (896, 128 * 7, 140, 127, 18)] == [64, 64, 35, 1, 18]
