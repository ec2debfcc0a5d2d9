"""Class-imbalance options: losses, the oversampler, and their config switches."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ecgnet.config import parse_config
from ecgnet.errors import ECGNetError
from ecgnet.training.losses import FocalLoss, make_loss, positive_weights
from ecgnet.training.sampling import epoch_sampler, oversampler, record_weights


def test_positive_weights_are_sqrt_of_negative_to_positive_ratio():
    y = np.zeros((100, 2), dtype=np.float32)
    y[:50, 0] = 1  # balanced: weight 1
    y[:4, 1] = 1   # 4 positives, 96 negatives: sqrt(24)
    assert torch.allclose(positive_weights(y), torch.tensor([1.0, 24 ** 0.5]))


def test_focal_loss_with_gamma_zero_is_bce_and_down_weights_easy_records():
    logits, target = torch.tensor([[4.0, -4.0, 0.1]]), torch.tensor([[1.0, 0.0, 1.0]])
    assert torch.isclose(FocalLoss(0.0)(logits, target), F.binary_cross_entropy_with_logits(logits, target))
    easy_only = FocalLoss(2.0)(logits[:, :2], target[:, :2]) / F.binary_cross_entropy_with_logits(logits[:, :2], target[:, :2])
    hard_only = FocalLoss(2.0)(logits[:, 2:], target[:, 2:]) / F.binary_cross_entropy_with_logits(logits[:, 2:], target[:, 2:])
    assert easy_only < 0.001 < hard_only


def test_weighted_bce_raises_the_rare_class_loss():
    y = np.zeros((100, 2), dtype=np.float32)
    y[:50, 0], y[:4, 1] = 1, 1
    loss = make_loss("weighted_bce", y)
    logits, target = torch.zeros(1, 2), torch.ones(1, 2)
    # a missed positive costs log 2 times its class weight: 1 for the balanced class, sqrt(24) for the rare one
    expected = np.log(2) * (1 + 24 ** 0.5) / 2
    assert torch.isclose(loss(logits, target), torch.tensor(expected, dtype=torch.float32))
    assert torch.isclose(make_loss("bce", y)(logits, target), torch.tensor(np.log(2), dtype=torch.float32))


def test_unknown_loss_is_an_error():
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge", np.ones((2, 2)))


def test_oversampler_balances_single_label_classes():
    y = np.zeros((1000, 2), dtype=np.float32)
    y[:900, 0], y[900:, 1] = 1, 1  # 90 % / 10 %
    drawn = np.array(list(oversampler(y, seed=0)))
    rare_share = y[drawn, 1].mean()
    assert 0.45 < rare_share < 0.55  # from 0.10 to about a half
    assert len(drawn) == len(y)


def test_min_epoch_crops_repeats_whole_shuffles_of_a_small_collection():
    y = np.zeros((10, 2), dtype=np.float32)
    assert epoch_sampler(y, "shuffle", 0, 10, None) is None  # the loader's own shuffle, as before
    assert epoch_sampler(y, "shuffle", 0, 10, 8) is None  # already at least 8 crops an epoch
    drawn = list(epoch_sampler(y, "shuffle", 0, 10, 25))
    assert len(drawn) == 25
    assert sorted(drawn[:10]) == sorted(drawn[10:20]) == list(range(10))  # every record once a pass
    assert len(set(drawn[20:])) == 5  # the last pass cut short, without repeats
    assert len(list(epoch_sampler(y, "oversample", 0, 10, 25))) == 25


def test_record_weights_follow_the_rarest_label():
    y = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32)  # class 1 is rarer
    w = record_weights(y)
    assert w[1] > w[0] and w[2] == w[0]  # unlabelled records weigh as the commonest class


def test_config_switches():
    base = {"name": "x", "model": {"name": "time_resnet1d"}}
    cfg = parse_config({**base, "training": {"loss": "focal", "focal_gamma": 1.5, "sampler": "oversample"}})
    assert (cfg.training.loss, cfg.training.sampler) == ("focal", "oversample")
    with pytest.raises(ECGNetError, match="training.loss"):
        parse_config({**base, "training": {"loss": "hinge"}})
