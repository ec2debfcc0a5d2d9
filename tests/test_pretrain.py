"""Self-supervised pretraining (ecgnet.pretrain): the NT-Xent loss, the folds 1–8 guard, a tiny pretraining
through the CLI, and fine-tuning that starts from its encoder (training.init_from)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.config import parse_config
from ecgnet.data.dataset import Split
from ecgnet.errors import ECGNetError
from ecgnet.models import build_model
from ecgnet.pretrain.config import load_pretrain_config
from ecgnet.pretrain.data import check_folds, pretraining_split
from ecgnet.pretrain.loss import nt_xent
from ecgnet.pretrain.views import TwoCrops, augment_view, mask_leads
from ecgnet.pretrain.weights import HEAD, load_pretrained

CONFIG = Path(__file__).parents[1] / "configs" / "pretrain_simclr_time.yaml"
TINY = ["data.max_records=256", "training.epochs=1", "training.batch_size=64", "model.params.widths=[8, 16]",
        "simclr.projection_hidden=32", "simclr.projection_dim=16", "training.threads=1"]


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    """Tiny models train fastest on one thread (training.threads=1 above); other tests get torch's setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --- the loss -----------------------------------------------------------------------------------

def test_nt_xent_of_unrelated_views_is_log_2n_minus_1():
    torch.manual_seed(0)
    n = 64
    za, zb = torch.randn(n, 2048), torch.randn(n, 2048)
    assert nt_xent(za, zb, temperature=1.0).item() == pytest.approx(math.log(2 * n - 1), abs=0.02)
    assert nt_xent(za, zb, temperature=0.1).item() == pytest.approx(math.log(2 * n - 1), abs=0.1)


def test_nt_xent_of_identical_views_is_lower_and_falls_with_the_temperature():
    torch.manual_seed(0)
    z = torch.randn(64, 128)
    unrelated = nt_xent(z, torch.randn(64, 128), 0.1).item()
    same = [nt_xent(z, z.clone(), t).item() for t in (1.0, 0.5, 0.1)]
    assert same[0] < unrelated and same == sorted(same, reverse=True) and same[-1] < 0.05


def test_nt_xent_is_float32_under_bf16_autocast():
    za, zb = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nt_xent(za, zb, 0.1)
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(nt_xent(za, zb, 0.1).item(), abs=1e-5)


# --- views ----------------------------------------------------------------------------------------

def test_two_crops_are_windows_of_the_same_record():
    signal = np.arange(2 * 12 * 1000, dtype=np.float32).reshape(2, 12, 1000)
    split = Split(np.array([1, 2]), signal, np.zeros((2, 8), np.float32), np.zeros((2, 1), np.float32))
    a, b = TwoCrops(split, 250)[1]
    for view in (a, b):
        start = int(view[0, 0]) - 12000
        assert view.shape == (12, 250) and torch.equal(view, torch.from_numpy(signal[1, :, start:start + 250]))


def test_lead_masking_zeroes_whole_leads():
    torch.manual_seed(0)
    x = torch.ones(64, 12, 250)
    out = mask_leads(x, 0.2)
    per_lead = out.sum(-1)
    assert set(per_lead.unique().tolist()) == {0.0, 250.0}
    assert 0.1 < (per_lead == 0).float().mean() < 0.3
    assert torch.equal(mask_leads(x, 0.0), x)
    assert augment_view(x, ["amplitude", "noise"], 1.0, 0.0, 100).shape == x.shape


# --- folds 1–8 only -----------------------------------------------------------------------------

def test_fold_guard_counts_training_folds_and_refuses_folds_9_and_10():
    fold_of = {10: 1, 11: 8, 12: 9, 13: 10}
    assert check_folds([10, 11, 11], fold_of) == {1: 1, 8: 2}
    cases = (([10, 12], "ecg_id 12 (fold 9)"), ([13], "ecg_id 13 (fold 10)"), ([99], "ecg_id 99 (fold None)"))
    for ids, shown in cases:
        with pytest.raises(ECGNetError, match="only use folds 1–8") as e:
            check_folds(ids, fold_of)
        assert shown in str(e.value)


