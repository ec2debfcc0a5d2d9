"""Attributions (Integrated Gradients over time and frequency), lead importance, modality ablation
and gate weights, on small models and real fold-10 records."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ecgnet.config import parse_config
from ecgnet.data.signals import LEADS
from ecgnet.explain import (find_frequency_frontend, frequency_attributions, lead_importance, modality_ablation,
                            modality_weights, plot_frequency_heatmap, plot_lead_importance, plot_time_heatmap,
                            time_attributions)
from ecgnet.models import build_model


@pytest.fixture(scope="module")
def test_fold(ptbxl_superdiagnostic):
    return ptbxl_superdiagnostic.split("test")


@pytest.fixture(scope="module")
def small_test(test_fold):
    """80 fold-10 records in which every class has positives and negatives."""
    for seed in range(20):
        s = test_fold.sample(80, seed)
        if ((s.y.sum(0) > 0) & (s.y.sum(0) < len(s.y))).all():
            return s
    pytest.fail("no balanced subset found")


def _model(name, **params):
    torch.manual_seed(0)
    return build_model(name, 5, **params).eval()


def test_time_attributions_shape_and_completeness(test_fold):
    model = _model("time_resnet1d", widths=[16, 32])
    row = int(np.flatnonzero(test_fold.y[:, 0])[0])
    a = time_attributions(model, test_fold.signal[row], test_fold.metadata[row], target_class=0, n_steps=64)
    assert a.values.shape == (12, 250) and a.signal.shape == (12, 250)
    assert a.start in (0, 125, 250, 375, 500, 625, 750)
    np.testing.assert_allclose(a.signal, test_fold.signal[row][:, a.start:a.start + 250])
    # completeness: attributions sum to the change of the target logit from the 0 mV baseline
    diff = a.logit - a.baseline_logit
    assert abs(a.values.sum() - diff) <= 0.02 * abs(diff) + 1e-3
    assert abs(a.delta) <= 0.02 * abs(diff) + 1e-3
    full = time_attributions(model, test_fold.signal[row], test_fold.metadata[row], 0, window=None, n_steps=16)
    assert full.values.shape == (12, 1000) and full.start == 0
    fig = plot_time_heatmap(a.signal, a.values, LEADS, "test", start=a.start)
    assert len(fig.axes) == 13  # 12 leads + colour bar
    plt.close(fig)


def test_frequency_attributions_shape(test_fold):
    model = _model("frequency_transformer", d_model=16, n_layers=1)
    assert find_frequency_frontend(model) is not None
    f = frequency_attributions(model, test_fold.signal[0], test_fold.metadata[0], target_class=2, start=375)
    assert f.values.shape == (12, 126) and f.start == 375
    assert f.frequencies[0] == 0 and f.frequencies[-1] == pytest.approx(50) and len(f.frequencies) == 126
    assert np.isfinite(f.values).all() and np.abs(f.values).sum() > 0
    plt.close(plot_frequency_heatmap(f.values, f.frequencies, LEADS, "test"))
    # no frequency frontend → None
    assert frequency_attributions(_model("time_resnet1d", widths=[16]), test_fold.signal[0],
                                  test_fold.metadata[0], 0) is None


def test_ablation_and_weights_of_a_tiny_fusion_model(small_test):
    model = _model("intermediate_fusion", modalities=["frequency", "metadata"], mode="gated", dim=16)
    config = parse_config({"name": "t", "model": {"name": "intermediate_fusion"}})
    classes = ["CD", "HYP", "MI", "NORM", "STTC"]
    result = modality_ablation(model, small_test, config, classes, n_boot=30)
    assert set(result["drop"]) == set(model.modalities)
    assert result["n_records"] == 80
    for entry in result["drop"].values():
        assert set(entry["per_class_loss"]) == set(classes)
        assert entry["low"] <= entry["high"]
        assert entry["loss"] == pytest.approx(result["full"]["macro_auc"] - entry["macro_auc"])
    weights = result["weights"]
    assert set(weights) == {"all", *classes}
    assert sum(weights["all"].values()) == pytest.approx(1, abs=1e-5)  # softmax gate
    assert modality_weights(model, small_test, config, classes)["all"] == pytest.approx(weights["all"])
    # a unimodal model has nothing to drop or weigh
    time_model = _model("time_resnet1d", widths=[16])
    assert modality_ablation(time_model, small_test, config, classes) == {}
    assert modality_weights(time_model, small_test, config, classes) == {}


def test_ablation_scores_a_late_fusion_ensemble_as_evaluation_does(small_test):
    """The ablation windowed every model itself: a late-fusion ensemble (whole_record: each member windows
    the record and is aggregated on its own) was scored as the max over crops of the member mean — 0.09
    from the probabilities evaluation gives, so compare's 'full' AUC of late fusion was not the run's."""
    from ecgnet.explain.ablation import predict_with_weights
    from ecgnet.models.windows import windowed_proba
    from ecgnet.runs.directory import Run

    run = Run.open("ensemble_greedy")
    records = small_test.sample(12)
    probabilities, weights = predict_with_weights(run.model, records, run.config, batch_size=5)
    expected = windowed_proba(run.model, torch.as_tensor(records.signal), torch.as_tensor(records.metadata),
                              run.window, run.stride, run.config.data.aggregate).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert weights is None  # late fusion exposes no gate


def test_lead_importance_is_a_share_per_class(small_test):
    model = _model("time_resnet1d", widths=[16])
    classes = ["CD", "HYP", "MI", "NORM", "STTC"]
    table = lead_importance(model, small_test, classes, n_per_class=2, n_steps=8)
    assert table["classes"] == classes and table["leads"] == list(LEADS)
    for c in classes:
        assert sum(table["importance"][c].values()) == pytest.approx(1)
        assert table["n_records"][c] == 2
    plt.close(plot_lead_importance(table))


def test_attribution_inputs_are_checked_at_the_boundary():
    """Wrong shapes, a class out of range or by name, missing metadata: raw IndexError/TypeError/RuntimeError
    from torch or captum once (a class of -1 was even explained, as the last class); and a frequency model
    given wrong metadata answered None, 'no frequency branch', instead of an error."""
    model = _model("frequency_transformer", d_model=16, n_layers=1)
    signal, metadata = np.random.default_rng(0).normal(0, 0.3, (12, 1000)).astype(np.float32), np.zeros(8)
    assert time_attributions(model, signal, metadata, np.int64(4), n_steps=4).target == 4
    for kwargs, message in (({"target_class": 5}, "not a class of the model: 0–4"),
                            ({"target_class": -1}, "not a class of the model"),
                            ({"target_class": "MI"}, "must be a class index"),
                            ({"signal": signal.T}, r"shape \(12, samples\), leads first; got \(1000, 12\)"),
                            ({"signal": signal[0]}, "leads first"),
                            ({"metadata": None}, "metadata_vector"),
                            ({"metadata": np.zeros(3)}, r"metadata must have shape \(8,\)"),
                            ({"signal": np.full((12, 1000), np.nan)}, "finite")):
        args = {"signal": signal, "metadata": metadata, "target_class": 0, **kwargs}
        for explain in (time_attributions, frequency_attributions):
            with pytest.raises(ValueError, match=message):
                explain(model, args["signal"], args["metadata"], args["target_class"], n_steps=4)
    with pytest.raises(ValueError, match="same"):
        plot_time_heatmap(signal, signal[:, :10])


def test_the_decisive_window_of_a_long_record_scored_as_windows_is_anywhere_in_it():
    """With long_records='windows' the predictor takes the maximum over every window of the record, but the
    explainer searched the first 10 s only (found in review)."""
    from pathlib import Path

    from ecgnet.data.readers import read_ecg_any
    from ecgnet.explain.attributions import best_window
    from ecgnet.inference.predictor import Predictor
    from ecgnet.serve.explain import explain_record

    path = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples" / "ptb" / "S0001.hea"
    if not path.is_file():
        pytest.skip(f"shared Challenge samples not found at {path.parent}")
    predictor = Predictor("baseline_time", long_records="windows")
    record = read_ecg_any(path, 100, resample=True)
    ex = explain_record(predictor, record, "CD", {}, n_steps=4)
    decisive = [w["start"] for w in ex["windows"] if w["decisive"]]
    k = predictor.classes.index("CD")
    assert decisive == [best_window(predictor.run.model, record.signal, predictor.metadata_vector(), k)]
