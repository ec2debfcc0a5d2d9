"""PTB-XL tables → labels, folds and metadata.

The real-data tests pin the record and class counts of PTB-XL 1.0.1 under the benchmark's label rules
(Strodthoff et al. 2021); the synthetic tables check each rule on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgnet.data import ptbxl
from ecgnet.errors import ECGNetError

# task: (classes, records, (train, val, test))
EXPECTED = {
    "superdiagnostic": (5, 21430, (17111, 2156, 2163)),
    "subdiagnostic": (23, 21430, (17111, 2156, 2163)),
    "diagnostic": (44, 21430, (17111, 2156, 2163)),
    "form": (19, 8988, (7202, 904, 882)),
    "rhythm": (12, 21066, (16854, 2109, 2103)),
    "all": (71, 21837, (17441, 2193, 2203)),
}


# --- real data --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_labels(ptbxl_tables):
    db, statements = ptbxl_tables
    return {task: ptbxl.make_labels(db, statements, task) for task in ptbxl.TASKS}


@pytest.mark.parametrize("task", ptbxl.TASKS)
def test_records_and_classes_per_task_and_split(real_labels, task):
    n_classes, n_records, per_split = EXPECTED[task]
    labels = real_labels[task]
    assert len(labels.classes) == n_classes
    assert labels.classes == sorted(labels.classes)
    assert len(labels.ecg_ids) == n_records == len(labels.y) == len(labels.folds)
    assert tuple(int(labels.split(s).sum()) for s in ("train", "val", "test")) == per_split
    assert labels.y.dtype == np.float32 and set(np.unique(labels.y)) == {0.0, 1.0}
    assert (labels.y.sum(1) >= 1).all()  # no record without a label of the task
    assert (labels.y.sum(0) >= 1).all()  # no class without a record


def test_superdiagnostic_fold10_class_counts(real_labels):
    labels = real_labels["superdiagnostic"]
    assert labels.classes == ["CD", "HYP", "MI", "NORM", "STTC"]
    counts = labels.y[labels.split("test")].sum(0).astype(int).tolist()
    assert counts == [498, 263, 553, 964, 523]


def test_splits_are_the_strat_folds(real_labels, ptbxl_tables):
    db, _ = ptbxl_tables
    labels = real_labels["all"]
    np.testing.assert_array_equal(labels.folds, db.loc[labels.ecg_ids, "strat_fold"].to_numpy())
    train, val, test = (labels.split(s) for s in ("train", "val", "test"))
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    assert (train | val | test).all()
    assert set(labels.folds[test]) == {10} and set(labels.folds[val]) == {9}
    with pytest.raises(ValueError, match="split must be one of train, val, test, not 'validation'"):
        labels.split("validation")  # a raw KeyError before


def test_metadata_mapping(ptbxl_tables):
    db, _ = ptbxl_tables
    meta = ptbxl.metadata_table(db)
    assert list(meta.columns) == list(ptbxl.META_FEATURES)
    assert meta["age"].max() <= ptbxl.AGE_CAP
    assert (meta.loc[db["age"] > 89, "age"] == ptbxl.AGE_CAP).all()
    assert (meta[["height", "weight"]].dropna() > 0).all().all()
    for f in ptbxl.META_FIELDS:
        np.testing.assert_array_equal(meta[f"{f}_missing"].to_numpy(), meta[f].isna().to_numpy().astype(float))
    assert meta["height_missing"].sum() > 0  # PTB-XL really lacks many heights


def test_metadata_scaler_fitted_on_train(ptbxl_tables):
    db, _ = ptbxl_tables
    meta = ptbxl.metadata_table(db)
    train = meta[db["strat_fold"].isin(ptbxl.TRAIN_FOLDS)]
    scaler = ptbxl.MetadataScaler.fit(train)
    x = scaler.transform(train)
    assert x.shape == (len(train), 8) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_allclose(x[:, :4].mean(0), 0, atol=1e-4)
    for k, f in enumerate(ptbxl.META_FIELDS):
        present = train[f].notna().to_numpy()
        if present.any() and train[f].nunique() > 1:
            assert x[present, k].std(ddof=1) == pytest.approx(1, abs=1e-3)
        assert (x[~present, k] == 0).all()  # missing → the training mean, flagged
    np.testing.assert_array_equal(x[:, 4:], train[[f"{f}_missing" for f in ptbxl.META_FIELDS]].to_numpy())


def test_class_descriptions(real_labels, ptbxl_tables):
    _, statements = ptbxl_tables
    for task in ("superdiagnostic", "subdiagnostic", "all"):
        names = ptbxl.describe_classes(real_labels[task].classes, statements)
        assert set(names) == set(real_labels[task].classes)
        assert all(isinstance(v, str) and v for v in names.values())
    assert ptbxl.describe_classes(["MI"], statements) == {"MI": "myocardial infarction"}


# --- the label rules on synthetic tables ------------------------------------------------------

def mini_statements() -> pd.DataFrame:
    rows = {  # code: diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass, description
        "NORM": (1, np.nan, np.nan, "NORM", "NORM", "normal ECG"),
        "IMI": (1, np.nan, np.nan, "MI", "IMI", "inferior myocardial infarction"),
        "ASMI": (1, np.nan, np.nan, "MI", "AMI", "anteroseptal myocardial infarction"),
        "NDT": (1, 1, np.nan, "STTC", "STTC", "non-diagnostic T abnormalities"),
        "LVOLT": (np.nan, 1, np.nan, np.nan, np.nan, "low QRS voltages"),
        "SR": (np.nan, np.nan, 1, np.nan, np.nan, "sinus rhythm"),
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=[
        "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass", "description"])


def mini_database() -> pd.DataFrame:
    codes = {
        1: {"NORM": 100.0, "SR": 0.0},
        2: {"IMI": 0.0},  # likelihood 0 still counts
        3: {"ASMI": 15.0, "IMI": 50.0, "NDT": 100.0},
        4: {"SR": 100.0},  # no diagnostic statement: only in rhythm / all
        5: {"LVOLT": 100.0, "SR": 0.0},
        6: {"XYZ": 100.0},  # unknown statement: in no task
    }
    folds = {1: 1, 2: 2, 3: 9, 4: 10, 5: 10, 6: 3}
    return pd.DataFrame({"scp_codes": pd.Series(codes), "strat_fold": pd.Series(folds)}).rename_axis("ecg_id")


def as_sets(labels: ptbxl.Labels) -> dict[int, set[str]]:
    return {int(e): {c for c, v in zip(labels.classes, row) if v} for e, row in zip(labels.ecg_ids, labels.y)}


def test_rules_superdiagnostic():
    labels = ptbxl.make_labels(mini_database(), mini_statements(), "superdiagnostic")
    assert labels.classes == ["MI", "NORM", "STTC"]
    assert as_sets(labels) == {1: {"NORM"}, 2: {"MI"}, 3: {"MI", "STTC"}}
    np.testing.assert_array_equal(labels.folds, [1, 2, 9])


def test_rules_subdiagnostic_and_diagnostic():
    db, st = mini_database(), mini_statements()
    sub = ptbxl.make_labels(db, st, "subdiagnostic")
    assert sub.classes == ["AMI", "IMI", "NORM", "STTC"]
    assert as_sets(sub) == {1: {"NORM"}, 2: {"IMI"}, 3: {"AMI", "IMI", "STTC"}}
    diag = ptbxl.make_labels(db, st, "diagnostic")
    assert diag.classes == ["ASMI", "IMI", "NDT", "NORM"]
    assert as_sets(diag) == {1: {"NORM"}, 2: {"IMI"}, 3: {"ASMI", "IMI", "NDT"}}


def test_rules_form_rhythm_all():
    db, st = mini_database(), mini_statements()
    assert as_sets(ptbxl.make_labels(db, st, "form")) == {3: {"NDT"}, 5: {"LVOLT"}}
    assert as_sets(ptbxl.make_labels(db, st, "rhythm")) == {1: {"SR"}, 4: {"SR"}, 5: {"SR"}}
    everything = ptbxl.make_labels(db, st, "all")
    assert 6 not in set(everything.ecg_ids.tolist())
    assert as_sets(everything)[5] == {"LVOLT", "SR"}
    assert len(everything.ecg_ids) == 5


def test_split_masks_on_synthetic():
    labels = ptbxl.make_labels(mini_database(), mini_statements(), "all")  # folds 1, 2, 9, 10, 10
    assert labels.ecg_ids[labels.split("train")].tolist() == [1, 2]
    assert labels.ecg_ids[labels.split("val")].tolist() == [3]
    assert labels.ecg_ids[labels.split("test")].tolist() == [4, 5]


def test_unknown_task():
    with pytest.raises(ECGNetError, match="unknown task 'foo'"):
        ptbxl.make_labels(mini_database(), mini_statements(), "foo")


def test_metadata_on_synthetic():
    db = pd.DataFrame({"age": [300, 45, np.nan, 89], "sex": [0, 1, 1, 0], "height": [0, 180, np.nan, 170],
                       "weight": [80, -1, 60, np.nan]}, index=pd.Index([1, 2, 3, 4], name="ecg_id"))
    meta = ptbxl.metadata_table(db)
    assert meta["age"].tolist()[:2] == [90, 45] and meta["age"].tolist()[3] == 89
    assert meta["age_missing"].tolist() == [0, 0, 1, 0]
    assert meta["height_missing"].tolist() == [1, 0, 1, 0]  # 0 cm means unknown
    assert meta["weight_missing"].tolist() == [0, 1, 0, 1]
    scaler = ptbxl.MetadataScaler.fit(meta)
    x = scaler.transform(meta)
    assert np.isfinite(x).all()
    assert x[2, 0] == 0 and x[0, 2] == 0  # missing → 0


# --- data_root and table errors ---------------------------------------------------------------

def test_data_root_without_path_or_env(monkeypatch):
    monkeypatch.delenv(ptbxl.DATA_ENV, raising=False)
    with pytest.raises(ECGNetError, match="ECGNET_DATA"):
        ptbxl.data_root(None)


def test_data_root_from_env(tmp_path, monkeypatch):
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (tmp_path / name).write_text("x\n")
    monkeypatch.setenv(ptbxl.DATA_ENV, str(tmp_path))
    assert ptbxl.data_root(None) == tmp_path


def test_data_root_folder_without_csv(tmp_path, monkeypatch):
    monkeypatch.delenv(ptbxl.DATA_ENV, raising=False)
    with pytest.raises(ECGNetError, match="ptbxl_database.csv") as info:
        ptbxl.data_root(tmp_path)
    assert str(tmp_path) in str(info.value)
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id\n")
    with pytest.raises(ECGNetError, match="scp_statements.csv"):
        ptbxl.data_root(tmp_path)


def test_read_database_errors(tmp_path):
    path = tmp_path / "ptbxl_database.csv"
    path.write_text("ecg_id,scp_codes,strat_fold\n1,\"{'NORM': 100.0}\",1\n")
    with pytest.raises(ECGNetError, match="column 'filename_lr' is missing"):
        ptbxl.read_database(tmp_path)
    path.write_text("ecg_id,scp_codes,strat_fold,filename_lr,age,sex,height,weight\n1,{not a dict,1,a,1,0,,\n")
    with pytest.raises(ECGNetError, match="ptbxl_database.csv"):
        ptbxl.read_database(tmp_path)


def test_the_dataset_takes_ptbxls_two_rates_only(tmp_path):
    """PTBXL(root, sampling_rate=250) was accepted, then failed on 'records500/…_hr.hea' (leaving a lock file)."""
    from ecgnet.data.dataset import PTBXL
    from ecgnet.errors import ECGNetError

    with pytest.raises(ECGNetError, match="PTB-XL comes at 100 or 500 Hz, not 250"):
        PTBXL(tmp_path, sampling_rate=250, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
