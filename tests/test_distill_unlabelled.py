"""Distillation from unlabelled records (``ecgnet distill --unlabelled M.csv``, distill/unlabelled.py): an
unlabelled manifest needs only its record column; its records join the training crops with unknown labels
and the teacher's own probabilities, computed once and cached; PTB-XL's selection and test records are
refused; a training with them runs with a finite, masked loss."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from conftest import write_wfdb
from ecgnet.config import parse_config
from ecgnet.data.collections.manifest import read_manifest
from ecgnet.data.collections.cache import read_signal
from ecgnet.distill import teacher as teacher_module
from ecgnet.distill.data import attach
from ecgnet.distill.teacher import cache_path, member_window_probs
from ecgnet.errors import ECGNetError
from ecgnet.runs.directory import load_run
from ecgnet.training.losses import MaskedLoss, make_loss

N = 4


def _manifest(tmp_path, names=None, fs=500):
    """An unlabelled manifest of synthetic 500 Hz WFDB records (a label column too: it is ignored)."""
    names = names or [f"u{i}" for i in range(N)]
    rows = []
    for i, name in enumerate(names):
        write_wfdb(tmp_path / "ecgs", name, fs=fs, seed=i)
        rows.append({"record": f"ecgs/{name}.hea", "age": str(40 + i) if i % 2 else "", "NORM": ""})
    path = tmp_path / "unlabelled.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["record", "age", "NORM"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_an_unlabelled_manifest_needs_only_records(tmp_path):
    path = _manifest(tmp_path)
    collection = read_manifest(path, labelled=False)
    assert collection.classes == [] and collection.y.shape == (N, 0)
    assert list(collection.records) == [f"ecgs/u{i}.hea" for i in range(N)]
    with pytest.raises(ECGNetError, match="no label"):  # read as labelled, its empty NORM column is an error
        read_manifest(path)
    (tmp_path / "missing.csv").write_text("record\necgs/u0.hea\necgs/nowhere.hea\n")
    with pytest.raises(ECGNetError, match=r"missing.csv line 3 .*no such file"):
        read_manifest(tmp_path / "missing.csv", labelled=False)


def test_config_needs_a_teacher_and_no_oversampling():
    base = {"name": "s", "model": {"name": "time_resnet1d"}}
    with pytest.raises(ECGNetError, match="needs distill_teacher"):
        parse_config({**base, "training": {"distill_unlabelled": "u.csv"}}, source="t")
    with pytest.raises(ECGNetError, match="oversample"):
        parse_config({**base, "training": {"distill_unlabelled": "u.csv", "distill_teacher": "runs/x",
                                           "sampler": "oversample"}}, source="t")


def _student(untrained_run, manifest, **training):
    return parse_config({"name": "student", "seed": 0, "data": {"task": "superdiagnostic"},
                         "model": {"name": "time_resnet1d", "params": {"widths": [16, 32]}},
                         "training": {"epochs": 1, "batch_size": 16, "patience": 1, "distill_teacher": str(untrained_run),
                                      "distill_unlabelled": str(manifest), "distill_weight": 0.5, **training}},
                        source="t")


def _labelled_targets(untrained_run, cache, split):
    """The teacher's (made-up) soft targets of the labelled records, where resolve() looks for them."""
    folder = cache_path(untrained_run, cache)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", ecg_ids=split.ecg_ids, probs=np.full((len(split.ecg_ids), 1, 7, 5), 0.3, np.float32),
             starts=np.arange(7) * 125, window=np.asarray(250), aggregates=np.asarray(["max"]),
             method=np.asarray("average"), weight=np.ones((5, 1), np.float32), bias=np.zeros(5, np.float32),
             classes=np.asarray(["CD", "HYP", "MI", "NORM", "STTC"]), weights_sha256=np.asarray("0" * 64))


