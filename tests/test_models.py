"""Models, the time frontend, windowed inference and config validation (no data needed, fast)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgnet.config import dump_config, load_config, parse_config
from ecgnet.errors import ECGNetError
from ecgnet.inference.batch import predict_proba
from ecgnet.modalities.time import TimeFrontend
from ecgnet.models import build_model, list_models, registry
from ecgnet.models.windows import window_starts, windowed_proba

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith("pretrain_"))  # pretraining configs: tests/test_pretrain.py


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = build_model("time_resnet1d", num_classes=5, widths=[8, 16], dropout=0.0)
    # non-trivial batch-norm statistics and last-block weights, so outputs depend on the input
    for module in m.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    return m.eval()


# --- models -----------------------------------------------------------------------------------

def test_registry_lists_the_baseline():
    assert "time_resnet1d" in list_models()


@pytest.mark.parametrize("samples", [250, 1000, 333])
def test_forward_shapes(model, samples):
    x = torch.randn(4, 12, samples)
    meta = torch.zeros(4, 8)
    out = model(x, meta)
    assert out.shape == (4, 5) and torch.isfinite(out).all()
    features = model.forward_features(x, meta)
    assert features.shape == (4, model.encoder.num_features)
    torch.testing.assert_close(model.forward_head(features), out)


def test_num_features_follows_widths():
    m = build_model("time_resnet1d", num_classes=3, widths=[16, 32, 48])
    assert m.encoder.num_features == 2 * 48
    assert m(torch.randn(2, 12, 250)).shape == (2, 3)


@pytest.mark.parametrize("name, params", [
    ("time_resnet1d", {"widths": [8, 16]}),
    ("time_xresnet1d", {"widths": [8, 16], "blocks": [1, 1], "se": True}),
    ("time_inception1d", {"depth": 3, "filters": 8, "bottleneck": 8, "stem_width": 8}),
    ("time_s4d", {"d_model": 16, "d_state": 8, "n_layers": 2}),
    ("time_transformer", {"d_model": 16, "n_heads": 2, "n_layers": 2}),
])
def test_gradients_reach_every_parameter(name, params):
    m = build_model(name, num_classes=5, **params).train()
    for module in m.modules():  # zero-initialised last BN would block gradients to the first conv
        if isinstance(module, torch.nn.BatchNorm1d):
            torch.nn.init.ones_(module.weight)
    m(torch.randn(4, 12, 250)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_build_model_unknown_name():
    with pytest.raises(ECGNetError, match="unknown model 'nope'") as info:
        build_model("nope", num_classes=5)
    assert "time_resnet1d" in str(info.value)


def test_build_model_unknown_param():
    with pytest.raises(ECGNetError, match="no parameter\\(s\\) depth") as info:
        build_model("time_resnet1d", num_classes=5, depth=3)
    assert "widths" in str(info.value)


def test_default_params_are_the_builders_defaults():
    assert registry.default_params("early_fusion")["modalities"] == ("time", "frequency", "metadata")
    assert "num_classes" not in registry.default_params("time_resnet1d")
    with pytest.raises(ECGNetError, match="unknown model 'nope'"):
        registry.default_params("nope")


# --- the time frontend ------------------------------------------------------------------------

def test_time_frontend_fit():
    rng = np.random.default_rng(0)
    means = np.linspace(-1, 1, 12)
    stds = np.linspace(0.1, 2, 12)
    x = (rng.normal(size=(50, 12, 400)) * stds[None, :, None] + means[None, :, None]).astype(np.float32)
    frontend = TimeFrontend(12).fit(x)
    np.testing.assert_allclose(frontend.mean.squeeze(1).numpy(), x.mean(axis=(0, 2)), atol=1e-4)
    np.testing.assert_allclose(frontend.std.squeeze(1).numpy(), x.std(axis=(0, 2), ddof=1), rtol=1e-4)
    z = frontend(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1, atol=1e-3)


def test_time_frontend_flat_lead_does_not_divide_by_zero():
    x = np.ones((3, 12, 100), dtype=np.float32)
    frontend = TimeFrontend(12).fit(x)
    assert torch.isfinite(frontend(torch.from_numpy(x))).all()


def test_frontend_statistics_are_saved_with_the_weights():
    m = build_model("time_resnet1d", num_classes=5, widths=[8])
    m.frontend.fit(np.full((2, 12, 50), 3.0, dtype=np.float32))
    state = m.state_dict()
    assert torch.all(state["frontend.mean"] == 3.0)
    fresh = build_model("time_resnet1d", num_classes=5, widths=[8])
    fresh.load_state_dict(state)
    assert torch.all(fresh.frontend.mean == 3.0)


# --- windowed inference -----------------------------------------------------------------------

@pytest.mark.parametrize("samples, window, stride", [
    (1000, 250, 125), (1000, 250, 100), (1000, 300, 125), (999, 250, 125), (260, 250, 125), (250, 250, 125),
    (200, 250, 125), (1000, 1000, 125),
])
def test_window_starts_cover_the_record(samples, window, stride):
    starts = window_starts(samples, window, stride)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    if window >= samples:
        assert starts == [0]
    else:
        assert starts[-1] == samples - window  # the last window ends at the record's end
        assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))


def test_window_starts_benchmark_protocol():
    assert window_starts(1000, 250, 125) == [0, 125, 250, 375, 500, 625, 750]


def test_windowed_proba_aggregates_the_windows(model):
    torch.manual_seed(1)
    signal = torch.randn(3, 12, 1000) * torch.linspace(0.2, 3, 3)[:, None, None]
    meta = torch.zeros(3, 8)
    starts = window_starts(1000, 250, 125)
    with torch.no_grad():  # each record and window on its own
        per_window = torch.stack([torch.sigmoid(model(signal[:, :, s:s + 250], meta)) for s in starts])
    p_max = windowed_proba(model, signal, meta, 250, 125, "max")
    p_mean = windowed_proba(model, signal, meta, 250, 125, "mean")
    torch.testing.assert_close(p_max, per_window.amax(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p_mean, per_window.mean(0), rtol=1e-5, atol=1e-6)
    assert (p_max >= p_mean - 1e-7).all()
    assert (p_max > p_mean).any()
    assert ((p_max >= 0) & (p_max <= 1)).all()


def test_windowed_proba_without_window_uses_whole_record(model):
    signal, meta = torch.randn(2, 12, 500), torch.zeros(2, 8)
    with torch.no_grad():
        expected = torch.sigmoid(model(signal, meta))
    torch.testing.assert_close(windowed_proba(model, signal, meta, None, 125), expected)


def test_predict_proba_batches_and_restores_mode(model):
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(7, 12, 500)).astype(np.float32)
    meta = np.zeros((7, 8), dtype=np.float32)
    model.train()
    p_small = predict_proba(model, signal, meta, 250, 125, batch_size=3)
    assert model.training  # mode restored
    p_big = predict_proba(model, signal, meta, 250, 125, batch_size=256)
    assert p_small.shape == (7, 5)
    np.testing.assert_allclose(p_small, p_big, rtol=1e-5, atol=1e-6)  # eval mode: no batch dependence


# --- configs ----------------------------------------------------------------------------------

VALID = """\
name: tiny
data:
  task: superdiagnostic
