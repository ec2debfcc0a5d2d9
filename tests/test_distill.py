"""Distillation (ecgnet.distill): the soft-target loss, the teacher's cached soft targets, the config
options, and a tiny distillation on real records whose student follows the teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from ecgnet.config import parse_config
from ecgnet.distill.data import DistillCropDataset
from ecgnet.distill.loss import DistillationLoss, soft_bce, soften
from ecgnet.distill.teacher import SoftTargets, member_window_probs
from ecgnet.errors import ECGNetError
from ecgnet.models import build_model
from ecgnet.models.windows import aggregate_windows, windowed_proba

CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


# --- the loss ---------------------------------------------------------------------------------

def test_soft_bce_at_t1_is_bce_against_the_teacher_probabilities():
    logits, p = torch.randn(8, 5), torch.rand(8, 5)
    by_hand = -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)).mean()
    assert torch.allclose(soft_bce(logits, p, 1.0), by_hand, atol=1e-6)


def test_temperature_softens_both_sides_and_scales_by_t_squared():
    logits, p, t = torch.randn(8, 5), torch.rand(8, 5) * 0.98 + 0.01, 3.0
    q = torch.sigmoid(torch.logit(p) / t)
    by_hand = t ** 2 * -(q * F.logsigmoid(logits / t) + (1 - q) * F.logsigmoid(-logits / t)).mean()
    assert torch.allclose(soft_bce(logits, p, t), by_hand, atol=1e-5)
    assert torch.allclose(soften(torch.tensor([0.5]), 4.0), torch.tensor([0.5]))  # 0.5 stays 0.5
    assert soften(torch.tensor([0.99]), 4.0) < 0.99 and soften(torch.tensor([0.01]), 4.0) > 0.01


def test_soft_term_is_minimal_where_the_student_agrees_with_the_teacher():
    p = torch.rand(4, 5) * 0.9 + 0.05
    for t in (1.0, 2.0):
        logits = torch.logit(p).clone().requires_grad_(True)
        soft_bce(logits, p, t).backward()
        assert logits.grad.abs().max() < 1e-6


def test_weight_mixes_hard_and_soft_and_target_halves_are_split():
    logits, y, p = torch.randn(6, 5), (torch.rand(6, 5) > 0.5).float(), torch.rand(6, 5)
    hard, soft = F.binary_cross_entropy_with_logits(logits, y), soft_bce(logits, p, 2.0)
    for a in (0.0, 0.3, 1.0):
        loss = DistillationLoss(torch.nn.BCEWithLogitsLoss(), a, 2.0)
        assert torch.allclose(loss(logits, y, p), (1 - a) * hard + a * soft, atol=1e-6)
        assert torch.allclose(loss(logits, torch.cat([y, p], 1)), loss(logits, y, p))
    assert torch.allclose(DistillationLoss(torch.nn.BCEWithLogitsLoss(), 0.7)(logits, y), hard)  # labels only
    with pytest.raises(ValueError, match="weight"):
        DistillationLoss(torch.nn.BCEWithLogitsLoss(), 1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(torch.nn.BCEWithLogitsLoss(), 0.5, 0.0)


# --- the config -------------------------------------------------------------------------------

def _config(**training):
    return parse_config({"name": "s", "model": {"name": "time_resnet1d"}, "training": training}, source="test")


def test_config_defaults_off_and_bad_values_are_errors():
    t = _config().training
    assert t.distill_teacher is None and t.distill_weight == 0.5 and t.distill_temperature == 1.0
    assert _config(distill_teacher="runs/x", distill_weight=1.0, distill_target="record").training.distill_weight == 1
    for bad, field in ((dict(distill_weight=1.5), "distill_weight"), (dict(distill_weight=-0.1), "distill_weight"),
                       (dict(distill_temperature=0), "distill_temperature"),
                       (dict(distill_target="crop"), "distill_target")):
        with pytest.raises(ECGNetError, match=field):
            _config(**bad)
    with pytest.raises(ECGNetError, match="choose one"):
        _config(distill_teacher="runs/x", auxiliary_task="all")


def test_the_teacher_option_replaces_the_configs_teacher_and_says_so(tmp_path, capsys):
    from ecgnet.distill.run import student_config

    student = tmp_path / "s.yaml"
    student.write_text("name: s\nmodel: {name: time_resnet1d}\ntraining: {distill_teacher: runs/old}\n")
    assert student_config(student, tmp_path / "new").training.distill_teacher == str(tmp_path / "new")
    note = capsys.readouterr().err
    assert "replaces the teacher" in note and "runs/old" in note
    student.write_text("name: s\nmodel: {name: time_resnet1d}\n")
    student_config(student, tmp_path / "new")
    assert capsys.readouterr().err == ""  # no teacher named: nothing replaced
    with pytest.raises(ECGNetError, match="the teacher is --teacher"):
        student_config(student, tmp_path / "new", ["training.distill_teacher=runs/other"])


# --- soft targets -----------------------------------------------------------------------------

def _targets(probs: np.ndarray, method="average", weight=None, bias=None, ids=None) -> SoftTargets:
    n, m, w, c = probs.shape
    return SoftTargets(np.arange(n) + 1 if ids is None else ids, probs, np.arange(w) * 125, 250,
                       ("max",) * m, method, np.full((c, m), 1 / m) if weight is None else weight,
                       np.zeros(c) if bias is None else bias, CLASSES[:c], "0" * 64)


def test_record_targets_average_each_members_window_maximum():
    rng = np.random.default_rng(0)
    probs = rng.random((3, 2, 7, 5)).astype(np.float32)
    t = _targets(probs)
    np.testing.assert_allclose(t.record(), probs.max(2).mean(1), rtol=1e-6)
    np.testing.assert_allclose(t.windows(), probs.mean(1), rtol=1e-6)


def test_stacked_teacher_combines_member_logits():
    rng = np.random.default_rng(1)
    probs = rng.uniform(0.05, 0.95, (2, 3, 7, 4))
    w, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    z = np.log(probs.max(2) / (1 - probs.max(2)))  # (records, members, classes)
    expected = 1 / (1 + np.exp(-((z * w.T).sum(1) + b)))
    np.testing.assert_allclose(_targets(probs, "stacking", w, b).record(), expected, rtol=1e-5)


def test_member_window_probabilities_aggregate_to_the_evaluated_record_probability():
    torch.manual_seed(0)
    model = build_model("time_resnet1d", 5, widths=[8, 8]).eval()
    x, m = torch.randn(3, 12, 1000), torch.randn(3, 8)
    starts = list(range(0, 751, 125))
    per_window = member_window_probs(model, x, m, starts, 250)
    assert per_window.shape == (3, 7, 5)
    with torch.no_grad():
        record = aggregate_windows(model, x, m, 250, 125, "max")
        second = torch.sigmoid(model(x[..., 125:375], m))
    assert torch.allclose(per_window.amax(1), record, atol=1e-6)
    assert torch.allclose(per_window[:, 1], second, atol=1e-6)


def test_rows_and_missing_records():
    t = _targets(np.zeros((3, 1, 7, 5), np.float32), ids=np.array([10, 20, 30]))
    assert t.rows(np.array([30, 10])).tolist() == [2, 0]
    with pytest.raises(ECGNetError, match="ecg_id 40"):
        t.rows(np.array([10, 40]))


def test_load_names_a_folder_without_soft_targets(tmp_path):
    with pytest.raises(ECGNetError, match="no soft targets"):
        SoftTargets.load(tmp_path)
    (tmp_path / "train.npz").write_bytes(b"not a zip")
    with pytest.raises(ECGNetError, match="train.npz"):
        SoftTargets.load(tmp_path)


def test_a_crop_gets_the_soft_target_of_the_nearest_window():
    from ecgnet.data.dataset import Split

    n, samples = 2, 1000
    split = Split(np.array([1, 2]), np.zeros((n, 12, samples), np.float32), np.zeros((n, 8), np.float32),
                  np.zeros((n, 5), np.float32))
    windows = np.arange(n * 7 * 5, dtype=np.float32).reshape(n, 7, 5) / 100
    starts = np.arange(7) * 125
    data = DistillCropDataset(split, 250, windows, starts)
    np.random.seed(0)
    for _ in range(20):
        state = np.random.get_state()
        start = np.random.randint(0, samples - 250 + 1)
        np.random.set_state(state)
        y = data[1]["y"].numpy()
        assert y.shape == (10,) and (y[:5] == 0).all()
        np.testing.assert_allclose(y[5:], windows[1, np.abs(starts - start).argmin()])
    record = DistillCropDataset(split, 250, windows[:, 0])
    np.testing.assert_allclose(record[0]["y"].numpy()[5:], windows[0, 0])


# --- a tiny distillation on real records ------------------------------------------------------

@pytest.mark.slow
def test_tiny_student_follows_its_teacher(ptbxl_superdiagnostic, tmp_path, monkeypatch):
    """The teacher here 'believes' each class is the next one (its probabilities are the labels of a
    rotated class order): a student taught by it alone (α = 1) must rank fold-9 records by the teacher's
    classes, better than chance and better than a student of the labels alone (α = 0), which must rank
    them by the true labels better than chance."""
    from ecgnet.training.fit import fit_lightning

    data = ptbxl_superdiagnostic
    train, val = data.split("train", 600, 0, in_memory=True), data.split("val", 300, 0, in_memory=True)
    rotate = np.roll(np.arange(5), 1)
    folder = tmp_path / "soft"
    folder.mkdir()
    teacher = (0.05 + 0.9 * train.y[:, rotate])[:, None, None, :].repeat(7, 2).astype(np.float32)
    np.savez(folder / "train.npz", ecg_ids=train.ecg_ids, probs=teacher, starts=np.arange(7) * 125,
             window=np.asarray(250), aggregates=np.asarray(["max"]), method=np.asarray("average"),
             weight=np.ones((5, 1), np.float32), bias=np.zeros(5, np.float32), classes=np.asarray(data.classes),
             weights_sha256=np.asarray("0" * 64))
    monkeypatch.chdir(tmp_path)
    from dataclasses import replace

    import lightning as L

    # each student is validated (checkpoint selection) against what it is taught: labels, or the teacher's classes
    val_by_alpha = {0.0: val, 1.0: replace(val, y=val.y[:, rotate])}
    scores = {}
    for alpha in (0.0, 1.0):
        L.seed_everything(0, verbose=False)  # the same crops and initialisation whatever ran before
        config = parse_config({"name": f"student{alpha}", "seed": 0, "data": {"max_train_records": 600},
                               "model": {"name": "time_resnet1d", "params": {"widths": [16, 32]}},
                               "training": {"epochs": 3, "batch_size": 64, "patience": 3, "lr": 0.01,
                                            "distill_teacher": str(folder), "distill_weight": alpha}}, source="t")
        model = build_model("time_resnet1d", 5, widths=[16, 32])
        fit_lightning(model, config, train, val_by_alpha[alpha], tmp_path / config.name, False, False)
        p = windowed_proba(model.eval(), torch.as_tensor(val.signal), torch.as_tensor(val.metadata), 250, 125).numpy()
        scores[alpha] = (roc_auc_score(val.y, p, average="macro"),
                         roc_auc_score(val.y[:, rotate], p, average="macro"))
    labels_auc, _ = scores[0.0]
    _, teacher_auc = scores[1.0]
    assert labels_auc > 0.6, scores  # labels alone: beats chance on the labels
    assert teacher_auc > 0.6, scores  # teacher alone: beats chance on what the teacher says
    assert teacher_auc > scores[0.0][1] + 0.05, scores  # and follows the teacher, not the labels


def test_a_teacher_of_another_task_is_refused_without_leaving_a_cache_folder(untrained_run, tmp_path):
    from types import SimpleNamespace

    from ecgnet.distill import teacher

    statements = [f"S{i}" for i in range(71)]
    data = SimpleNamespace(classes=statements, split=lambda name: SimpleNamespace(ecg_ids=[]))
    with pytest.raises(ECGNetError, match=r"the teacher predicts .*; the student's task has S0, S1, S2, S3, S4, "
                                          r"S5, … \(71 in all\): a teacher of the same task"):
        teacher.build(untrained_run, data, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()
