"""Fusion strategies: forward/backward of early and intermediate fusion, test-time modality dropping,
and late fusion fitted on fold 9 only."""

import json

import numpy as np
import pytest
import torch

from ecgnet.models import build_model
from ecgnet.models.fusion.late import LateFusion


def batch(n=4, samples=250):
    torch.manual_seed(0)
    return torch.randn(n, 12, samples), torch.randn(n, 8)


@pytest.mark.parametrize("name, params", [
    ("early_fusion", {}),
    ("early_fusion", {"modalities": ["time", "metadata"]}),
    ("intermediate_fusion", {"mode": "concat", "dim": 32}),
    ("intermediate_fusion", {"mode": "gated", "dim": 32}),
    ("intermediate_fusion", {"mode": "attention", "dim": 32}),
    ("intermediate_fusion", {"mode": "gated", "dim": 32, "modalities": ["time", "metadata"]}),
])
def test_forward_backward(name, params):
    model = build_model(name, 5, **params)
    signal, metadata = batch()
    logits = model(signal, metadata)
    assert logits.shape == (4, 5)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model(*batch(2, 1000)).shape == (2, 5)  # whole records too


@pytest.mark.parametrize("mode", ["gated", "attention"])
def test_modality_weights_are_a_distribution(mode):
    model = build_model("intermediate_fusion", 5, mode=mode, dim=32).eval()
    model(*batch())
    w = model.last_weights
    assert w.shape == (4, 4) and torch.allclose(w.sum(1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("name", ["early_fusion", "intermediate_fusion"])
def test_dropping_a_modality_changes_the_output_and_is_undone(name):
    model = build_model(name, 5).eval()
    signal, metadata = batch()
    with torch.no_grad():
        full = model(signal, metadata)
        with model.drop({"time"}):
            dropped = model(signal, metadata)
        again = model(signal, metadata)
    assert not torch.allclose(full, dropped)
    assert torch.allclose(full, again)
    with pytest.raises(ValueError, match="no modality"):
        with model.drop({"spectrogram"} if name == "early_fusion" else {"ecg"}):
            pass


def test_intermediate_fusion_rejects_bad_arguments():
    from ecgnet.errors import ECGNetError

    # the model's own ValueError, as one ECGNetError naming the model and what it was given
    with pytest.raises(ECGNetError, match="'intermediate_fusion' refuses its parameters .*mode"):
        build_model("intermediate_fusion", 5, mode="sum")
    with pytest.raises(ECGNetError, match="modalities"):
        build_model("intermediate_fusion", 5, modalities=["time", "time"])


@pytest.mark.slow
def test_late_fusion_stacking_is_fitted_on_fold_9_only(tiny_run, ptbxl_superdiagnostic, monkeypatch):
    """The stack sees exactly the fold-9 records and labels; fold 10 is only predicted."""
    seen = {}
    original = LateFusion.fit_on_validation

    def spy(self, signal, metadata, y, **kw):
        seen["n"], seen["y"] = len(signal), y.copy()
        return original(self, signal, metadata, y, **kw)

    monkeypatch.setattr(LateFusion, "fit_on_validation", spy)
    from ecgnet.config import parse_config
    from ecgnet.training.fit import train

    members = {"time": str(tiny_run.run_dir), "metadata": str(tiny_run.run_dir)}
    config = parse_config({"name": "late_tiny", "model": {"name": "late_fusion",
                                                          "params": {"members": members, "method": "stacking"}}})
    run_dir, results = train(config, ptbxl_superdiagnostic.root, runs_dir=tiny_run.run_dir.parent,
                             progress=False, n_boot=20)
    val = ptbxl_superdiagnostic.split("val")
    assert seen["n"] == len(val.ecg_ids) == 2156
    np.testing.assert_array_equal(seen["y"], val.y)
    assert results["test"]["macro_auc"]["value"] > 0.6
    model, _, _ = __import__("ecgnet.runs", fromlist=["load_run"]).load_run(run_dir)
    assert not torch.allclose(model.weight, torch.full_like(model.weight, 0.5))  # coefficients were fitted
    info = json.loads((run_dir / "run.json").read_text())
    assert "cross-fitting" in info["val_macro_auc_source"] and 0.6 < info["best_val_macro_auc"] < 1


def test_cross_fitted_stack_does_not_score_records_it_saw():
    """On pure noise, a stack fitted and scored on the same records looks better than chance; its
    out-of-fold logits do not. A class with a single positive falls back to the members' mean logit."""
    from ecgnet.evaluation.metrics import per_class_auc
    from ecgnet.models.fusion.late import _stack_class, cross_fitted_logits

    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(120, 30, 2)), (rng.random((120, 2)) < 0.5).astype(int)
    y[:, 1] = 0
    y[7, 1] = 1
    in_sample = np.stack([z[:, :, c] @ w + b for c, (w, b) in enumerate(_stack_class(z[:, :, c], y[:, c])
                                                                     for c in range(2))], axis=1)
    out_of_fold = cross_fitted_logits(z, y)
    assert per_class_auc(y[:, :1], in_sample[:, :1])[0] > 0.7
    assert abs(per_class_auc(y[:, :1], out_of_fold[:, :1])[0] - 0.5) < 0.15
    np.testing.assert_allclose(out_of_fold[:, 1], z[:, :, 1].mean(1))
