"""End to end on the real data: the session's tiny run (600 training records, 3 epochs) learns, leaves
a complete run directory, and reloads to the same predictions."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from ecgnet.config import load_config
from ecgnet.evaluation.evaluate import predict_split
from ecgnet.evaluation.metrics import choose_thresholds
from ecgnet.runs import load_run

CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


@pytest.fixture(scope="module")
def reloaded(tiny_run, ptbxl_superdiagnostic):
    """The run loaded from disk and its (ecg_ids, labels, probabilities) on folds 9 and 10, predicted again."""
    model, config, info = load_run(tiny_run.run_dir)
    predictions = {split: predict_split(model, ptbxl_superdiagnostic, split, config, progress=False)
                   for split in ("val", "test")}
    return model, info, predictions


def read_metrics(run_dir, split):
    return json.loads((run_dir / split / "metrics.json").read_text())


def test_tiny_run_beats_chance_on_fold_10(tiny_run):
    metrics = read_metrics(tiny_run.run_dir, "test")
    assert metrics["split"] == "test"
    assert metrics["n_records"] == 2163
    auc = metrics["macro_auc"]
    assert auc["value"] > 0.6, f"fold-10 macro AUC {auc['value']:.3f} is no better than chance"
    assert auc["low"] <= auc["value"] <= auc["high"] and auc["n_boot"] == 50
    assert metrics["macro_auc"]["value"] == pytest.approx(tiny_run.results["test"]["macro_auc"]["value"])


def test_run_directory_is_complete(tiny_run):
    run_dir = tiny_run.run_dir
    assert run_dir.name == "tiny_time"
    for name in ("config.yaml", "run.json", "model.safetensors", "report.html", "logs/metrics.csv",
                 "val/predictions.csv", "val/metrics.json", "test/predictions.csv", "test/metrics.json"):
        assert (run_dir / name).is_file(), f"{name} missing from the run directory"
    assert not list(run_dir.rglob("*.tmp")), "a temporary file was left behind"

    info = json.loads((run_dir / "run.json").read_text())
    assert info["seed"] == 0 and info["classes"] == CLASSES and info["task"] == "superdiagnostic"
    assert "git_revision" in info
    assert info["git_revision"] is None or re.fullmatch(r"[0-9a-f]{40}", info["git_revision"])
    assert info["train_records"] == 600
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 3
    assert info["parameters"] > 0
    assert set(info["class_descriptions"]) == set(CLASSES)
    assert len(info["metadata_scaler"]["mean"]) == 4

    # the saved config is the one trained, and loads as a config again
    assert load_config(run_dir / "config.yaml") == tiny_run.config
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["max_train_records"] == 600


def test_predictions_files(tiny_run, ptbxl_superdiagnostic):
    data = ptbxl_superdiagnostic
    for split, n in (("val", 2156), ("test", 2163)):
        df = pd.read_csv(tiny_run.run_dir / split / "predictions.csv")
        assert list(df.columns) == ["ecg_id", *CLASSES]
        assert len(df) == n and df["ecg_id"].is_unique
        np.testing.assert_array_equal(df["ecg_id"], data.labels.ecg_ids[data.labels.split(split)])
        probs = df[CLASSES].to_numpy()
        assert ((probs >= 0) & (probs <= 1)).all()
        assert probs.std(0).min() > 0  # not a constant prediction


def test_load_run_reproduces_test_probabilities(tiny_run, reloaded):
    model, info, predictions = reloaded
    assert not model.training and info["classes"] == CLASSES
    ids, y, probs = predictions["test"]
    saved = pd.read_csv(tiny_run.run_dir / "test" / "predictions.csv")
    np.testing.assert_array_equal(ids, saved["ecg_id"])
    np.testing.assert_allclose(probs, saved[CLASSES].to_numpy(), atol=1e-4)
    assert y.shape == probs.shape == (2163, 5)
    # also through the model file itself
    model2, _, _ = load_run(tiny_run.run_dir / "model.safetensors")
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), name


def test_thresholds_come_from_fold_9(tiny_run, reloaded):
    val, test = read_metrics(tiny_run.run_dir, "val"), read_metrics(tiny_run.run_dir, "test")
    thresholds = np.array([test["per_class"][c]["threshold"] for c in CLASSES])
    np.testing.assert_array_equal(thresholds, [val["per_class"][c]["threshold"] for c in CLASSES])
    assert "fold 9" in test["thresholds_from"] and "optimistic" in val["thresholds_from"]
    # they are the Youden thresholds of the fold-9 probabilities, not of fold 10's
    _, _, predictions = reloaded
    _, y_val, p_val = predictions["val"]
    np.testing.assert_allclose(thresholds, choose_thresholds(y_val, p_val), atol=1e-6)
    _, y_test, p_test = predictions["test"]
    assert not np.allclose(thresholds, choose_thresholds(y_test, p_test), atol=1e-6)
    # and the test fold's decisions are those thresholds applied to its probabilities
    sens = [(p_test[y_test[:, k] == 1, k] >= thresholds[k]).mean() for k in range(len(CLASSES))]
    np.testing.assert_allclose([test["per_class"][c]["sensitivity"] for c in CLASSES], sens, atol=1e-9)
