"""Training on a manifest from a config (no --from): the run directory as for PTB-XL (run.json with the
collection, val/ and test/ metrics by the fold convention), unknown labels masked, and DDP on two CPU
processes through the same Trainer path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from test_finetune import write_learnable

from ecgnet.training.losses import MaskedLoss, make_loss
from ecgnet.evaluation.scoring import masked_macro_auc

CONFIG = """\
name: {name}
data: {{task: superdiagnostic}}
model: {{name: time_resnet1d, params: {{widths: [8, 8]}}}}
training: {{epochs: 2, batch_size: 8, lr: 0.01, threads: 1, accelerator: cpu{extra}}}
"""


def test_masked_loss_ignores_unknown_targets():
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    target = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    loss = make_loss("bce", target.numpy())
    assert isinstance(loss, MaskedLoss)
    known = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[[0, 1, 1], [0, 0, 1]], target[[0, 1, 1], [0, 0, 1]])
    assert loss(logits, target).item() == pytest.approx(known.item())
    assert not isinstance(make_loss("bce", np.ones((2, 2))), MaskedLoss)  # complete labels: the loss as before
    y = np.array([[1, np.nan], [0, 1], [1, 0], [0, np.nan]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.5]])
    assert masked_macro_auc(y, p) == pytest.approx(1.0)


def _run(tmp_path: Path, extra: str, name: str, unknown: bool = False,
         flat: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ecgnet")
    if not exe.is_file():
        pytest.skip(f"{exe} is not installed")
    manifest = write_learnable(tmp_path)
    if flat:  # one record with a lead off (flat V1): predict withholds its calls; training says it trains on it
        import wfdb

        record = wfdb.rdrecord(str(tmp_path / "s0"))
        signal = record.p_signal.copy()
        signal[:, 6] = 0.0
        wfdb.wrsamp("s0", fs=record.fs, units=record.units, sig_name=record.sig_name, p_signal=signal,
                    fmt=record.fmt, adc_gain=record.adc_gain, baseline=record.baseline, write_dir=str(tmp_path))
    if unknown:
        table = pd.read_csv(manifest)
        table["Y"] = table["Y"].astype("Int64").astype(object)
        table.loc[::5, "Y"] = ""
        table.to_csv(manifest, index=False)
    (tmp_path / "c.yaml").write_text(CONFIG.format(name=name, extra=extra))
    return subprocess.run([str(exe), "train", "-c", "c.yaml", "--manifest", str(manifest), "--runs-dir", "runs",
                           "--n-boot", "20", "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "COLUMNS": "200", "ECGNET_CACHE": str(tmp_path / "cache")})


@pytest.mark.slow
def test_manifest_training_from_a_config_with_unknown_labels(tmp_path):
    proc = _run(tmp_path, "", "plain", unknown=True, flat=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "plain"
    info = json.loads((run / "run.json").read_text())
    said = " ".join(proc.stdout.split())
    assert ("warning: amplitudes not trusted, trained on as they are: m.csv line 2 (record 's0.hea'): flat lead: "
            "V1") in said
    first = info["collection"]["untrusted_amplitude"][0]  # (the synthetic records' equal lead ranges are listed too)
    assert first[0] == "s0.hea" and "flat lead: V1" in first[1]
    assert info["classes"] == ["X", "Y"] and info["task"] is None and info["collection"]["name"] == "m"
    assert info["split_records"]["train"] + info["split_records"]["val"] + info["split_records"]["test"] == 36
    test = json.loads((run / "test" / "metrics.json").read_text())
    assert test["n_records"] == info["split_records"]["test"] and set(test["per_class"]) == {"X", "Y"}
    assert list(pd.read_csv(run / "test" / "predictions.csv").columns) == ["ecg_id", "X", "Y"]  # as PTB-XL runs'
    assert (run / "val" / "metrics.json").is_file()


@pytest.mark.slow
def test_ddp_on_a_manifest(tmp_path):
    proc = _run(tmp_path, ", devices: 2, strategy: ddp", "ddp_manifest")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp_manifest"
    hardware = json.loads((run / "run.json").read_text())["hardware"]
    assert hardware["world_size"] == 2 and hardware["strategy"] == "DDPStrategy"
    log = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert (log["val_records"] == json.loads((run / "run.json").read_text())["split_records"]["val"]).all()


@pytest.mark.slow
def test_min_epoch_crops_gives_a_small_collection_more_steps_an_epoch(tmp_path):
    """36 records (~22 to train on) in batches of 8 are 2 steps an epoch; ≥ 64 crops an epoch are 8."""
    proc = _run(tmp_path, ", min_epoch_crops: 64", "crops")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "crops"
    assert json.loads((run / "run.json").read_text())["split_records"]["train"] < 64
    log = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert log["step"].tolist() == [8, 16]


def _mixed_lengths(folder: Path, n: int = 30) -> Path:
    """Records of 6 s, 10 s and 25 s at 100 Hz where class X is an 8 Hz oscillation in the second half of a 25 s
    record only (its centre 10 s shows part of it) and over all of a shorter one; one patient each."""
    import wfdb

    from ecgnet.data.signals import LEADS

    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        seconds, x = (6, 10, 25)[i % 3], (i // 3) % 2
        t = np.arange(seconds * 100) / 100
        sig = rng.normal(0, 0.2, (len(t), 12))
        sig += x * 0.6 * (np.sin(2 * np.pi * 8 * t) * (t >= seconds - 12.5 if seconds == 25 else 1))[:, None]
        wfdb.wrsamp(f"m{i}", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=np.round(sig, 3),
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
        rows.append({"record": f"m{i}.hea", "patient": f"p{i}", "X": x, "Y": int(rng.random() < 0.5)})
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    return folder / "m.csv"


def test_early_stopping_scores_validation_records_as_the_run_is_scored(tmp_path):
    """The validation AUC logged each epoch (what chooses the checkpoint) is the AUC of that epoch's checkpoint
    scored as cross-validation and predict score each record — its 10 s segments averaged, a 6 s record at its own
    length — not of the centre 10 s of a repeated row."""
    from dataclasses import replace

    from ecgnet.config import parse_config
    from ecgnet.data.collections import read_manifest
    from ecgnet.training.collection import fit_once
    from ecgnet.training.collection_scoring import predict

    collection = read_manifest(_mixed_lengths(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    assert collection.signal.own_lengths().tolist()[:3] == [600, 1000, 1000]
    assert collection._segments.count.tolist()[:3] == [0, 0, 3]
    val = np.arange(18, 30)
    config = parse_config({"name": "mixed", "seed": 0, "model": {"name": "time_resnet1d", "params": {"widths": [8, 8]}},
                           "training": {"epochs": 3, "batch_size": 6, "lr": 0.01, "threads": 1, "accelerator": "cpu",
                                        "patience": 5}})
    run_dir, model, data, info = fit_once(collection, {"train": np.arange(18), "val": val}, config,
                                          tmp_path / "runs", progress=False, n_boot=10)
    log = pd.read_csv(run_dir / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"]).set_index("epoch")
    assert len(log) == 3
    y = collection.y[val]
    scored = 0
    for name in ("best", "last"):
        checkpoint = torch.load(run_dir / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)
        model.load_state_dict({k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()})
        p = predict(model, collection, val, data.metadata_scaler, config)
        logged = log.loc[checkpoint["epoch"], "val_macro_auc"]
        assert masked_macro_auc(y, p) == pytest.approx(logged, abs=1e-6)
        centre = predict(model, replace(collection, _segments=None), val, data.metadata_scaler, config)
        scored += masked_macro_auc(y, centre) != pytest.approx(logged, abs=1e-6)  # what early stopping read before
    assert scored  # the centre 10 s of the rows would have scored otherwise
    assert info["best_val_macro_auc"] == pytest.approx(log["val_macro_auc"].max(), abs=1e-7)


# --- age and sex from the records' own files, where the manifest gives none -------------------------------------

STATED = {"f63": ("Age: 63", "Sex: Female"), "m95": ("Age: 95", "Sex: Male"), "a47": ("Age: 47",),
          "sexf": ("Sex: F",), "bare": (), "m70": ("Age: 70", "Sex: Male")}
EXPECTED = {"f63": (63, 1), "m95": (90, 0), "a47": (47, np.nan), "sexf": (np.nan, 1), "bare": (np.nan, np.nan),
            "m70": (70, 0)}  # as predict encodes a header's: an age over 89 is 90, sex 0 male / 1 female


def _stated_records(folder: Path) -> list[str]:
    """WFDB records whose headers state what :data:`STATED` says (``# Age: 63`` lines after the signal lines)."""
    from conftest import write_wfdb

    for i, (name, comments) in enumerate(STATED.items()):
        header, _ = write_wfdb(folder, name, seed=i)
        with header.open("a") as f:
            f.writelines(f"# {c}\n" for c in comments)
    return [f"{name}.hea" for name in STATED]


def _stated_manifest(folder: Path, columns: dict | None = None) -> Path:
    """A manifest of the :func:`_stated_records` (classes NORM and MI: a shipped model's; one patient each) with
    ``columns`` beside."""
    records = _stated_records(folder)
    n = len(records)
    table = pd.DataFrame({"record": records, "patient": [f"p{i}" for i in range(n)],
                          "NORM": [i % 2 for i in range(n)], "MI": [(i // 2) % 2 for i in range(n)], **(columns or {})})
    path = folder / ("with_columns.csv" if columns else "bare.csv")
    table.to_csv(path, index=False)
    return path


def _evaluate_fields(collection, i: int) -> dict:
    """What evaluate feeds a metadata model for record ``i`` (before encoding): the manifest's (evaluate's
    ``_metadata``) over the file's own (the reader's age and sex)."""
    from ecgnet.data.readers import read_ecg_any
    from ecgnet.evaluation.labelled import _metadata, record_paths

    record = read_ecg_any(record_paths(collection)[i], 100, resample=True)
    header = {k: v for k, v in (("age", record.age), ("sex", record.sex)) if v is not None}
    return {**header, **_metadata(collection, i)}


def test_empty_age_and_sex_are_taken_from_the_files_as_evaluate_takes_them(tmp_path):
    """A manifest without age/sex columns trained with both missing on every record while evaluate and predict fed
    the headers' values; now training's metadata are evaluate's, the manifest's own values winning."""
    from ecgnet.data.collections import cache, read_manifest
    from ecgnet.data.ptbxl import SEX_CODES

    bare = read_manifest(_stated_manifest(tmp_path))
    assert bare.metadata["age_missing"].eq(1).all() and bare.metadata["sex_missing"].eq(1).all()
    loaded = bare.load_signals(100, tmp_path / "cache", 1, progress=False)
    for i, name in enumerate(STATED):
        row, fields = loaded.metadata.iloc[i], _evaluate_fields(bare, i)
        np.testing.assert_equal((row["age"], row["sex"]), EXPECTED[name])
        assert row["age"] == min(fields.get("age", np.nan), 90) or "age" not in fields
        assert row["sex"] == SEX_CODES.get(fields.get("sex"), np.nan) or "sex" not in fields
        assert (row["age_missing"], row["sex_missing"]) == (float("age" not in fields), float("sex" not in fields))
        assert row["height_missing"] == row["weight_missing"] == 1
    assert loaded.info["metadata_from_files"] == {"age": 4, "sex": 4}
    index = json.loads(next((tmp_path / "cache").glob("manifest*[0-9a-f].json")).read_text())
    assert index["demographics"] == {"0": [63.0, "female"], "1": [95.0, "male"], "2": [47.0, None],
                                     "3": [None, "female"], "5": [70.0, "male"]}  # the reader's, as read
    with pytest.MonkeyPatch.context() as mp:  # a cache of the layout before the files' age and sex is not reused
        mp.setattr(cache, "LAYOUT", "repeat+segments+warnings+lengths")
        before = cache.cache_key([tmp_path / "f63.hea"], 100)
    assert cache.cache_key([tmp_path / "f63.hea"], 100) != before

    given = read_manifest(_stated_manifest(tmp_path, {"age": ["", "", "", "52", "", "50"],
                                                      "sex": ["", "", "", "", "", "female"]}))
    loaded = given.load_signals(100, tmp_path / "cache2", 2, progress=False)  # two processes: the same
    expected = {**EXPECTED, "sexf": (52, 1), "m70": (50, 1)}  # the manifest's own values win
    for i, name in enumerate(STATED):
        row, fields = loaded.metadata.iloc[i], _evaluate_fields(given, i)
        np.testing.assert_equal((row["age"], row["sex"]), expected[name])
        assert (row["age_missing"], row["sex_missing"]) == (float("age" not in fields), float("sex" not in fields))
    assert loaded.info["metadata_from_files"] == {"age": 3, "sex": 3}
    sub = loaded.subset([5, 0])  # the filled values follow their records
    np.testing.assert_equal(sub.metadata[["age", "sex"]].to_numpy(), [[50, 1], [63, 1]])


def test_a_loader_without_the_files_demographics_keeps_the_metadata(tmp_path):
    """PTB-XL's loader states no file demographics: its metadata (its database's) are kept as they are."""
    from ecgnet.data.collections.base import Collection
    from ecgnet.data.ptbxl import metadata_features

    meta = metadata_features([np.nan, 70.0], [np.nan, 0.0], [np.nan, 180.0], [np.nan, 80.0])
    collection = Collection(name="c", records=np.array(["a", "b"], dtype=object), classes=["X"],
                            y=np.zeros((2, 1), np.float32), patients=np.array(["a", "b"], dtype=object),
                            sources=np.array(["s", "s"], dtype=object), metadata=meta,
                            loader=lambda *_: (np.zeros((2, 12, 1000), np.float32), np.arange(2), {}, {}, None, {}))
    loaded = collection.load_signals(100)
    assert loaded.metadata is meta and "metadata_from_files" not in loaded.info


def test_a_metadata_model_sees_at_training_what_evaluate_feeds_it(tmp_path, monkeypatch):
    """The scaled metadata rows a manifest-trained (or fine-tuned) metadata model trains and is cross-validated on
    are those evaluate (and so predict) feed it for the same records: with the shipped model's scaler (fine-tuning
    keeps it) and with one fitted on the training rows (a run from a config stores it)."""
    from ecgnet.data.collections import read_manifest
    from ecgnet.data.collections.base import CollectionData
    from ecgnet.data.ptbxl import MetadataScaler
    from ecgnet.evaluation.labelled import predict_collection
    from ecgnet.inference.predictor import Predictor

    collection = read_manifest(_stated_manifest(tmp_path, {"age": ["", "", "", "", "", "50"]}))
    loaded = collection.load_signals(100, tmp_path / "cache", 1, progress=False)
    predictor = Predictor("intermediate_concat_weighted_bce")  # bundled; reads age, sex, height, weight
    assert predictor.uses_metadata
    fed = []

    def seen(signal, metadata):
        fed.append(np.asarray(metadata))
        return np.full(len(predictor.classes), 0.5, np.float32)

    monkeypatch.setattr(predictor, "predict_signal", seen)
    everything = {"train": np.arange(len(loaded)), "val": np.arange(len(loaded))}
    shipped = MetadataScaler(*(np.asarray(predictor.info["metadata_scaler"][k]) for k in ("mean", "std")))
    fitted = CollectionData(loaded, everything).metadata_scaler
    for scaler in (shipped, fitted):
        monkeypatch.setitem(predictor.info, "metadata_scaler", {"mean": scaler.mean.tolist(),
                                                                "std": scaler.std.tolist()})
        fed.clear()
        table, _ = predict_collection(predictor, collection, progress=False)
        assert (table["error"] == "").all() and len(fed) == len(collection)
        trained = CollectionData(loaded, everything, metadata_scaler=scaler).split("train").metadata
        np.testing.assert_allclose(trained, np.stack(fed), rtol=0, atol=1e-6)
    assert np.stack(fed)[:, 4:6].tolist()[:5] == [[0, 0], [0, 0], [0, 1], [1, 0], [1, 1]]  # age, sex missing


def test_a_manifest_run_trains_at_precision_bf16_true(tmp_path):
    """bf16-true: Lightning hands validation a bf16 batch; numpy has no bf16, so early stopping on a manifest of
    long and short records (and any validation's labels) failed with 'unsupported ScalarType BFloat16'."""
    from ecgnet.config import parse_config
    from ecgnet.data.collections import read_manifest
    from ecgnet.training.collection import fit_once

    collection = read_manifest(_mixed_lengths(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    config = parse_config({"name": "bf16", "seed": 0, "model": {"name": "time_resnet1d", "params": {"widths": [8, 8]}},
                           "training": {"epochs": 1, "batch_size": 6, "lr": 0.01, "threads": 1, "accelerator": "cpu",
                                        "patience": 5, "precision": "bf16-true"}})
    _, _, _, info = fit_once(collection, {"train": np.arange(18), "val": np.arange(18, 30)}, config,
                             tmp_path / "runs", progress=False, n_boot=10)
    assert 0.0 <= info["best_val_macro_auc"] <= 1.0


def test_records_shorter_than_the_models_window_are_refused_as_predict_refuses_them(tmp_path):
    """A config of 8 s crops: the cache keeps records from 2.5 s, so 6 s records were trained on and scored on their
    repeated rows, where predict refuses them ('6.0 s long; the model needs at least 8 s'). Refused, or with
    --skip-bad left out and listed (review)."""
    from ecgnet.config import parse_config
    from ecgnet.data.collections import read_manifest
    from ecgnet.errors import ECGNetError
    from ecgnet.training.collection import refuse_shorter_than_window

    collection = read_manifest(_mixed_lengths(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    config = parse_config({"name": "w8", "data": {"crop_seconds": 8}, "model": {"name": "time_resnet1d"}})
    with pytest.raises(ECGNetError, match=r"10 record\(s\) shorter than the model's 8 s window, which predict refuses "
                                          r"\(pass --skip-bad to leave them out\):\n.*m0.hea: 6.0 s long; the model "
                                          r"needs at least 8 s"):
        refuse_shorter_than_window(collection, config, False, print)
    said = []
    kept = refuse_shorter_than_window(collection, config, True, said.append)
    assert len(kept) == 20 and len(said) == 10 and all("6.0 s long" in s for s in said)
    assert [r for r, _ in kept.skipped[-10:]] == [str(collection.records[i]) for i in range(0, 30, 3)]
    five = parse_config({"name": "w5", "data": {"crop_seconds": 5}, "model": {"name": "time_resnet1d"}})
    assert refuse_shorter_than_window(collection, five, False, print) is collection  # 6 s fits a 5 s window


# --- whole-record training on records under 10 s: batches of one length, never a repeated row ---------------------

def _whole_record(name: str, **training):
    """A tiny config of whole records (``crop_seconds: null``), as a user writes one for a length-agnostic model."""
    from ecgnet.config import parse_config

    return parse_config({"name": name, "seed": 0, "data": {"crop_seconds": None},
                         "model": {"name": "time_resnet1d", "params": {"widths": [8, 8]}},
                         "training": {"epochs": 2, "batch_size": 6, "lr": 0.01, "threads": 1, "accelerator": "cpu",
                                      "patience": 5, **training}})


def _within_the_record(x: np.ndarray, own: np.ndarray) -> bool:
    """Whether ``x`` (leads, n) is ``own`` (leads, samples: the record as read) at some offset, without wrapping."""
    n = x.shape[-1]
    starts = np.flatnonzero(np.abs(own[0, :own.shape[-1] - n + 1] - x[0, 0]) < 1e-5)
    return any(np.allclose(own[:, s:s + n], x, atol=1e-5) for s in starts)


def test_whole_record_training_never_repeats_a_short_record(tmp_path, monkeypatch):
    """A whole-record config (crop_seconds null) trained a 6 s record on its cache row — the record repeated to 10 s,
    with a join — while predict scores it at its own 6 s. Now each batch holds records of one length group, each cut
    to the batch's shortest own length: every training row is its record's own samples at some offset."""
    from ecgnet.data.collections import read_manifest
    from ecgnet.data.records import read_ecg
    from ecgnet.training import length_batches
    from ecgnet.training.collection import fit_once

    folder = tmp_path
    collection = read_manifest(_mixed_lengths(folder)).load_signals(100, tmp_path / "cache", 1, progress=False)
    seen, cut = [], length_batches.CutToShortest.__getitem__

    def kept(self, rows):
        batch = cut(self, rows)
        seen.append((list(rows), batch["signal"].numpy().copy()))
        return batch

    monkeypatch.setattr(length_batches.CutToShortest, "__getitem__", kept)
    run_dir, _, _, info = fit_once(collection, {"train": np.arange(18), "val": np.arange(18, 30)},
                                   _whole_record("whole"), tmp_path / "runs", progress=False, n_boot=10)
    # 18 records (six of 6 s) in batches of 6: per epoch one batch of the 6 s records, two of 10 s and 25 s ones
    assert sorted(x.shape[-1] for _, x in seen) == [600] * 2 + [1000] * 4
    own = {i: read_ecg(folder / f"m{i}.hea", 100, resample=True).signal for i in range(18)}
    for rows, x in seen:
        assert x.shape[-1] == min(own[i].shape[-1] for i in rows)
        for i, signal in zip(rows, x):
            assert _within_the_record(signal, own[i]), f"m{i}: not its own samples"
    log = pd.read_csv(run_dir / "logs" / "metrics.csv")
    assert len(log["train_loss"].dropna()) == 2 and np.isfinite(log["train_loss"].dropna()).all()
    assert 0.0 <= info["best_val_macro_auc"] <= 1.0


def test_whole_record_training_on_records_of_10_s_or_more_keeps_the_plain_loader(tmp_path):
    """PTB-XL, a manifest of 10 s (and longer) records and any config of crops train through the plain loader,
    unchanged (same batches, same random draws); only whole-record training on shorter records is grouped."""
    from ecgnet.config import parse_config
    from ecgnet.data.collections import read_manifest
    from ecgnet.data.dataset import CropDataset, Split
    from ecgnet.training.length_batches import length_grouped_loader

    def train_set(collection, draw_segments=True):
        split = Split(collection.records, collection.signal, np.zeros((len(collection), 8), np.float32), collection.y)
        return CropDataset(split, None, draw_segments)

    mixed = read_manifest(_mixed_lengths(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    ten = read_manifest(write_learnable(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    whole, crops = _whole_record("whole"), parse_config({"name": "crops", "model": {"name": "time_resnet1d"}})
    assert length_grouped_loader(train_set(ten), None, whole, True) is None  # every record 10 s
    assert length_grouped_loader(train_set(mixed.subset(np.arange(30) % 3 > 0)), None, whole, True) is None  # 10, 25 s
    assert length_grouped_loader(train_set(mixed), None, crops, True) is None  # crops stay within the record already
    assert length_grouped_loader(train_set(mixed, draw_segments=False), None, whole, True) is None  # validation
    ptbxl_like = Split(np.arange(4), np.zeros((4, 12, 1000), np.float32), np.zeros((4, 8), np.float32),
                       np.zeros((4, 2), np.float32))
    assert length_grouped_loader(CropDataset(ptbxl_like, None, True), None, whole, True) is None
    loader = length_grouped_loader(train_set(mixed), None, whole, True)
    assert loader is not None and len(loader) == 30 // 6  # as many batches as the plain loader's


def test_length_batches_group_the_epochs_draws_as_the_plain_loader_batches_them():
    """Records of one length are batched exactly as drawn (the plain shuffle's batches); of several lengths, each
    batch spans one band as far as the draws allow, the partial batch is random, and two processes seeded alike
    draw the same batches (a distributed run shards them)."""
    from torch.utils.data import RandomSampler

    from ecgnet.training.length_batches import LengthBatches, group_by_length
    from ecgnet.training.sampling import oversampler

    g = torch.Generator().manual_seed(3)
    drawn = torch.randperm(22, generator=g).numpy()
    same = group_by_length(drawn, np.full(22, 1000), 4, True, 50, g)
    assert sorted(map(tuple, same)) == sorted(tuple(drawn[2 + k:6 + k]) for k in range(0, 20, 4))  # 2 left out
    lengths = np.array([300, 600, 1000, 1000] * 6)
    for _ in range(5):
        batches = group_by_length(torch.randperm(24, generator=g).numpy(), lengths, 6, False, 50, g)
        assert [len(np.unique(lengths[b])) for b in batches].count(1) == 4
        assert sorted(np.concatenate(batches).tolist()) == list(range(24))  # each drawn record once
    left = {tuple(sorted(group_by_length(torch.randperm(23, generator=g).numpy(), np.arange(23) * 50, 4, False, 50,
                                         g)[0])) for _ in range(20)}
    assert len(left) > 1  # not always the same records together

    def epochs(seed, records=None):
        generator = torch.Generator().manual_seed(seed)
        records = records or RandomSampler(range(24), num_samples=30, generator=generator)
        sampler = LengthBatches(records, lengths, 8, True, 50, getattr(records, "generator", generator))
        return [[list(b) for b in sampler] for _ in range(2)], len(sampler)

    (first, second), n = epochs(0)
    assert n == 3 and all(len(b) == 8 for b in first) and first != second  # min_epoch_crops: 30 draws, 3 batches
    assert epochs(0)[0] == [first, second] and epochs(1)[0] != [first, second]
    y = np.eye(2, dtype=np.float32)[np.arange(24) % 2]
    over, n = epochs(0, oversampler(y, seed=0))
    assert n == 3 and epochs(0, oversampler(y, seed=0))[0] == over  # oversampling's draws, its own generator


def test_a_resumed_whole_record_run_draws_the_same_length_batches(tmp_path, monkeypatch):
    """The length batches draw from a generator of their own: a run cut off after its first epoch and resumed
    (its checkpoint restores that generator) ends with the very weights of the uninterrupted run."""
    import lightning as L

    from ecgnet.data.collections import read_manifest
    from ecgnet.training import fit
    from ecgnet.training.collection import fit_once

    collection = read_manifest(_mixed_lengths(tmp_path)).load_signals(100, tmp_path / "cache", 1, progress=False)
    split, config = {"train": np.arange(18), "val": np.arange(18, 30)}, _whole_record("cut")

    class Killed(Exception):
        pass

    class KillAtSecondEpoch(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:  # epoch 1's last.ckpt is written
                raise Killed

    def weights(run_dir):
        state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        return [state["state_dict"][k] for k in sorted(state["state_dict"])]

    whole, *_ = fit_once(collection, split, config, tmp_path / "whole", progress=False, n_boot=5)
    shown = fit.progress_callbacks
    with monkeypatch.context() as mp, pytest.raises(Killed):
        mp.setattr(fit, "progress_callbacks", lambda p: ([*shown(p)[0], KillAtSecondEpoch()], False))
        fit_once(collection, split, config, tmp_path / "cut", progress=False, n_boot=5)
    resumed, *_ = fit_once(collection, split, config, tmp_path / "cut", progress=False, n_boot=5, resume=True)
    assert len(pd.read_csv(resumed / "logs" / "metrics.csv").dropna(subset=["train_loss"])) == 2
    assert all(torch.equal(a, b) for a, b in zip(weights(whole), weights(resumed)))


def test_a_resumed_cross_validation_says_which_folds_it_reused(tmp_path, monkeypatch):
    """`train … --folds 3 --resume` printed 'cross-validation 2/3 (fold 2)' and no word of the folds taken from the
    earlier attempt (a user audit): each reused fold, and the final model, says so in one line."""
    import shutil

    from ecgnet.data.collections import read_manifest
    from ecgnet.training.collection import train_collection

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    collection = read_manifest(_mixed_lengths(tmp_path, 18))
    config = _whole_record("cv", epochs=1)

    def train(resume: bool) -> list[str]:
        said: list[str] = []
        train_collection(collection, config, tmp_path / "runs", folds=2, cache_dir=tmp_path / "cache", workers=1,
                         progress=False, n_boot=5, resume=resume, log=said.append)
        return [line for line in said if "reused" in line]

    assert train(False) == []
    shutil.rmtree(tmp_path / "runs" / "cv" / "cv" / "fold_2")  # cut off in fold 2: the final model not trained
    (tmp_path / "runs" / "cv" / "run.json").unlink()
    assert train(True) == ["cross-validation 1/2 (fold 1): finished before, reused"]
    assert train(True) == ["cross-validation 1/2 (fold 1): finished before, reused",
                           "cross-validation 2/2 (fold 2): finished before, reused",
                           "final model: finished before, reused"]


# --- a manifest run trained once: its rows scored as cross-validation scores its folds, one schema, one report -----

def _once(tmp_path: Path, name: str, folds: bool = True, blank: bool = False, n: int = 72, val_y: bool = True):
    """Train ``name`` once (no --folds) from a tiny config on ``write_learnable``'s records (two per patient): with a
    fold column giving 12 patients (24 records) to test and 8 (16) to validate, or ECGNet's own split; ``blank``:
    every fifth Y label left blank. Returns (run directory, the manifest's table, what the command printed)."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    folder = tmp_path / name
    folder.mkdir()
    manifest = write_learnable(folder, n)
    table = pd.read_csv(manifest)
    if folds:
        patient = table["patient"].str[1:].astype(int)
        table["fold"] = np.where(patient < 12, 3, np.where(patient < 20, 2, 1))
    if blank:
        table["Y"] = table["Y"].astype("Int64").astype(object)
        table.loc[::5, "Y"] = ""
    if not val_y:  # no known Y label among the validation rows (fold 2)
        table["Y"] = table["Y"].astype("Int64").astype(object)
        table.loc[table["fold"] == 2, "Y"] = ""
    table.to_csv(manifest, index=False)
    (folder / "c.yaml").write_text(CONFIG.format(name=name, extra="").replace("epochs: 2", "epochs: 1"))
    result = CliRunner().invoke(app, ["train", "-c", str(folder / "c.yaml"), "--manifest", str(manifest),
                                      "--runs-dir", str(tmp_path / "runs"), "--n-boot", "50", "--no-progress"])
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / name, pd.read_csv(manifest), result.output


def _rescored(run: Path, table: pd.DataFrame, split: str) -> dict:
    """collection_scoring.score on the run's saved predictions of ``split``, the manifest's labels (blank: NaN) and
    patients, with the thresholds of val/metrics.json."""
    from ecgnet.training.collection_scoring import score

    predictions = pd.read_csv(run / split / "predictions.csv")
    rows = table.set_index("record").loc[predictions["ecg_id"]]
    y = rows[["X", "Y"]].to_numpy(float)
    val = json.loads((run / "val" / "metrics.json").read_text())
    thresholds = {c: e["threshold"] for c, e in val["per_class"].items() if "threshold" in e}
    return score(y, predictions[["X", "Y"]].to_numpy(), ["X", "Y"], thresholds, 50, 0, rows["patient"].to_numpy())


def test_a_manifest_run_trained_once_scores_its_rows_as_cross_validation_does_blank_labels_or_not(tmp_path,
                                                                                                   monkeypatch):
    """Trained once on a manifest, a run's val/test scores came from the PTB-XL benchmark's evaluate (records
    resampled although patients had two, PTB-XL's "Test fold (10)" in the report) when every label was known,
    and with one blank label from the collection scoring with no report at all and another metrics.json (a
    wheel-user audit): now both are cross-validation's scoring, one schema, and a report worded for rows."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    runs = {blank: _once(tmp_path, f"once_{int(blank)}", blank=blank) for blank in (False, True)}
    keys = {}
    for blank, (run, table, _) in runs.items():
        info = json.loads((run / "run.json").read_text())
        assert info["split_records"] == {"train": 32, "val": 16, "test": 24}
        for split in ("val", "test"):
            m = json.loads((run / split / "metrics.json").read_text())
            again = _rescored(run, table, split)
            assert m["split"] == split and m["n_records"] == again["n_records"]
            assert m["macro_auc"]["resampled"] == "patients"  # two records a patient: patients resampled
            for got, want in [(m["macro_auc"], again["macro_auc"])] + [(m["per_class"][c], again["per_class"][c])
                                                                       for c in ("X", "Y")]:
                assert {k: got[k] for k in ("low", "high")} == pytest.approx({k: want[k] for k in ("low", "high")})
            assert (m["per_class"]["Y"]["n"] < m["n_records"]) == blank  # unknown labels left out of Y's scoring
            keys.setdefault(split, []).append((sorted(m), {c: sorted(e) for c, e in m["per_class"].items()}))
        assert json.loads((run / "test" / "metrics.json").read_text())["macro_auc"]["low"] is not None  # 12 patients
        page = (run / "report.html").read_text()
        assert "Test rows (24 records)" in page and "Validation rows (16 records)" in page
        assert "Test fold" not in page and "Validation fold" not in page
        assert "the manifest&#x27;s fold column: fold 3 test, fold 2 validation" in page
        assert "Test rows (24 records): per class" in (run / "report.md").read_text()
        for figure in ("roc.png", "per_class.png", "calibration.png"):
            assert (run / "figures" / figure).is_file()
        assert list(pd.read_csv(run / "test" / "predictions.csv").columns) == ["ecg_id", "X", "Y"]
    assert keys["val"][0] == keys["val"][1] and keys["test"][0] == keys["test"][1]  # one schema, blank or not


def test_test_rows_under_the_minimum_get_no_interval_and_the_report_says_what_the_terminal_warned(tmp_path,
                                                                                                   monkeypatch):
    """45 records trained once printed 'val: 0.857 [0.759, 0.943]' from 9 records, and the report carried none of
    the warnings the terminal printed (a wheel-user audit): under 10 records (patients), no interval — said in the
    report — and every warning printed is in the report."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    run, table, printed = _once(tmp_path, "small", folds=False, n=36)
    info = json.loads((run / "run.json").read_text())
    assert info["split"].startswith("10 patient-grouped, multilabel-stratified folds (seed 0)")
    test = json.loads((run / "test" / "metrics.json").read_text())
    assert test["n_records"] < 10 and test["macro_auc"]["value"] is not None and test["macro_auc"]["low"] is None
    assert f"{test['n_records'] // 2} patients, fewer than the 10 an interval needs" == test["no_interval"]
    assert _rescored(run, table, "test")["macro_auc"]["low"] is None
    report = (run / "report.md").read_text()
    assert f"Test rows ({test['n_records']} records)" in report and "| No interval |" in report
    assert "10 patient-grouped, multilabel-stratified folds (seed 0)" in report  # the split, as run.json says it
    from ecgnet.training.once_report import split_warnings

    said, report = " ".join(printed.split()), " ".join(report.split())
    for split, rows in (("val", "validation rows"), ("test", "test rows")):
        warnings = split_warnings(split, json.loads((run / split / "metrics.json").read_text()))
        assert said.count(f"warning: {split}: ") == len(warnings)
        for w in warnings:
            assert " ".join(f"warning: {split}: {w}".split()) in said and " ".join(f"{rows}: {w}.".split()) in report
    assert test["warnings"] and "fewer than 10 positives or negatives" in test["warnings"][0]


def test_a_cross_validation_cut_off_before_its_cv_files_is_left_incomplete(tmp_path, monkeypatch):
    """The final model's training marked the run complete before cv/predictions.csv and the thresholds were
    written: a retraining cut off there (during --forgetting, say) left a 'finished' run with the earlier
    training's cv/, which calibrate --from-cv then fitted on (a review). It stays INCOMPLETE until they are."""
    from ecgnet.data.collections import read_manifest
    from ecgnet.training import collection as training

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    collection = read_manifest(_mixed_lengths(tmp_path, 18))
    config = _whole_record("cv", epochs=1)

    def train(**kw):
        return training.train_collection(collection, config, tmp_path / "runs", folds=2, cache_dir=tmp_path / "cache",
                                         workers=1, progress=False, n_boot=5, log=lambda _: None, **kw)

    def cut_off(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(training, "write_cv", cut_off)
        with pytest.raises(KeyboardInterrupt):
            train()
    run = tmp_path / "runs" / "cv"
    assert (run / "INCOMPLETE").is_file() and not (run / "cv" / "predictions.csv").exists()
    train(resume=True)
    assert not (run / "INCOMPLETE").exists() and (run / "cv" / "predictions.csv").is_file()


def test_a_class_the_validation_rows_cannot_threshold_is_said(tmp_path, monkeypatch):
    """Validation rows without a known positive and negative of Y gave Y no threshold — predict then makes no call
    for it on every record — and nothing said so at training time (a review)."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    run, _, printed = _once(tmp_path, "noy", val_y=False)
    val = json.loads((run / "val" / "metrics.json").read_text())
    said = [w for w in val["warnings"] if w.startswith("Y: no threshold")]
    assert said and "predict makes no call for it" in said[0] and "X: no threshold" not in " ".join(val["warnings"])
    assert "Y: no threshold" in " ".join(printed.split()) and "Y: no threshold" in (run / "report.md").read_text()
