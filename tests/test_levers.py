"""The accuracy levers of training (reports/levers/): mixup and label smoothing soften the targets, SWA
validates and saves the plain average of epoch-end weights, and an auxiliary task trains a second head
that the saved run does not carry."""

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
    all_classes = make_labels(*ptbxl_superdiagnostic._tables, "all").classes
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