def test_pretraining_split_refuses_a_split_holding_fold_9_records():
    class Leaky:  # a dataset whose "train" split wrongly holds a fold-9 and a fold-10 record
        labels = SimpleNamespace(ecg_ids=np.array([1, 2, 3]), folds=np.array([1, 9, 10]))

        def split(self, name, max_records=None, seed=0):
            return Split(np.array([1, 2, 3]), np.zeros((3, 12, 1000), np.float32), np.zeros((3, 8)), np.zeros((3, 1)))

    with pytest.raises(ECGNetError, match=r"2 record\(s\).*ecg_id 2 \(fold 9\), ecg_id 3 \(fold 10\)"):
        pretraining_split(Leaky())


# --- config --------------------------------------------------------------------------------------

def test_the_pretraining_config_loads_and_refuses_unknown_keys(tmp_path):
    config = load_pretrain_config(CONFIG)
    assert config.data.task == "all" and config.data.window == 250 and config.model.name == "time_resnet1d"
    assert config.training.precision == "bf16-mixed"
    with pytest.raises(ECGNetError, match="simclr.temprature"):
        load_pretrain_config(CONFIG, ["simclr.temprature=0.2"])
    with pytest.raises(ECGNetError, match="simclr.temperature"):
        load_pretrain_config(CONFIG, ["simclr.temperature=0"])


@pytest.mark.parametrize("path", sorted(CONFIG.parent.glob("pretrain_*.yaml")), ids=lambda p: p.stem)
def test_committed_pretraining_configs_load_and_build(path):
    """(tests/test_models.py checks the training configs and leaves these to this test.)"""
    config = load_pretrain_config(path)
    assert config.name == path.stem
    model = build_model(config.model.name, 1, **config.model.params)
    assert model(torch.randn(2, 12, config.data.window)).shape == (2, 1)


def test_the_fine_tuning_config_is_fast_time_from_the_encoder():
    root = Path(__file__).parents[1] / "configs"
    fast, simclr = (parse_config(yaml.safe_load((root / f"{n}.yaml").read_text()))
                    for n in ("fast_time", "simclr_time"))
    assert simclr.training.init_from == "runs/pretrain_simclr_time/encoder.safetensors"
    assert simclr.model_dump(exclude={"name": True, "training": {"init_from"}}) == \
        fast.model_dump(exclude={"name": True, "training": {"init_from"}})


# --- end to end: pretrain with the CLI, then fine-tune from its encoder ----------------------------

