"""The accuracy levers of training (reports/levers/): mixup, CutMix and label smoothing soften the targets,
SWA validates and saves the plain average of epoch-end weights, an auxiliary task trains a second head
that the saved run does not carry, and the hierarchy penalty keeps that head's subclasses under their
superclasses."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ecgnet.config import parse_config
from ecgnet.errors import ECGNetError
from ecgnet.training.soft_targets import mixup, smooth_labels
from ecgnet.training.swa import EpochWeightAveraging
from conftest import TINY_CONFIG, _cache_dir


def test_mixup_mixes_signal_metadata_and_targets_alike():
    torch.manual_seed(0)
    signal, metadata = torch.randn(16, 12, 250), torch.randn(16, 8)
    y = (torch.rand(16, 5) > 0.5).float()
    # a record mixed with itself is unchanged: the three tensors share λ and the permutation
    same = torch.arange(16, dtype=torch.float32)
    s, m, t = mixup(same[:, None, None].expand(16, 12, 250), same[:, None].expand(16, 8), same[:, None], 0.4)
    assert torch.allclose(s[:, 0, 0], t[:, 0]) and torch.allclose(m[:, 0], t[:, 0])
    s, m, t = mixup(signal, metadata, y, 0.4)
    assert s.shape == signal.shape and m.shape == metadata.shape and t.shape == y.shape
    assert ((t >= 0) & (t <= 1)).all() and not torch.equal(s, signal)
    torch.manual_seed(1)
    first = mixup(signal, metadata, y, 0.4)[0]
    torch.manual_seed(1)
    assert torch.equal(first, mixup(signal, metadata, y, 0.4)[0]), "mixup must follow torch's seed"


def test_label_smoothing_moves_targets_off_zero_and_one():
    y = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(smooth_labels(y, 0.1), torch.tensor([[0.05, 0.95]]))


@pytest.mark.parametrize("training, message", [
    ({"ema_decay": 0.99, "swa_start_epoch": 10}, "choose one"),
    ({"auxiliary_task": "everything"}, "auxiliary_task"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"mixup_alpha": 0}, "mixup_alpha"),
])
def test_bad_lever_settings_are_refused(training, message):
    with pytest.raises(ECGNetError, match=message):
        parse_config({**TINY_CONFIG, "training": {**TINY_CONFIG["training"], **training}})


class _Toy(L.LightningModule):
    """A linear model that records its weight at each epoch's end and what validation saw."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.epoch_end, self.validated = [], []

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.validated.append(self.layer.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _RecordEpochEnd(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx == trainer.num_training_batches - 1:
            module.epoch_end.append(module.layer.weight.detach().clone())


def test_swa_validates_and_keeps_the_mean_of_epoch_end_weights(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    toy = _Toy()
    trainer = L.Trainer(max_epochs=5, callbacks=[_RecordEpochEnd(), EpochWeightAveraging(start_epoch=3)],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(toy, loader, loader)
    trained, seen = toy.epoch_end, toy.validated
    assert len(trained) == len(seen) == 5
    for epoch in (0, 1):  # before the first averaged epoch, fold 9 sees the weights as trained
        assert torch.allclose(seen[epoch], trained[epoch])
    for epoch in (2, 3, 4):  # then the mean of epoch ends from epoch 3 (1-based) on, this one included
        assert torch.allclose(seen[epoch], torch.stack(trained[2:epoch + 1]).mean(0), atol=1e-6)
    assert torch.allclose(toy.layer.weight, torch.stack(trained[2:]).mean(0), atol=1e-6)


def test_task_targets_give_another_label_set_for_the_same_records(ptbxl_superdiagnostic):
    split = ptbxl_superdiagnostic.split("val")
    y_all = ptbxl_superdiagnostic.task_targets("all", split.ecg_ids)
    assert y_all.shape == (len(split.ecg_ids), 71)
    assert (y_all.sum(1) > 0).all(), "every superdiagnostic record has at least one statement"
    norm = ptbxl_superdiagnostic.classes.index("NORM")
    from ecgnet.data.ptbxl import make_labels
    all_classes = make_labels(*ptbxl_superdiagnostic.tables, "all").classes
    assert np.array_equal(y_all[:, all_classes.index("NORM")], split.y[:, norm])
    rhythm = ptbxl_superdiagnostic.task_targets("rhythm", split.ecg_ids)
    assert rhythm.shape[1] == 12 and (rhythm.sum(1) == 0).any(), "records without a rhythm statement: zeros"


@pytest.fixture(scope="module")
def multitask_run(ptbxl_root, tmp_path_factory):
    from ecgnet.training.fit import train

    raw = {**TINY_CONFIG, "name": "tiny_multitask",
           "training": {**TINY_CONFIG["training"], "auxiliary_task": "all", "mixup_alpha": 0.2,
                        "label_smoothing": 0.05, "swa_start_epoch": 2}}
    runs_dir = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs_dir)
        run_dir, results = train(parse_config(raw), ptbxl_root, runs_dir=runs_dir, cache_dir=_cache_dir(),
                                 progress=False, n_boot=20)
    return run_dir, results


@pytest.mark.slow
def test_multitask_run_learns_and_ships_without_its_auxiliary_head(multitask_run):
    from ecgnet.runs import load_run

    run_dir, results = multitask_run
    assert results["test"]["macro_auc"]["value"] > 0.6, "the tiny multi-task run is no better than chance"
    weights = load_file(run_dir / "model.safetensors")
    assert not [k for k in weights if "auxiliary" in k], "the auxiliary head must not be saved"
    model, config, info = load_run(run_dir)
    assert info["classes"] == ["CD", "HYP", "MI", "NORM", "STTC"] and config.training.auxiliary_task == "all"
    with torch.no_grad():
        assert model(torch.randn(2, 12, 250), torch.zeros(2, 8)).shape == (2, 5)
    assert json.loads((run_dir / "test" / "metrics.json").read_text())["n_records"] == 2163


# --- CutMix and hierarchical consistency ------------------------------------------------------

def test_cutmix_pastes_one_segment_of_a_permuted_batch_and_mixes_targets_by_the_kept_fraction():
    from ecgnet.training.soft_targets import cutmix

    signal, metadata = torch.randn(16, 12, 250), torch.randn(16, 8)
    y = (torch.rand(16, 5) > 0.5).float()
    before, pasted = signal.clone(), 0
    for seed in range(20):
        torch.manual_seed(seed)
        s, m, t = cutmix(signal, metadata, y, 1.0)
        assert s.shape == signal.shape and t.shape == y.shape and torch.equal(m, metadata)
        changed = (s != signal).any(0).any(0)  # the time samples that differ in any record or lead
        torch.manual_seed(seed)  # replay the draws to find the permutation
        lam = torch.distributions.Beta(1.0, 1.0).sample().item()
        length = round((1 - lam) * 250)
        start = int(torch.randint(0, 250 - length + 1, ()).item())
        perm = torch.randperm(16)
        assert not changed[:start].any() and not changed[start + length:].any(), "only one segment is pasted"
        assert torch.equal(s[..., start:start + length], signal[perm, ..., start:start + length])
        kept, pasted = 1 - length / 250, pasted + (length > 0)
        assert torch.allclose(t, kept * y + (1 - kept) * y[perm])
        assert ((t >= 0) & (t <= 1)).all()
    assert pasted > 10, "Beta(1, 1) rarely keeps the whole record"
    torch.manual_seed(3)
    first = cutmix(signal, metadata, y, 1.0)
    torch.manual_seed(3)
    again = cutmix(signal, metadata, y, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(first, again)), "cutmix must follow torch's seed"
    assert torch.equal(signal, before), "the input batch is left as it was"


def test_cutmix_of_a_batch_with_itself_changes_nothing():
    from ecgnet.training.soft_targets import cutmix

    same = torch.ones(8, 12, 100)
    y = torch.ones(8, 3)
    torch.manual_seed(0)
    s, _, t = cutmix(same, torch.zeros(8, 8), y, 0.4)
    assert torch.equal(s, same) and torch.allclose(t, y)


@pytest.mark.parametrize("training, message", [
    ({"mixup_alpha": 0.2, "cutmix_alpha": 1.0}, "mixup_alpha and cutmix_alpha"),
    ({"cutmix_alpha": 0}, "cutmix_alpha"),
    ({"hierarchy_weight": 1.0}, "hierarchy_weight needs auxiliary_task"),
    ({"hierarchy_weight": 1.0, "auxiliary_task": "all"}, "hierarchy_weight needs auxiliary_task"),
    ({"hierarchy_weight": 0, "auxiliary_task": "subdiagnostic"}, "hierarchy_weight"),
])
def test_bad_cutmix_and_hierarchy_settings_are_refused(training, message):
    with pytest.raises(ECGNetError, match=message):
        parse_config({**TINY_CONFIG, "training": {**TINY_CONFIG["training"], **training}})


def test_hierarchy_settings_are_accepted():
    for aux in ("subdiagnostic", "diagnostic"):
        t = parse_config({**TINY_CONFIG, "training": {"auxiliary_task": aux, "hierarchy_weight": 0.5}}).training
        assert t.hierarchy_weight == 0.5 and t.cutmix_alpha is None


def test_hierarchy_needs_the_superclass_task():
    with pytest.raises(ECGNetError, match="training.hierarchy_weight needs data.task superdiagnostic"):
        parse_config({**TINY_CONFIG, "data": {"task": "form"},
                      "training": {"auxiliary_task": "subdiagnostic", "hierarchy_weight": 1.0}})


@pytest.mark.slow
def test_parent_map_from_subclasses_and_statements_to_superclasses(ptbxl_superdiagnostic):
    from ecgnet.data.ptbxl import make_labels
    from ecgnet.training.hierarchy import dataset_parent_index, parent_index

    supers = ptbxl_superdiagnostic.classes
    assert supers == ["CD", "HYP", "MI", "NORM", "STTC"]
    subclasses = make_labels(*ptbxl_superdiagnostic.tables, "subdiagnostic").classes
    parents = dataset_parent_index(ptbxl_superdiagnostic, "subdiagnostic")
    assert len(subclasses) == len(parents) == 23 and set(parents) == set(range(5))
    named = {c: supers[p] for c, p in zip(subclasses, parents)}
    assert named["IMI"] == named["AMI"] == "MI" and named["LVH"] == "HYP" and named["CLBBB"] == "CD"
    assert named["NORM"] == "NORM" and named["ISCA"] == "STTC"
    statements = make_labels(*ptbxl_superdiagnostic.tables, "diagnostic").classes
    parents = dataset_parent_index(ptbxl_superdiagnostic, "diagnostic")
    assert len(statements) == len(parents) == 44
    assert supers[parents[statements.index("IMI")]] == "MI" and supers[parents[statements.index("LVH")]] == "HYP"
    # the map agrees with the labels: a superclass is positive iff one of its children is
    split = ptbxl_superdiagnostic.split("val")
    y_sub = ptbxl_superdiagnostic.task_targets("subdiagnostic", split.ecg_ids)
    parents = dataset_parent_index(ptbxl_superdiagnostic, "subdiagnostic")
    for k in range(5):
        assert np.array_equal(y_sub[:, parents == k].max(1), split.y[:, k])
    with pytest.raises(ECGNetError, match="no label hierarchy"):
        parent_index(ptbxl_superdiagnostic.tables[1], "superdiagnostic", supers, "subdiagnostic", subclasses)


def test_hierarchy_penalty_is_zero_when_coherent_and_pulls_children_under_parents():
    from ecgnet.training.hierarchy import HierarchyLoss, hierarchy_penalty

    parent = torch.tensor([0, 0, 1])
    coherent_parent, coherent_child = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 2.0, -3.0]])
    assert hierarchy_penalty(coherent_parent, coherent_child, parent) == 0
    z_parent = torch.tensor([[-1.0, 0.0]], requires_grad=True)
    z_child = torch.tensor([[1.0, -2.0, 0.0]], requires_grad=True)
    penalty = hierarchy_penalty(z_parent, z_child, parent)
    expected = (torch.sigmoid(torch.tensor(1.0)) - torch.sigmoid(torch.tensor(-1.0))) ** 2 / 3
    assert torch.allclose(penalty, expected)
    penalty.backward()
    assert z_parent.grad[0, 0] < 0 and z_child.grad[0, 0] > 0, "the parent is pushed up, the child down"
    assert z_child.grad[0, 1] == 0 and z_child.grad[0, 2] == 0 and z_parent.grad[0, 1] == 0
    base = nn.BCEWithLogitsLoss()
    loss = HierarchyLoss(base, parent.numpy(), 2, 0.5)
    logits, y = torch.cat([z_parent, z_child], 1).detach(), torch.zeros(1, 5)
    assert torch.allclose(loss(logits, y), base(logits, y) + 0.5 * expected)