@pytest.mark.slow
def test_unlabelled_records_learn_the_teachers_probabilities_only(untrained_run, ptbxl_superdiagnostic, tmp_path,
                                                                  monkeypatch):
    data, cache = ptbxl_superdiagnostic, tmp_path / "cache"
    manifest = _manifest(tmp_path)
    train = data.split("train", 32, 0)
    _labelled_targets(untrained_run, cache, train)
    config = _student(untrained_run, manifest)
    dataset, loss = attach(config, train, None, make_loss("bce", train.y), cache_dir=cache, data=data, progress=False)
    assert len(dataset) == 32 + N
    assert isinstance(loss.hard, MaskedLoss)  # unknown labels are masked, not NaN losses

    # an unlabelled record: every label unknown, its soft target the teacher's probability on that record,
    # recomputed here from the record file and the run (metadata scaled as PTB-XL's training folds')
    model, _, _ = load_run(untrained_run)
    for i in (0, 1):
        y = dataset[32 + i]["y"].numpy()
        assert np.isnan(y[:5]).all()
        x = torch.as_tensor(read_signal(tmp_path / "ecgs" / f"u{i}.hea", 100))[None]
        raw = read_manifest(manifest, labelled=False).metadata.iloc[[i]]
        meta = torch.as_tensor(data.metadata_scaler.transform(raw))
        expected = member_window_probs(model, x, meta, [0], 250)[0, 0].numpy()  # the crop at 0: window 0
        np.testing.assert_allclose(y[5:], expected, atol=1e-5)
    assert np.isfinite(dataset[0]["y"].numpy()).all()  # a labelled record keeps its labels

    # the loss of a batch mixing both kinds is finite and has gradients
    batch = torch.stack([dataset[i]["y"] for i in (0, 1, 32, 33)])
    logits = torch.zeros(4, 5, requires_grad=True)
    value = loss(logits, batch)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()

    # cached: a second attach computes nothing
    files = list(cache_path(untrained_run, cache).glob("unlabelled_manifest100_*.npz"))
    assert len(files) == 1 and len(files[0].stem) > len("unlabelled_manifest100_") + 8
    monkeypatch.setattr(teacher_module, "compute_split", lambda *a, **k: pytest.fail("recomputed"))
    again, _ = attach(config, train, None, make_loss("bce", train.y), cache_dir=cache, data=data, progress=False)
    np.testing.assert_array_equal(again[32]["y"].numpy()[5:], dataset[32]["y"].numpy()[5:])


@pytest.mark.slow
def test_ptbxl_selection_and_test_records_are_refused(untrained_run, ptbxl_superdiagnostic, tmp_path):
    data, cache = ptbxl_superdiagnostic, tmp_path / "cache"
    test_id = int(data.split("test").ecg_ids[0])
    manifest = _manifest(tmp_path, names=["u0", f"{test_id:05d}_lr"], fs=100)
    train = data.split("train", 16, 0)
    _labelled_targets(untrained_run, cache, train)
    with pytest.raises(ECGNetError, match=rf"unlabelled.csv: 1 record\(s\) are PTB-XL records of fold 9 or 10 .*{test_id:05d}_lr"):
        attach(_student(untrained_run, manifest), train, None, make_loss("bce", train.y), cache_dir=cache, data=data,
               progress=False)


@pytest.mark.slow
def test_a_student_trains_with_unlabelled_records(untrained_run, ptbxl_superdiagnostic, tmp_path, monkeypatch):
    from ecgnet.models import build_model
    from ecgnet.training.fit import fit_lightning

    data, cache = ptbxl_superdiagnostic, tmp_path / "cache"
    manifest = _manifest(tmp_path)
    train, val = data.split("train", 64, 0, in_memory=True), data.split("val", 64, 0, in_memory=True)
    _labelled_targets(untrained_run, cache, train)
    monkeypatch.setenv("ECGNET_CACHE", str(cache))  # where fit_lightning's attach looks for soft targets
    monkeypatch.chdir(tmp_path)
    config = _student(untrained_run, manifest)
    stats = fit_lightning(build_model("time_resnet1d", 5, widths=[16, 32]), config, train, val, tmp_path / "run",
                          False, False, data=data)
    assert stats["unlabelled_records"] == N
    assert np.isfinite(stats["best_val_macro_auc"])


def test_cli_names_a_missing_unlabelled_manifest(tmp_path, monkeypatch, untrained_run):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "ptbxl"  # a folder that passes the data check (never read): no PTB-XL needed here
    data.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (data / name).touch()
    monkeypatch.setenv("ECGNET_DATA", str(data))
    student = tmp_path / "student.yaml"
    student.write_text("name: s\nmodel: {name: time_resnet1d}\n")
    result = CliRunner().invoke(app, ["distill", "--teacher", str(untrained_run), "--student", str(student),
                                      "--unlabelled", "nowhere.csv", "--no-progress"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.strip().startswith("error: nowhere.csv: no such manifest (--unlabelled)"), result.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_unlabelled_records_under_10_s_are_left_out_and_said(tmp_path):
    """A record under 10 s fills its cache row by repeating itself: the teacher's targets and the student's crops
    were drawn across that join (a review of whole-record training); they are left out, in one warning."""
    from ecgnet.data.ptbxl import MetadataScaler
    from ecgnet.distill import unlabelled

    path = _manifest(tmp_path)
    write_wfdb(tmp_path / "ecgs", "short", fs=500, samples=3000, seed=9)  # 6 s
    path.write_text(path.read_text() + "ecgs/short.hea,,\n")
    scaler = MetadataScaler(np.zeros(4), np.ones(4))
    with pytest.warns(UserWarning, match=r"1 of 5 unlabelled records are under 10 s \(e.g. ecgs/short.hea\) and are "
                                         r"left out"):
        split, _ = unlabelled.read(path, 100, 5, scaler, tmp_path / "cache", progress=False)
    assert list(split.ecg_ids) == [f"ecgs/u{i}.hea" for i in range(N)] and split.signal.shape[0] == N
