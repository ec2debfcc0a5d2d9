"""Cross-validation splits: leave-one-source-out puts no source in both training and test, patients are
never split (held-out fold, inner validation), K folds cover every record once; scoring tolerates
classes a small fold lacks; a manifest's fold column is used as given."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from ecgnet.data.collections.base import Collection
from ecgnet.data.ptbxl import metadata_features
from ecgnet.errors import ECGNetError
from ecgnet.training.collection import cv_folds, cv_splits, once_assignment, score
from ecgnet.training.collection_scoring import youden_thresholds


def collection(n: int = 120, seed: int = 0) -> Collection:
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, 50, n).astype(str)
    source_of_patient = {p: f"site{int(p) % 4}" for p in set(patients)}  # a patient belongs to one site
    y = (rng.random((n, 3)) < [0.4, 0.2, 0.1]).astype(np.float32)
    nan = np.full(n, np.nan)
    return Collection("synthetic", np.array([f"r{i}" for i in range(n)], dtype=object), ["A", "B", "C"], y,
                      patients.astype(object), np.array([source_of_patient[p] for p in patients], dtype=object),
                      metadata_features(nan, nan, nan, nan))


def test_leave_one_source_out_splits():
    c = collection()
    fold_of, names = cv_folds(c, None, "source", seed=0)
    assert sorted(names.values()) == ["site0", "site1", "site2", "site3"]
    seen = []
    for f, name, train, val, test in cv_splits(c, fold_of, names, 0.2, 0):
        assert set(c.sources[test]) == {name}
        assert name not in set(c.sources[train]) | set(c.sources[val])  # no source in both
        assert not set(c.patients[test]) & (set(c.patients[train]) | set(c.patients[val]))
        assert not set(c.patients[train]) & set(c.patients[val])  # the inner split is grouped too
        assert len(train) + len(val) + len(test) == len(c)
        seen += test.tolist()
    assert sorted(seen) == list(range(len(c)))  # every record held out exactly once


def test_k_fold_splits_group_patients_and_cover_all():
    c = collection()
    fold_of, names = cv_folds(c, 5, None, seed=0)
    assert len(names) == 5
    seen = []
    for _, _, train, val, test in cv_splits(c, fold_of, names, 0.2, 0):
        assert not set(c.patients[test]) & set(c.patients[np.r_[train, val]])
        seen += test.tolist()
    assert sorted(seen) == list(range(len(c)))


def test_learning_curve_subsamples_training_only():
    c = collection()
    fold_of, names = cv_folds(c, 4, None, seed=0)
    for _, _, train, val, test in cv_splits(c, fold_of, names, 0.2, 0, train_records=30):
        assert len(train) + len(val) == 30 and len(test) == (fold_of == _fold(fold_of, test)).sum()


def _fold(fold_of, test):
    return fold_of[test[0]]


def test_fold_column_is_used_and_must_match():
    c = collection()
    c = replace(c, folds=c.patients.astype(int) % 3 + 1)  # each patient in one fold
    fold_of, names = cv_folds(c, None, None)
    np.testing.assert_array_equal(fold_of, c.folds)
    with pytest.raises(ECGNetError, match="--folds 5: the manifest's fold column has 3 folds"):
        cv_folds(c, 5, None)
    assignment, how = once_assignment(c)
    assert set(c.folds[assignment["test"]]) == {3} and set(c.folds[assignment["val"]]) == {2}
    with pytest.raises(ECGNetError, match="--leave-out takes 'source'"):
        cv_folds(c, None, "patient")


def test_a_fold_column_that_splits_a_patient_is_refused_by_cross_validation_and_training_once():
    """A user's fold column with one patient in folds 1 and 2 trained and reported 'patients never split across
    folds' (found in a user-workflow audit): the held-out records of a patient the model trained on."""
    c = collection()
    patients, folds = c.patients.copy(), c.patients.astype(int) % 3 + 1
    patients[1] = patients[0]  # the patient's record 1 in another fold than record 0
    folds[1] = folds[0] % 3 + 1
    c = replace(c, folds=folds, patients=patients, info={"manifest": "m.csv"})
    for run in (lambda: cv_folds(c, None, None), lambda: once_assignment(c)):
        with pytest.raises(ECGNetError, match=rf"m.csv: the fold column puts 1 patient\(s\) in more than one "
                                              rf"fold: '{patients[0]}' \(folds \d, \d\)"):
            run()


def test_folds_and_leave_out_together_are_refused_before_anything_is_read(tmp_path):
    from ecgnet.training.collection_command import train_command

    with pytest.raises(ECGNetError, match="two kinds of cross-validation: give one"):
        train_command(None, [], tmp_path / "absent.csv", None, False, "long_time", None, 2, "source")


def test_leave_one_source_out_refuses_a_patient_in_two_sources():
    c = collection()
    sources = c.sources.copy()
    first = np.flatnonzero(c.patients == c.patients[0])
    sources[first[0]] = "elsewhere"
    if len(first) == 1:  # give the patient a second record in another source
        sources[1], c.patients[1] = "elsewhere", c.patients[0]
    with pytest.raises(ECGNetError, match="has records in sources"):
        cv_folds(replace(c, sources=sources), None, "source")


