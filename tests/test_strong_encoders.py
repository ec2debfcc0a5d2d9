"""The stronger time-domain encoders of the "stronger encoder" lever, ``time_xresnet1d``,
``time_inception1d``, ``time_s4d`` and ``time_transformer``: shapes on crops and windows, their cost against the compute goal, the registry,
their configs, and a tiny training on real data that beats chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecgnet.config import load_config
from ecgnet.data.dataset import CropDataset
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.complexity import count_macs
from ecgnet.inference.batch import predict_proba
from ecgnet.evaluation.metrics import macro_auc
from ecgnet.models import build_model, list_models, registry
from ecgnet.training.fit import fit_frontends

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MACS_GOAL = 0.29e9  # the compute goal: MACs per 10 s ECG (7 windows of 2.5 s at 100 Hz)
# default parameter counts stay within these bounds (1.73 M, 0.25 M, 0.28 M and 0.47 M at the time of writing)
PARAMS_BOUND = {"time_xresnet1d": 2_500_000, "time_inception1d": 500_000, "time_s4d": 600_000,
                "time_transformer": 600_000}
NAMES = list(PARAMS_BOUND)
CONFIG_OF = {"time_xresnet1d": "xresnet_time", "time_inception1d": "inception_time", "time_s4d": "s4d_time",
             "time_transformer": "transformer_time"}
SMALL = {"time_xresnet1d": {"widths": [8, 16], "blocks": [1, 1], "se": True},
         "time_inception1d": {"depth": 3, "filters": 8, "bottleneck": 8, "stem_width": 8},
         "time_s4d": {"d_model": 16, "d_state": 8, "n_layers": 2},
         "time_transformer": {"d_model": 16, "n_heads": 2, "n_layers": 2}}
# narrower versions of the whole architecture (every stage or residual group) for the tiny training
NARROW = {"time_xresnet1d": {"widths": [16, 32, 48, 64], "blocks": [1, 1, 1, 1], "se": True},
          "time_inception1d": {"filters": 16, "bottleneck": 16, "stem_width": 16},
          "time_s4d": {"d_model": 32, "d_state": 32, "n_layers": 2},
          "time_transformer": {"d_model": 32, "n_heads": 4, "n_layers": 2}}


def _eval_model(name: str, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model(name, num_classes=5, **params)
    for module in m.modules():  # non-trivial batch-norm statistics, so outputs depend on the input
        if isinstance(module, torch.nn.BatchNorm1d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    return m.eval()


@pytest.mark.parametrize("name", NAMES)
def test_registered(name):
    assert name in list_models()
    assert "num_classes" not in registry.default_params(name)


@pytest.mark.parametrize("samples", [100, 250, 333, 1000])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes(name, samples):
    m = _eval_model(name)
    x, meta = torch.randn(4, 12, samples), torch.zeros(4, 8)
    with torch.no_grad():
        out = m(x, meta)
        features = m.forward_features(x, meta)
        assert out.shape == (4, 5) and torch.isfinite(out).all()
        assert features.shape == (4, m.encoder.num_features)
        torch.testing.assert_close(m.forward_head(features), out)
    assert out.std(0).min() > 0  # the outputs depend on the input


@pytest.mark.parametrize("name", NAMES)
def test_cost_within_the_compute_goal(name):
    m = build_model(name, num_classes=5)
    macs = count_macs(m, samples=250, windows=7)
    params = sum(p.numel() for p in m.parameters())
    print(f"{name}: {macs['per_ecg'] / 1e6:.1f} M MACs per 10 s ECG, {params:,} parameters")
    assert macs["per_ecg"] < MACS_GOAL
    assert params < PARAMS_BOUND[name]
    # the builder's docstring states the defaults' cost
    doc = " ".join(registry._REGISTRY[name].__doc__.split())
    assert f"{macs['per_ecg'] / 1e6:.0f} M MACs per 10 s ECG" in doc
    assert f"{params / 1e6:.2f} M parameters" in doc


@pytest.mark.parametrize("name", NAMES)
def test_build_by_name_with_params(name):
    m = _eval_model(name, **SMALL[name])
    with torch.no_grad():
        assert m(torch.randn(2, 12, 250), torch.zeros(2, 8)).shape == (2, 5)


def test_xresnet_bottleneck_blocks_and_zero_init():
    m = build_model("time_xresnet1d", num_classes=3, widths=[8, 16], blocks=[1, 2], expansion=4)
    assert m.encoder.num_features == 2 * 16 * 4
    assert m(torch.randn(2, 12, 250)).shape == (2, 3)
    for block in m.encoder.stages:  # each block's residual branch starts at zero: the block is the identity
        assert torch.all(block.convs[-1][1].weight == 0)


@pytest.mark.parametrize("name, unknown, listed", [("time_xresnet1d", "depth", "widths"),
                                                   ("time_inception1d", "widths", "kernels")])
def test_unknown_param(name, unknown, listed):
    with pytest.raises(ECGNetError, match=f"model '{name}' has no parameter\\(s\\) {unknown}") as info:
        build_model(name, num_classes=5, **{unknown: 3})
    assert listed in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_config_is_fast_time_with_another_encoder(name):
    cfg = load_config(CONFIGS / f"{CONFIG_OF[name]}.yaml")
    fast = load_config(CONFIGS / "fast_time.yaml")
    assert cfg.name == CONFIG_OF[name] and cfg.model.name == name
    assert (cfg.seed, cfg.data, cfg.training) == (fast.seed, fast.data, fast.training)
    defaults = registry.default_params(name)
    assert all(np.array_equal(v, defaults[k]) for k, v in cfg.model.params.items())  # the configs spell the defaults


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_tiny_training_beats_chance(name, ptbxl_superdiagnostic):
    """A narrow version trained for 3 epochs on 512 records of folds 1–8 (2.5 s crops, 24 steps), as the
    tiny run of conftest.py does for the baseline, then windowed prediction on 300 records of fold 9."""
    data = ptbxl_superdiagnostic
    train = data.split("train", max_records=512, seed=0, in_memory=True)
    val = data.split("val", max_records=300, seed=0, in_memory=True)
    torch.manual_seed(0)
    np.random.seed(0)  # the crops' positions
    model = build_model(name, len(data.classes), **NARROW[name])
    fit_frontends(model, train.signal)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(3):
        for batch in DataLoader(CropDataset(train, 250), batch_size=64, shuffle=True, drop_last=True):
            loss = loss_fn(model(batch["signal"], batch["metadata"]), batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    auc = macro_auc(val.y, predict_proba(model, val.signal, val.metadata, 250, 125))
    print(f"{name}: fold-9 (300 records) macro AUC {auc:.3f}")
    assert auc > 0.7, f"{name}: macro AUC {auc:.3f} is barely better than chance"


# --- every encoder trains; the S4D layer's own properties ---------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_trains_under_bf16_autocast(name):
    torch.manual_seed(0)
    m = build_model(name, num_classes=5, **SMALL[name]).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.randn(8, 12, 250), torch.zeros(8, 8))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), torch.ones(8, 5))
    loss.backward()
    assert torch.isfinite(out.float()).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_s4d_kernel_is_the_ssm_impulse_response():
    """The Vandermonde kernel equals running the discretised (zero-order hold) recurrence on an impulse."""
    from ecgnet.models.encoders.s4d1d import S4DKernel

    torch.manual_seed(0)
    kernel = S4DKernel(4, d_state=16)
    with torch.no_grad():
        k = kernel(50)
        A = torch.complex(-kernel.log_A_real.exp(), kernel.A_imag)
        dtA = A * kernel.log_dt.exp().unsqueeze(-1)
        a_bar, b_bar, c = torch.exp(dtA), (torch.exp(dtA) - 1) / A, torch.view_as_complex(kernel.C)
        state, response = b_bar, []  # the state after the impulse at t = 0
        for _ in range(50):
            response.append(2 * (c * state).sum(-1).real)
            state = a_bar * state
    torch.testing.assert_close(k, torch.stack(response, -1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_conv_is_causal_or_bidirectional(bidirectional):
    from ecgnet.models.encoders.s4d1d import S4DConv

    torch.manual_seed(0)
    conv = S4DConv(3, d_state=8, bidirectional=bidirectional)
    x = torch.randn(2, 3, 120)
    later = x.clone()
    later[..., 61:] += torch.randn(2, 3, 59)  # change the input after t = 60
    earlier = x.clone()
    earlier[..., :60] += torch.randn(2, 3, 60)  # change the input before t = 60
    with torch.no_grad():
        y, y_later, y_earlier = conv(x), conv(later), conv(earlier)
    past_unchanged = torch.allclose(y[..., :61], y_later[..., :61], atol=1e-5)
    assert past_unchanged != bidirectional  # causal: the output up to t ignores the future; bidirectional: sees it
    assert not torch.allclose(y[..., 60:], y_earlier[..., 60:], atol=1e-5)  # both see the past


def test_s4d_conv_runs_in_float32_under_autocast():
    from ecgnet.models.encoders.s4d1d import S4DConv

    conv = S4DConv(4, d_state=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(torch.randn(2, 4, 64).bfloat16())
    assert y.dtype == torch.float32
