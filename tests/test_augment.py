"""Acquisition augmentations: each changes what it claims, within its stated strength, and nothing else."""

from __future__ import annotations

import pytest
import torch

from ecgnet.config import parse_config
from ecgnet.data.augment import NAMES, augment
from ecgnet.errors import ECGNetError


@pytest.fixture
def batch():
    torch.manual_seed(0)
    t = torch.arange(250) / 100
    return torch.sin(2 * torch.pi * 1.2 * t).repeat(64, 12, 1) * torch.linspace(0.5, 1.5, 12)[:, None]


@pytest.mark.parametrize("name", NAMES)
def test_probability_zero_is_the_identity_and_one_hits_every_record(batch, name):
    assert torch.equal(augment(batch, [name], 100, p=0.0), batch)
    out = augment(batch, [name], 100, p=1.0)
    assert out.shape == batch.shape and torch.isfinite(out).all()
    assert ((out - batch).abs().amax(dim=(1, 2)) > 1e-4).all()


def test_about_half_the_records_are_hit_by_default(batch):
    torch.manual_seed(1)
    hit = ((augment(batch.repeat(8, 1, 1), ["noise"], 100) - batch.repeat(8, 1, 1)).abs().amax(dim=(1, 2)) > 0)
    assert 0.35 < hit.float().mean() < 0.65


def test_amplitude_gain_stays_in_its_range(batch):
    ratio = augment(batch, ["amplitude"], 100, p=1.0)[:, :, 25] / batch[:, :, 25]  # sin peak: no division by ~0
    assert ratio.min() >= 0.67 * 0.9 - 1e-5 and ratio.max() <= 1.5 * 1.1 + 1e-5


def test_lead_mix_touches_only_the_precordial_leads(batch):
    out = augment(batch, ["lead_mix"], 100, p=1.0)
    assert torch.equal(out[:, :6], batch[:, :6])
    assert not torch.equal(out[:, 6:], batch[:, 6:])


def test_filter_removes_the_offset_and_keeps_the_band(batch):
    shifted = batch + 1.0  # a DC offset of 1 mV
    out = augment(shifted, ["filter"], 100, p=1.0)
    assert out.mean(-1).abs().max() < 0.2  # the high-pass takes the offset away
    corr = torch.nn.functional.cosine_similarity(out - out.mean(-1, keepdim=True), batch, dim=-1)
    assert corr.min() > 0.9  # a 1.2 Hz rhythm passes


def test_config_names_are_validated():
    cfg = parse_config({"name": "x", "data": {"augment": ["noise", "filter"]}, "model": {"name": "time_resnet1d"}})
    assert cfg.data.augment == ["noise", "filter"]
    with pytest.raises(ECGNetError, match="data.augment"):
        parse_config({"name": "x", "data": {"augment": ["shout"]}, "model": {"name": "time_resnet1d"}})