model:
  name: time_resnet1d
  params: {widths: [16, 32]}
training:
  epochs: 2
"""


def test_config_defaults_and_round_trip(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(VALID)
    cfg = load_config(path)
    assert cfg.name == "tiny" and cfg.training.epochs == 2 and cfg.data.crop_seconds == 2.5
    assert cfg.data.sampling_rate == 100 and cfg.data.aggregate == "max"
    (tmp_path / "again.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "again.yaml") == cfg


@pytest.mark.parametrize("text, field", [
    (VALID + "learning_rate: 0.1\n", "learning_rate"),  # unknown top-level key
    (VALID.replace("  epochs: 2", "  epochs: 2\n  epoch: 3"), "training.epoch"),  # typo in a section
    (VALID.replace("  epochs: 2", "  epochs: 0"), "training.epochs"),
    (VALID.replace("task: superdiagnostic", "task: superdiag"), "data.task"),
    (VALID.replace("data:\n", "data:\n  aggregate: median\n"), "data.aggregate"),
    (VALID.replace("data:\n", "data:\n  sampling_rate: 250\n"), "data.sampling_rate"),
    (VALID.replace("name: tiny", "name: a/b"), "name"),
    (VALID.replace("model:\n  name: time_resnet1d\n  params: {widths: [16, 32]}\n", ""), "model"),
])
def test_config_errors_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ECGNetError, match="invalid config") as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message


def test_config_not_yaml_or_missing(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ECGNetError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ECGNetError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    # a wheel has no configs/: the error says how to get a shipped model's (found in a wheel audit)
    with pytest.raises(ECGNetError, match=r"no such config file .*`ecgnet models --config long_time > long_time.yaml`"):
        load_config(tmp_path / "configs" / "long_time.yaml")
    from ecgnet.runs.bundled import resolve_checkpoint

    with pytest.raises(ECGNetError, match="the bundled model is given by its name alone: long_time"):
        resolve_checkpoint(tmp_path / "runs" / "long_time")
    with pytest.raises(ECGNetError, match="invalid config"):
        parse_config(None)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_committed_configs_load_and_build(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.model.name in list_models()
    if "members" in cfg.model.params:  # late fusion is built from trained member runs: check the parameters only
        builder_params = inspect.signature(registry._REGISTRY[cfg.model.name]).parameters
        assert set(cfg.model.params) <= set(builder_params) - {"num_classes"}
        root = path.parents[1]
        for member in cfg.model.params["members"].values():  # members are committed runs of the same task
            info = json.loads((root / member / "run.json").read_text())
            assert info["task"] == cfg.data.task, member
        return
    m = build_model(cfg.model.name, num_classes=5, **cfg.model.params).eval()
    samples = int((cfg.data.crop_seconds or 10) * cfg.data.sampling_rate)
    with torch.no_grad():  # every model takes (signal, metadata) → logits
        assert m(torch.randn(2, 12, samples), torch.zeros(2, 8)).shape == (2, 5)


def test_there_are_committed_configs():
    assert CONFIGS, "configs/*.yaml is empty"


def test_a_second_model_under_a_registered_name_is_refused():
    """register() silently replaced a model of the same name: the first one's configs then built the other."""
    from ecgnet.models.registry import _REGISTRY, register

    first = _REGISTRY["time_resnet1d"]
    with pytest.raises(ValueError, match="'time_resnet1d' is registered twice"):
        register("time_resnet1d")(lambda num_classes: None)
    assert _REGISTRY["time_resnet1d"] is first
    assert register("time_resnet1d")(first) is first  # the same function again: fine

    def time_resnet1d(num_classes):  # a reloaded module's new function of the same name and place: fine
        return None

    time_resnet1d.__module__, time_resnet1d.__qualname__ = first.__module__, first.__qualname__
    try:
        assert register("time_resnet1d")(time_resnet1d) is time_resnet1d
    finally:
        _REGISTRY["time_resnet1d"] = first


def test_predict_proba_scores_a_bf16_model():
    """A model trained with precision bf16-true has bf16 weights: predict_proba fed it float32 tensors, so a
    manifest's early stopping and cross-validation scoring (both through it) failed ('Input type (float) and
    weight type (BFloat16) should be the same'). Inputs now take the model's dtype, outputs come back float32."""
    from ecgnet.runs import load_run

    model, config, _ = load_run("long_time")
    x = np.random.default_rng(0).normal(0, 0.3, (3, 12, 1000)).astype(np.float32)
    meta = np.zeros((3, 8), np.float32)
    args = (config.data.window, config.data.stride, config.data.aggregate)
    full = predict_proba(model, x, meta, *args)
    half = predict_proba(model.to(torch.bfloat16), x, meta, *args)
    assert half.dtype == np.float32 and np.abs(half - full).max() < 0.02