def test_score_tolerates_unscorable_and_unknown_labels():
    rng = np.random.default_rng(1)
    y = np.stack([rng.random(60) < 0.5, np.zeros(60), rng.random(60) < 0.3], 1).astype(float)
    y[:10, 2] = np.nan
    p = np.clip(y + rng.normal(0, 0.6, y.shape), 0, 1)
    p = np.nan_to_num(p, nan=0.5)
    out = score(y, p, ["A", "B", "C"], youden_thresholds(y, p, ["A", "B", "C"]), n_boot=50)
    assert out["classes_scored"] == ["A", "C"] and out["per_class"]["B"]["auc"] is None
    from sklearn.metrics import roc_auc_score

    known = ~np.isnan(y[:, 2])
    assert out["per_class"]["C"]["auc"] == pytest.approx(roc_auc_score(y[known, 2], p[known, 2]))
    assert out["per_class"]["C"]["n"] == 50 and "balanced_accuracy" in out["per_class"]["A"]
    # unknown labels among the scored classes: the masked bootstrap's interval, as evaluate --manifest gives
    assert out["macro_auc"]["low"] < out["macro_auc"]["value"] < out["macro_auc"]["high"]


def test_a_validation_set_that_cannot_choose_an_epoch_is_said_to_be_blind():
    from ecgnet.training.collection import warn_blind_validation

    said = []
    warn_blind_validation(np.array([[1.0, np.nan], [1.0, 0.0]]), said.append)  # no class with both
    assert len(said) == 1 and "cannot choose an epoch" in said[0] and "2 validation records" in said[0]
    warn_blind_validation(np.array([[1.0, 0.0], [0.0, 0.0]]), said.append)  # A has both: fine
    assert len(said) == 1


@pytest.mark.parametrize("args, message", [
    (["--folds", "3"], "--folds 3: PTB-XL comes in its own 10 folds"),
    (["--leave-out", "source"], "--leave-out source: PTB-XL is one source")])
def test_cross_validation_options_on_ptbxl_are_refused_before_its_signals_are_cached(tmp_path, monkeypatch, args,
                                                                                    message):
    """`train -c C --folds 3` without a manifest cached all of PTB-XL (1 GB, ~2 min), then spoke of 'the
    manifest's fold column' (found in a research-flow audit)."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    import ecgnet.data.collections as collections

    monkeypatch.setattr(collections, "ptbxl_collection", lambda *a, **k: pytest.fail("PTB-XL was read"))
    config = tmp_path / "c.yaml"
    config.write_text("name: c\nmodel: {name: time_resnet1d}\n")
    result = CliRunner().invoke(app, ["train", "-c", str(config), *args, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output, result.output


def test_one_fold_is_refused_as_too_few_even_with_a_fold_column():
    from ecgnet.training.collection import cv_folds

    collection = SimpleNamespace(folds=np.array([1, 2, 3, 1, 2, 3]), info={"manifest": "m.csv"})
    with pytest.raises(ECGNetError, match="--folds 1: cross-validation needs at least 2 folds"):
        cv_folds(collection, 1, None)


def test_a_collection_with_nothing_to_learn_is_refused_and_a_one_sided_class_is_warned():
    from ecgnet.training.collection import check_learnable

    def collection(y):
        return SimpleNamespace(name="m", classes=["NORM", "MI"], y=np.array(y, dtype=np.float32))

    lines = []
    with pytest.raises(ECGNetError, match="nothing to learn — NORM is positive in all 3 labelled records; MI is "
                                          "negative in all 2"):
        check_learnable(collection([[1, 0], [1, 0], [1, np.nan]]), lines.append)
    check_learnable(collection([[1, 0], [0, 0], [1, 1]]), lines.append)  # both sides for each: silent
    check_learnable(collection([[1, 0], [0, 0], [1, 0]]), lines.append)
    assert lines == ["warning: MI is negative in all 3 labelled records: it cannot be learned or scored"]


@pytest.mark.parametrize("folds, leave_out, message", [
    (100, None, "cannot make 100 patient-grouped folds from 4 patients"),
    (None, "source", "the manifest names no source")])
def test_refused_folds_leave_no_half_made_run(tmp_path, folds, leave_out, message):
    """A cross-validation refused for its folds left RUN/INCOMPLETE and a config, whose 'resume with … --resume'
    could never work (found in a user-workflow audit): the folds are checked before anything is written."""
    from conftest import write_wfdb

    from ecgnet.training.collection_command import train_command

    for i in range(4):
        write_wfdb(tmp_path / "recs", f"r{i}", fs=100, seed=i)
    manifest = tmp_path / "m.csv"
    manifest.write_text("record,NORM,MI\n" + "".join(f"recs/r{i}.hea,{i % 2},{1 - i % 2}\n" for i in range(4)))
    with pytest.raises(ECGNetError, match=message):
        train_command(None, ["name=refused", "training.threads=1"], manifest=manifest, source="long_time",
                      folds=folds, leave_out=leave_out, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs" / "refused").exists()