@pytest.fixture(scope="module")
def pretrained(ptbxl_root, tmp_path_factory):
    """A tiny pretraining run (256 records of folds 1–8, 1 epoch, widths 8/16) through `ecgnet pretrain`."""
    runs = tmp_path_factory.mktemp("pretrain_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs)
        args = ["pretrain", "-c", str(CONFIG), "--data", str(ptbxl_root), "--runs-dir", str(runs), "--no-progress"]
        result = CliRunner().invoke(app, args + [a for item in TINY for a in ("--set", item)])
    assert result.exit_code == 0, result.output
    assert "epoch 1: contrastive loss " in result.output and "(views of unrelated ECGs: " in result.output
    return runs / "pretrain_simclr_time"


def test_pretraining_writes_the_encoder_and_its_record(pretrained):
    info = json.loads((pretrained / "pretrain.json").read_text())
    assert (pretrained / "config.yaml").is_file() and not list(pretrained.rglob("*.tmp"))
    assert info["records"] == 256 and info["task"] == "all" and info["seed"] == 0
    assert set(info["folds"]) <= set(range(1, 9)) and sum(info["records_per_fold"].values()) == 256
    assert [e["epoch"] for e in info["epochs"]] == [1] and info["epochs"][0]["steps"] == 4
    assert 0 < info["epochs"][0]["loss"] < info["loss_of_unrelated_views"] + 0.5
    assert "git_revision" in info and info["config"]["training"]["epochs"] == 1
    state = load_file(pretrained / "encoder.safetensors")
    assert "frontend.mean" in state and "encoder.stem.0.weight" in state
    assert not any(k.startswith(HEAD) for k in state), "the classification head is not part of the encoder"


def test_pretraining_again_says_it_replaces_the_finished_encoder(pretrained, ptbxl_root, tmp_path, monkeypatch):
    """A second `ecgnet pretrain` of the same name replaced the encoder without a word, where train says so (found
    in a CLI audit). Into a copy of the fixture's run, so the module's other tests keep theirs."""
    import shutil

    shutil.copytree(pretrained, tmp_path / pretrained.name)
    monkeypatch.chdir(tmp_path)
    args = ["pretrain", "-c", str(CONFIG), "--data", str(ptbxl_root), "--runs-dir", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(app, args + [a for item in TINY for a in ("--set", item)])
    assert result.exit_code == 0 and f"note: replacing the finished pretraining {tmp_path / pretrained.name}" in \
        " ".join(result.output.split())


def test_fine_tuning_starts_from_the_pretrained_encoder(pretrained, ptbxl_superdiagnostic, tmp_path, monkeypatch):
    from ecgnet.training.fit import fit_lightning

    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    encoder = pretrained / "encoder.safetensors"
    config = parse_config({"name": "ft", "data": {"max_train_records": 128},
                           "model": {"name": "time_resnet1d", "params": {"widths": [8, 16]}},
                           "training": {"epochs": 1, "batch_size": 64, "init_from": str(encoder)}})
    data = ptbxl_superdiagnostic
    model = build_model("time_resnet1d", len(data.classes), widths=[8, 16])

    class AtStart(L.Callback):
        def on_train_start(self, trainer, module):
            self.state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    start = AtStart()
    stats = fit_lightning(model, config, data.split("train", 128), data.split("val", 64), tmp_path / "ft",
                          resume=False, progress=False, extra_callbacks=[start])
    saved = load_file(encoder)
    assert set(start.state) - set(saved) == {f"{HEAD}1.weight", f"{HEAD}1.bias"}  # only the head is fresh
    for key, value in saved.items():
        assert torch.equal(start.state[key], value), f"{key} did not start from the pretrained encoder"
    info = json.loads((pretrained / "pretrain.json").read_text())
    assert stats["init_from"] == str(encoder) and stats["init_from_sha256"] == info["encoder_sha256"]


def test_a_bad_init_from_is_one_error_naming_the_file(pretrained, tmp_path):
    model = build_model("time_resnet1d", 5, widths=[8, 16])
    missing, garbage = tmp_path / "gone.safetensors", tmp_path / "garbage.safetensors"
    garbage.write_text("not weights")
    for path, what in ((missing, "no such file"), (garbage, "not a readable safetensors file")):
        with pytest.raises(ECGNetError, match=what) as e:
            load_pretrained(model, path)
        assert str(path) in str(e.value)
    wider = build_model("time_resnet1d", 5, widths=[16, 32, 64])
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ECGNetError) as e:
        load_pretrained(wider, pretrained)  # the run folder: its encoder.safetensors
    message = str(e.value)
    assert str(pretrained / "encoder.safetensors") in message and "do not fit the model" in message
    assert "missing: encoder.stages.2." in message and "of another shape: " in message and "more" in message
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items()), "a refused file changed the model"


def test_train_with_a_bad_init_from_exits_with_one_line(ptbxl_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("name: bad_init\ndata: {task: all, max_train_records: 64}\n"
                                     "model: {name: time_resnet1d, params: {widths: [8]}}\n"
                                     "training: {epochs: 1, init_from: nowhere/encoder.safetensors}\n")
    result = CliRunner().invoke(app, ["train", "-c", "c.yaml", "--data", str(ptbxl_root), "--runs-dir", "runs",
                                      "--no-progress"])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message and "nowhere/encoder.safetensors" in message
