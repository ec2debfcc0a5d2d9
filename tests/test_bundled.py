"""The models shipped in the package: identical to their runs, found by name, listed by `ecgnet models`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ecgnet import __version__
from ecgnet.cli import app
from ecgnet.errors import ECGNetError
from ecgnet.runs.bundled import (BUNDLED_MODELS, DEFAULT_MODEL, bundle, bundled_files, bundled_names, bundled_root,
                                 list_bundled, resolve_checkpoint)

RUNS = Path(__file__).resolve().parents[1] / "runs"


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_copy_is_identical_to_its_run(name):
    """`make bundle` was run after the last change to runs/<name>/ (else the shipped model drifts)."""
    if not (RUNS / name).is_dir():
        pytest.skip(f"{RUNS / name} absent (not a checkout)")
    copy = bundled_root() / name
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == \
        sorted(bundled_files(RUNS / name))
    for f in bundled_files(RUNS / name):
        assert (copy / f).read_bytes() == (RUNS / name / f).read_bytes(), f"{copy / f} differs: run `make bundle`"


def test_exactly_the_listed_models_are_bundled():
    assert bundled_names() == sorted(BUNDLED_MODELS) and DEFAULT_MODEL in BUNDLED_MODELS


def test_resolve_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(DEFAULT_MODEL) == bundled_root() / DEFAULT_MODEL
    (tmp_path / DEFAULT_MODEL).mkdir()  # an existing path wins over the bundled name
    assert resolve_checkpoint(DEFAULT_MODEL) == Path(DEFAULT_MODEL)
    for bad in ("no_such_model", "runs/baseline_time", f"{DEFAULT_MODEL}/val"):
        with pytest.raises(ECGNetError, match="nor a bundled model") as e:
            resolve_checkpoint(bad)
        assert bad in str(e.value) and all(name in str(e.value) for name in BUNDLED_MODELS)
    (tmp_path / "model.onnx").write_bytes(b"onnx")  # an export given as a run: said what it is and what to give
    with pytest.raises(ECGNetError, match="model.onnx: a file, not a run directory.*exported ONNX model.*--engine onnx"):
        resolve_checkpoint(tmp_path / "model.onnx")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ECGNetError, match="notes.txt: a file, not a run directory .* give the run folder"):
        resolve_checkpoint(tmp_path / "notes.txt")


def test_list_bundled():
    models = {m.name: m for m in list_bundled()}
    assert sorted(models) == sorted(BUNDLED_MODELS)
    for m in models.values():
        assert m.task == "superdiagnostic" and m.classes == ["CD", "HYP", "MI", "NORM", "STTC"]
        assert m.parameters > 0 and 0.5 < m.test_macro_auc <= 1


def test_bundle_refuses_an_unevaluated_run(untrained_run, tmp_path):
    with pytest.raises(ECGNetError, match="val/metrics.json"):
        bundle(untrained_run, tmp_path / "copy")  # never evaluated: no thresholds to ship


def test_predict_with_a_bundled_model_by_name(write_record):
    from ecgnet.inference.predictor import Predictor

    path, _ = write_record()
    predictor = Predictor(DEFAULT_MODEL)
    assert predictor.thresholds and set(predictor.thresholds) == set(predictor.classes)
    result = predictor.predict_file(path)
    assert result["model"] == DEFAULT_MODEL and len(result["diagnoses"]) == 5


def test_cli_models_and_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in BUNDLED_MODELS:
        assert name in result.stdout
    assert f"{DEFAULT_MODEL} (default)" in result.stdout
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"ecgnet {__version__}"


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_models_give_their_committed_fold10_predictions(name, ptbxl_superdiagnostic):
    """No restructuring changed an output: each bundled model, loaded as an installed package loads it,
    gives the fold-10 probabilities its run committed (test/predictions.csv, 6 decimals) to 1e-6.

    Every 8th fold-10 record (276 of 2,203), so the suite stays short (the 8-model ensemble takes ~17 min
    for all of fold 10 on 2 cores); ECGNET_FULL_IDENTITY=1 checks all of them."""
    import os

    from ecgnet.evaluation import metrics as M
    from ecgnet.inference.batch import predict_proba
    from ecgnet.runs import Run

    run = Run.open(name)
    ids, expected, _ = M.read_predictions(run.dir / "test" / "predictions.csv", run.classes)
    test = ptbxl_superdiagnostic.split("test")
    assert list(ptbxl_superdiagnostic.classes) == run.classes
    row = {int(e): i for i, e in enumerate(test.ecg_ids)}
    assert sorted(row) == sorted(map(int, ids))
    step = 1 if os.environ.get("ECGNET_FULL_IDENTITY") == "1" else 8
    pick = np.array([row[int(e)] for e in ids])[::step]
    got = predict_proba(run.model, test.signal[pick], test.metadata[pick], run.window, run.stride,
                        run.config.data.aggregate)
    np.testing.assert_allclose(got, np.asarray(expected)[::step], rtol=0, atol=1e-6)


def test_the_bundled_ensemble_loads_from_anywhere(tmp_path, monkeypatch):
    """The greedy ensemble is one folder: copied away from every other run, it still loads (its members
    are described inside it, their weights in its model.safetensors)."""
    from ecgnet.runs import load_run

    copy = tmp_path / "elsewhere" / "greedy"
    shutil.copytree(bundled_root() / "ensemble_greedy", copy)
    monkeypatch.chdir(tmp_path)
    model, config, info = load_run(copy)
    assert list(model.members) == list(config.model.params["members"]) and len(model.members) == 8
    assert info["name"] == "ensemble_greedy"


def test_models_prints_a_shipped_models_config_to_start_from(tmp_path):
    """A wheel user has no configs/: `ecgnet models --config NAME` gives a shipped model's YAML, which loads."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.config import load_config

    result = CliRunner().invoke(app, ["models", "--config", DEFAULT_MODEL])
    assert result.exit_code == 0, result.output
    (tmp_path / "mine.yaml").write_text(result.stdout)
    assert load_config(tmp_path / "mine.yaml").name == DEFAULT_MODEL
    refused = CliRunner().invoke(app, ["models", "--config", "nope"])
    assert refused.exit_code == 2 and "not a shipped model" in refused.stderr


