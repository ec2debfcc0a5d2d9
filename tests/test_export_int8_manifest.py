"""int8 calibrated on a manifest of the site's own records (``ecgnet export RUN --quantize int8
--calibration-manifest M.csv``), without PTB-XL: the file runs in ONNX Runtime (``predict --engine onnx-int8``)
near fp32, its metadata names the manifest; a run trained on a manifest calibrates by default on the rows of it that
it trained on, reading them under the run's read limits; bad records are left out and counted; too few records, a
missing manifest, a manifest with --data are refused in one line; an export adds no signal cache; a late-fusion
graph calibrates on records under 10 s too. The PTB-XL calibration is unchanged (``tests/test_export.py``; its
windows and batches are checked here without data)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import write_wfdb
from ecgnet.checksum import sha256_file
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.cli import app
from ecgnet.errors import ECGNetError
from ecgnet.export import export
from ecgnet.data.cache_files import list_caches
from ecgnet.export.int8 import batch_size, calibration_batches, calibration_windows
from ecgnet.export.int8_records import MIN_MANIFEST_RECORDS, calibration_source, manifest_calibration
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
        "rows_skipped": 1, "held_out": 0, "drawn_from": "every row (the run was not trained on a manifest)",
        "drawn": 24, "unreadable": 2, "shorter_than_input": 0, "input_seconds": 2.5,
        "read_limits": asdict(DEFAULT_LIMITS), "chosen": "--calibration-manifest"}
    assert not list_caches()  # read into a temporary folder: nothing left in $ECGNET_CACHE

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


def test_a_cross_validated_run_calibrates_on_its_manifest_by_default_and_adds_no_cache(run, tmp_path, no_ptbxl):
    """A cross-validated run's final model saw every record: every row may calibrate it. The draw is seeded
    and read into a temporary folder: two exports give the same calibration and leave no signal cache behind (each
    draw had added one to $ECGNET_CACHE)."""
    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS)
    info = json.loads((run / "run.json").read_text())
    info["collection"] = {"name": "site", "manifest": str(manifest.resolve()), "records": MIN_MANIFEST_RECORDS}
    info["cv"] = {"kind": "2-fold"}
    (run / "run.json").write_text(json.dumps(info))
    accounts = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8"])
        assert result.exit_code == 0, result.output
        accounts.append(quantization(run / "model.int8.onnx")["calibration_manifest"])
        assert not list_caches()
    said = " ".join(result.output.split())
    assert (f"records of {manifest.resolve()}, the manifest this run was trained on (run.json: collection.manifest; "
            "no --data or ECGNET_DATA given)") in said and "nothing is added to $ECGNET_CACHE" in said
    assert f"int8 calibrated on {MIN_MANIFEST_RECORDS} records" in said and "left out" not in said
    used = accounts[0]
    assert accounts[1] == used
    assert (used["path"], used["records"], used["held_out"]) == (str(manifest.resolve()), MIN_MANIFEST_RECORDS, 0)
    assert used["drawn_from"] == ("every row (the run was cross-validated: its final model saw every record of its "
                                  "manifest, training on all but the inner validation rows that chose its epoch)")
    assert used["chosen"] == "the run's training manifest (run.json: collection.manifest)"

    # PTB-XL given: PTB-XL, as before (a PTB-XL folder's two tables are enough to choose it)
    ptbxl = tmp_path / "ptbxl"
    ptbxl.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (ptbxl / name).write_text("")
    assert calibration_source(info, data=ptbxl).root == ptbxl
    # the training manifest gone: both ways said
    manifest.unlink()
    with pytest.raises(ECGNetError, match=r"calibrates on PTB-XL's training folds: no PTB-XL folder given.*; or on "
                                          r"records of your own: --calibration-manifest M.csv \(the run's training "
                                          r"manifest .*site.csv is not there any more\)"):
        calibration_source(info)


CONFIG = """\
name: once
data: {task: superdiagnostic}
model: {name: time_resnet1d, params: {widths: [8, 8]}}
training: {epochs: 1, batch_size: 8, lr: 0.01, threads: 1, accelerator: cpu}
"""


def test_a_run_trained_once_calibrates_on_its_training_rows_under_its_read_limits(tmp_path, no_ptbxl):
    """Trained once on a manifest (fold 3 test, fold 2 validation), a run calibrated by default on a draw of all
    its manifest's rows, test and validation rows too: now only on the rows it trained on. Trained with
    --max-seconds 700, it read a record of 601 s that the default limits refuse: training records the limits
    (run.json's collection.read_limits) and calibration reads under them."""
    from test_finetune import write_learnable

    manifest = write_learnable(tmp_path, 72)  # 10 s records, two a patient: 24 test, 16 validation, 32 training
    table = pd.read_csv(manifest)
    patient = table["patient"].str[1:].astype(int)
    table["fold"] = np.where(patient < 12, 3, np.where(patient < 20, 2, 1))
    write_wfdb(tmp_path, "long", samples=60100, seed=7)  # 601 s: over the default max_seconds (600)
    table.loc[len(table)] = {"record": "long.hea", "patient": "p99", "source": "site0", "X": 1, "Y": 0, "fold": 1}
    table.to_csv(manifest, index=False)
    (tmp_path / "c.yaml").write_text(CONFIG)
    result = CliRunner().invoke(app, ["train", "-c", str(tmp_path / "c.yaml"), "--manifest", str(manifest),
                                      "--runs-dir", str(tmp_path / "runs"), "--n-boot", "10", "--no-progress",
                                      "--max-seconds", "700"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "once"
    info = json.loads((run / "run.json").read_text())
    assert info["split_records"] == {"train": 33, "val": 16, "test": 24}
    assert info["collection"]["read_limits"] == asdict(ReadLimits(max_seconds=700))

    trained = [c.key for c in list_caches()]  # training's own cache of the manifest
    result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "int8 calibrated on 33 records" in said and "left out: 40 rows the run held out" in said
    used = quantization(run / "model.int8.onnx")["calibration_manifest"]
    assert (used["rows"], used["held_out"], used["drawn"], used["records"], used["unreadable"]) == (73, 40, 33, 33, 0)
    assert used["drawn_from"].startswith("the rows the run trained on") and used["read_limits"]["max_seconds"] == 700
    assert [c.key for c in list_caches()] == trained  # none added

    del info["collection"]["read_limits"]  # as a run trained before the limits were recorded: the long one refused
    (run / "run.json").write_text(json.dumps(info))
    _, account = manifest_calibration(Run.open(run), manifest, from_run=True)
    assert (account["records"], account["unreadable"]) == (32, 1)
    (run / "val" / "predictions.csv").unlink()  # which rows it held out cannot be told: refused, not guessed
    with pytest.raises(ECGNetError, match=r"cannot tell which rows of .*m.csv the run held out \(its "
                                          r"val/predictions.csv and test/predictions.csv are not both there\)"):
        manifest_calibration(Run.open(run), manifest, from_run=True)


def test_a_cross_validation_fold_calibrates_on_the_rows_it_did_not_hold_out(tmp_path, no_ptbxl):
    """A fold's own run (RUN/cv/fold_K) has no val/ and test/ predictions.csv: its export was refused. Its held-out
    fold (run.json's held_out: here a source left out) is the rows of that fold in the cross-validation's
    RUN/cv/predictions.csv; those are left out, its inner validation rows may be drawn. Without that file: refused."""
    from test_finetune import write_learnable

    from ecgnet.export.int8_records import held_out_records

    manifest = write_learnable(tmp_path, 36)
    table = pd.read_csv(manifest)
    table["source"] = [f"site{(i // 2) % 3}" for i in range(len(table))]  # a patient's two records: one source
    table.to_csv(manifest, index=False)
    (tmp_path / "c.yaml").write_text(CONFIG.replace("name: once", "name: cv"))
    result = CliRunner().invoke(app, ["train", "-c", str(tmp_path / "c.yaml"), "--manifest", str(manifest),
                                      "--leave-out", "source", "--runs-dir", str(tmp_path / "runs"), "--n-boot", "10",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    fold = tmp_path / "runs" / "cv" / "cv" / "fold_2"
    info = json.loads((fold / "run.json").read_text())
    assert info["held_out"] == "site1" and info["split_records"] == {"train": 20, "val": 4}

    site1 = set(table.loc[table["source"] == "site1", "record"])
    assert held_out_records(Run.open(fold)).cells == site1
    result = CliRunner().invoke(app, ["export", str(fold), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "int8 calibrated on 24 records" in " ".join(result.output.split())
    used = quantization(fold / "model.int8.onnx")["calibration_manifest"]
    assert (used["rows"], used["held_out"], used["drawn"], used["records"]) == (36, 12, 24, 24)
    assert used["drawn_from"].startswith("the rows the fold's model trained on: those of its held-out fold, site1 "
                                         "(RUN/cv/predictions.csv) left out; its inner validation rows")

    (tmp_path / "runs" / "cv" / "cv" / "predictions.csv").unlink()
    with pytest.raises(ECGNetError, match=r"cannot tell which rows of .*m.csv the run held out \(the "
                                          r"cross-validation's .*predictions.csv, which names the rows it held out "
                                          r"\(site1\), is not there\)"):
        manifest_calibration(Run.open(fold), manifest, from_run=True)


def test_held_out_rows_and_read_limits_as_the_run_records_them(run, tmp_path, no_ptbxl):
    """Without training (the slow test above trains): the rows RUN/val/ and RUN/test/predictions.csv name are not
    drawn, on the training manifest or a copy of it elsewhere (matched by file); a collection read under other
    limits than the defaults records them, which the calibration then reads under."""
    from ecgnet.data.collections.manifest import read_manifest
    from ecgnet.runs.describe import trained_read_limits

    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS + 4)
    limits = ReadLimits(max_seconds=5)  # tighter than a 10 s record: every record refused
    collection = read_manifest(manifest, labelled=False).load_signals(100, tmp_path / "c", progress=False,
                                                                      skip_bad=True, limits=limits)
    assert collection.info["read_limits"] == asdict(limits) and len(collection) == 0
    assert "read_limits" not in read_manifest(manifest, labelled=False).load_signals(100, tmp_path / "c",
                                                                                     progress=False).info
    info = json.loads((run / "run.json").read_text())
    info["collection"] = {"name": "site", "manifest": str(manifest.resolve()), "records_relative_to": str(tmp_path)}
    for split, rows in (("val", [0, 1]), ("test", [2, 3])):
        (run / split).mkdir()
        (run / split / "predictions.csv").write_text("ecg_id,NORM\n" + "".join(f"ecg/r{i:02d}.hea,0.5\n" for i in rows))
    (run / "run.json").write_text(json.dumps(info))
    copy = tmp_path / "elsewhere" / "copy.csv"
    copy.parent.mkdir()
    copy.write_text(manifest.read_text().replace("ecg/", "../ecg/"))
    for m in (manifest, copy):
        records, account = manifest_calibration(Run.open(run), m)
        assert (account["held_out"], account["records"], account["drawn"]) == (4, MIN_MANIFEST_RECORDS,
                                                                               MIN_MANIFEST_RECORDS)
        assert {40, 41, 42, 43}.isdisjoint(records.metadata[:, 0].round().astype(int))  # unscaled: the ages

    info["collection"]["read_limits"] = asdict(limits)
    (run / "run.json").write_text(json.dumps(info))
    assert trained_read_limits(info) == limits
    with pytest.raises(ECGNetError, match=r"site.csv: 0 usable record\(s\) .*4 held out by the run \(its "
                                          r"validation/test rows\), 16 unreadable"):
        manifest_calibration(Run.open(run), manifest)


def test_a_fold_given_by_a_relative_path_finds_its_cross_validations_predictions(untrained_run, tmp_path,
                                                                                 monkeypatch):
    """A fold's held-out rows are read from RUN/cv/predictions.csv, two folders above the fold: `ecgnet export .`
    inside RUN/cv/fold_2 (or `fold_2` inside RUN/cv) looked for ./cv/predictions.csv and was refused as if the
    file were gone."""
    from ecgnet.export.int8_records import held_out_records

    fold = tmp_path / "RUN" / "cv" / "fold_2"
    shutil.copytree(untrained_run, fold)
    info = json.loads((fold / "run.json").read_text())
    info.update(held_out="fold 2", collection={"name": "site", "manifest": str(tmp_path / "m.csv")})
    (fold / "run.json").write_text(json.dumps(info))
    (fold.parent / "predictions.csv").write_text("record,fold\na.hea,1\nb.hea,2\nc.hea,2\n")
    (fold.parent / "metrics.json").write_text(json.dumps({"protocol": {"folds": {"1": "fold 1", "2": "fold 2"}}}))
    for inside, given in ((fold, "."), (fold.parent, "fold_2"), (fold, "../fold_2")):
        monkeypatch.chdir(inside)
        held = held_out_records(Run.open(given))
        assert held.known and held.cells == {"b.hea", "c.hea"}, (given, held.named_in)


def test_a_calibration_manifest_with_data_is_refused(run, tmp_path, no_ptbxl, monkeypatch):
    """--calibration-manifest with --data silently calibrated on the manifest: two answers to one question, refused
    before anything is read. $ECGNET_DATA only says where PTB-XL is: the option wins over it."""
    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS)
    ptbxl = tmp_path / "ptbxl"
    ptbxl.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (ptbxl / name).write_text("")
    result = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8", "--calibration-manifest",
                                      str(manifest), "--data", str(ptbxl)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and (f"--calibration-manifest {manifest} and --data {ptbxl}: both say what "
                                      "--quantize int8 calibrates on (your records, or PTB-XL's training folds); "
                                      "give one") in said
    assert not (run / "model.int8.onnx").exists()
    with pytest.raises(ECGNetError, match="both say what --quantize int8 calibrates on"):
        export(run, quantize="int8", data=ptbxl, calibration_manifest=manifest)
    monkeypatch.setenv("ECGNET_DATA", str(ptbxl))
    assert calibration_source({}, manifest=manifest).manifest == manifest
    through_env = CliRunner().invoke(app, ["export", str(run), "--quantize", "int8", "--calibration-manifest",
                                           str(manifest)])  # the CLI's --data reads $ECGNET_DATA: not refused
    assert "both say what" not in through_env.output and through_env.exit_code == 0, through_env.output
    assert (run / "model.int8.onnx").is_file()
    ignored = CliRunner().invoke(app, ["export", str(run), "--data", str(ptbxl)])  # no --quantize: --data unused
    assert ignored.exit_code == 2 and "an export reads PTB-XL only to calibrate --quantize int8" in ignored.output
    with pytest.raises(ECGNetError, match="an export reads PTB-XL only to calibrate --quantize int8"):
        export(run, data=ptbxl)  # the API as the command: the check is export's own


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


def test_calibration_batches_take_a_late_fusion_graph_s_short_records_whole():
    """A late-fusion graph takes a record under 10 s as one segment of its own length: such records are calibrated
    on whole (their own samples, never the repeat that fills their row), grouped by length, after the 10 s ones,
    which keep the batches they always had."""
    rng = np.random.default_rng(0)
    signal, metadata = rng.normal(size=(5, 12, 1000)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    batches = calibration_batches(signal, metadata, [1000, 600, 1000, 600, 400], 1000, 125)
    assert [b["signal"].shape for b in batches] == [(2, 12, 1000), (1, 12, 400), (2, 12, 600)]
    assert np.array_equal(batches[0]["signal"], signal[[0, 2]]) and np.array_equal(batches[1]["signal"],
                                                                                    signal[[4], :, :400])
    assert np.array_equal(batches[2]["signal"], signal[[1, 3], :, :600])
    assert np.array_equal(batches[2]["metadata"], metadata[[1, 3]])
    every = calibration_batches(signal, metadata, [1000] * 5, 250, 125)  # windows: 35 crops in one batch of 35
    crops, meta = calibration_windows(signal, metadata, [1000] * 5, 250, 125)
    assert len(every) == 1 and np.array_equal(every[0]["signal"], crops) and np.array_equal(every[0]["metadata"], meta)


LATE_FUSION = Path(__file__).resolve().parents[1] / "runs" / "late_stacking_time_spectrogram"


@pytest.mark.slow
def test_a_late_fusion_run_calibrates_on_records_under_10_s(tmp_path, no_ptbxl):
    """A late-fusion graph's time axis takes any length from its window (2.5 s) to 10 s: records of 4 and 6 s are
    calibrated on (before: left out as shorter than a 10 s input, so 14 records of 10 s were too few). ONNX Runtime
    collects batches of several lengths one at a time; the file stays near fp32 on them, and on a 30 s record scored
    whole (--long-records windows: the graph's time axis has no upper bound)."""
    run = tmp_path / "late"
    shutil.copytree(LATE_FUSION, run, ignore=shutil.ignore_patterns("*.onnx", "figures", "report.*", "test", "val"))
    manifest = site_manifest(tmp_path, n=MIN_MANIFEST_RECORDS - 2, short=3)  # 14 of 10 s, 3 of 6 s
    write_wfdb(tmp_path / "ecg", "four", samples=400, seed=50)
    write_wfdb(tmp_path / "ecg", "brief", samples=200, seed=51)  # under 2.5 s: unreadable, as predict refuses it
    with manifest.open("a") as fh:
        fh.write("ecg/four.hea,70,male\necg/brief.hea,71,female\n")
    export(run, quantize="int8", calibration_manifest=manifest)
    used = quantization(run / "model.int8.onnx")["calibration_manifest"]
    assert (used["records"], used["unreadable"], used["shorter_than_input"], used["input_seconds"]) == (18, 1, 0, 2.5)

    records, _ = manifest_calibration(Run.open(run), manifest)
    assert sorted(records.lengths.tolist()) == [400] + [600] * 3 + [1000] * 14
    fp32, int8 = OnnxModel(export(run, out=tmp_path / "fp32.onnx")), OnnxModel(run / "model.int8.onnx")
    for n in (400, 600):
        rows = np.flatnonzero(records.lengths == n)
        signal, metadata = torch.as_tensor(records.signal[rows, :, :n]), torch.as_tensor(records.metadata[rows])
        dp = (torch.sigmoid(int8(signal, metadata)) - torch.sigmoid(fp32(signal, metadata))).abs().numpy()
        assert dp.max() > 0 and dp.mean() <= INT8_MEAN
    header, _ = write_wfdb(tmp_path / "ecg", "long", samples=3000, seed=52)  # 30 s, scored whole (version 4)
    whole = {engine: Predictor(run, engine=engine, long_records="windows").predict_file(header)
             for engine in ("torch", "onnx-int8")}
    assert all(r["coverage"].startswith("the whole 30.0 s") and not r.get("error") for r in whole.values())
    p = {e: np.array([d["probability"] for d in sorted(r["diagnoses"], key=lambda d: d["class"])])
         for e, r in whole.items()}
    assert np.abs(p["torch"] - p["onnx-int8"]).mean() <= INT8_MEAN