def test_load_run_takes_a_bundled_name_as_run_open_does():
    """load_run('long_time') said 'long_time is not an ECGNet run directory' while Run.open('long_time') worked."""
    from ecgnet.runs import load_run
    from ecgnet.runs.directory import Run

    _, _, info = load_run(DEFAULT_MODEL)
    assert info["name"] == Run.open(DEFAULT_MODEL).name == DEFAULT_MODEL


@pytest.mark.slow
def test_the_ensemble_reads_the_patient_metadata_its_members_were_evaluated_with(ptbxl_root):
    """5 of ensemble_greedy's 8 members read age, sex, height and weight, but the ensemble said it used no
    metadata, so predict and the viewer gave it none (CD 0.125 instead of 0.091; found in an explanations
    audit): through Predictor, with the record's own fields, it gives its committed fold-10 probabilities."""
    import pandas as pd

    from ecgnet.data.records import read_ecg
    from ecgnet.evaluation import metrics as M
    from ecgnet.inference.predictor import Predictor

    predictor = Predictor("ensemble_greedy")
    assert predictor.uses_metadata
    ids, expected, _ = M.read_predictions(predictor.run.dir / "test" / "predictions.csv", predictor.classes)
    db = pd.read_csv(ptbxl_root / "ptbxl_database.csv", index_col="ecg_id")
    for i in (0, 1):
        row = db.loc[int(ids[i])]
        fields = {k: row[k] for k in ("age", "sex", "height", "weight") if pd.notna(row[k]) and row[k] > 0}
        fields["sex"] = ("male", "female")[int(row["sex"])]  # PTB-XL's 0 male / 1 female, as a user types it
        fields["age"] = min(float(fields["age"]), 90.0)  # PTB-XL's 300 (over 89) reads as 90
        result = predictor.predict_record(read_ecg(ptbxl_root / row["filename_lr"], 100), **fields)
        got = {d["class"]: d["probability"] for d in result["diagnoses"]}
        np.testing.assert_allclose([got[c] for c in predictor.classes], np.asarray(expected)[i], atol=2e-6)
