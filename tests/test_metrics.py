"""Evaluation metrics and the run report, on small synthetic data (fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgnet.errors import ECGNetError
from ecgnet.evaluation.metrics import (
    bootstrap_ci,
    bootstrap_indices,
    choose_thresholds,
    decision_rates,
    evaluate,
    macro_auc,
    paired_bootstrap,
    per_class_auc,
    read_predictions,
    single_label_accuracy,
    threshold_metrics,
    write_predictions,
)
from ecgnet.evaluation.report import format_table, write_run_report

CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


def informative(n=300, k=5, noise=1.0, seed=0):
    """Random multi-label targets and scores that rank positives higher on average."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.3).astype(int)
    y[0], y[1] = 1, 0  # every class has a positive and a negative
    score = y + noise * rng.normal(size=(n, k))
    return y, 1 / (1 + np.exp(-score))


def test_macro_auc_perfect_and_reversed():
    y, _ = informative()
    p = y * 0.8 + 0.1
    assert macro_auc(y, p) == pytest.approx(1.0)
    assert macro_auc(y, 1 - p) == pytest.approx(0.0)
    assert per_class_auc(y, p) == pytest.approx(np.ones(5))


def test_bootstrap_ci_contains_point():
    y, p = informative()
    point, low, high = bootstrap_ci(y, p, macro_auc, n_boot=200, seed=1)
    assert low < point < high
    assert 0.6 < point < 1.0
    assert bootstrap_ci(y, p, macro_auc, n_boot=200, seed=1) == (point, low, high)  # seeded


def test_bootstrap_resamples_keep_rare_class():
    rng = np.random.default_rng(0)
    y = np.zeros((200, 2), int)
    y[[5, 50, 150], 0] = 1  # rare class: 3 positives in 200
    y[rng.random(200) < 0.5, 1] = 1
    idx = bootstrap_indices(200, 300, seed=0, y_true=y)
    assert len(idx) == 300
    for i in idx:
        assert (y[i].sum(0) >= 1).all() and (y[i].sum(0) < 200).all()
    with pytest.raises(ValueError, match="no positive or no negative"):
        bootstrap_indices(200, 10, 0, np.zeros((200, 1)))  # no positive at all


def test_youden_thresholds_separable():
    rng = np.random.default_rng(0)
    y = (rng.random((100, 3)) < 0.4).astype(int)
    y[0], y[1] = 1, 0
    p = np.where(y == 1, rng.uniform(0.55, 0.9, y.shape), rng.uniform(0.1, 0.5, y.shape))
    thr = choose_thresholds(y, p)
    m = threshold_metrics(y, p, thr)
    assert m["balanced_accuracy"] == pytest.approx(np.ones(3))
    assert m["macro_f1"] == pytest.approx(1.0)


def test_thresholds_applied_not_rechosen():
    y_val, p_val = informative(seed=1)
    y_test, p_test = informative(seed=2)
    thr = choose_thresholds(y_val, p_val)
    m = threshold_metrics(y_test, p_test, thr)
    assert np.array_equal(m["thresholds"], thr)
    pred = p_test >= thr
    assert m["sensitivity"] == pytest.approx((pred & (y_test == 1)).sum(0) / y_test.sum(0))
    # a different threshold vector gives different metrics on the same data
    other = threshold_metrics(y_test, p_test, np.full(5, 0.99))
    assert not np.allclose(other["sensitivity"], m["sensitivity"])
    ev = evaluate(y_test, p_test, CLASSES, thresholds=thr, n_boot=50)
    assert [ev["per_class"][c]["threshold"] for c in CLASSES] == pytest.approx(thr)


def test_single_label_accuracy_excludes_multilabel():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    p = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]])
    acc, n = single_label_accuracy(y, p)
    assert n == 3
    assert acc == pytest.approx(2 / 3)


def test_paired_bootstrap():
    y, p = informative(noise=0.5)
    same = paired_bootstrap(y, p, p, n_boot=100)
    assert same["diff"] == 0 and same["low"] == 0 and same["high"] == 0 and same["p_value"] == 1.0
    rand = np.random.default_rng(5).random(p.shape)
    res = paired_bootstrap(y, p, rand, n_boot=200)
    assert res["diff"] > 0 and 0 < res["low"] <= res["diff"] <= res["high"]
    assert res["p_value"] < 0.05


def test_predictions_round_trip(tmp_path):
    ids = np.array([3, 17, 42, 99])
    p = np.random.default_rng(0).random((4, 5))
    path = tmp_path / "preds" / "test.csv"
    write_predictions(path, ids, p, CLASSES)
    assert path.read_text().splitlines()[0] == "ecg_id," + ",".join(CLASSES)
    ids2, p2, cls2 = read_predictions(path)
    assert np.array_equal(ids2, ids) and cls2 == CLASSES
    assert np.allclose(p2, p, atol=1e-6)
    _, p3, cls3 = read_predictions(path, classes=CLASSES[::-1])  # reordered on request
    assert cls3 == CLASSES[::-1] and np.allclose(p3, p[:, ::-1], atol=1e-6)
    with pytest.raises(ECGNetError, match="not found"):
        read_predictions(tmp_path / "missing.csv")
    with pytest.raises(ECGNetError, match="do not match"):
        read_predictions(path, classes=["CD", "HYP"])
    (tmp_path / "bad.csv").write_text("id,CD\n1,0.5\n")
    with pytest.raises(ECGNetError, match="ecg_id"):
        read_predictions(tmp_path / "bad.csv")


def test_invalid_input():
    y, p = informative()
    with pytest.raises(ValueError, match="shape"):
        macro_auc(y, p[:, :4])
    bad = p.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        macro_auc(y, bad)
    with pytest.raises(ValueError, match="binary"):
        macro_auc(y * 2, p)
    with pytest.raises(ValueError, match="finite thresholds"):
        threshold_metrics(y, p, [0.5, 0.5])


def test_evaluate_json_and_report(tmp_path):
    y_val, p_val = informative(seed=3)
    y_test, p_test = informative(seed=4)
    thr = choose_thresholds(y_val, p_val)
    m_val = evaluate(y_val, p_val, CLASSES, thresholds=thr, n_boot=50)
    m_test = evaluate(y_test, p_test, CLASSES, thresholds=thr, n_boot=50)
    json.dumps(m_test, allow_nan=False)  # JSON-ready
    assert set(m_test["per_class"]["MI"]) >= {"auc", "accuracy", "balanced_accuracy", "sensitivity",
                                             "specificity", "f1", "threshold", "n_positive"}
    bare = evaluate(y_test, p_test, CLASSES, n_boot=20)
    assert "threshold" not in bare["per_class"]["MI"] and "macro_f1" not in bare

    html_path = write_run_report(tmp_path, y_test, p_test, CLASSES, m_test, m_val,
                                 {"name": "demo run", "model": "resnet1d", "seed": 0})
    text = html_path.read_text()
    assert html_path == tmp_path / "report.html"
    assert "data:image/png;base64," in text and "demo run" in text and "STTC" in text
    md = (tmp_path / "report.md").read_text()
    assert "figures/roc.png" in md and "| NORM |" in md
    assert (tmp_path / "figures" / "roc.png").stat().st_size > 1000
    table = format_table(m_test)
    assert table.row_count == len(CLASSES) + 1


def test_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    y, p = informative(n=500, seed=7)
    p = np.round(p, 1)  # many ties
    assert per_class_auc(y, p) == pytest.approx(roc_auc_score(y, p, average=None), abs=1e-12)
    assert macro_auc(y, p) == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)


def test_bootstrap_draws_every_record_uniformly_against_the_analytic_frequencies():
    """The resampling against an independent reference: with replacement, uniformly over all n records,
    so each record is drawn once per resample on average — except that resamples without a positive of a
    rare class are redrawn, which lifts each of its k positives to 1 / P(≥ 1 of k drawn) = 1 / (1 − (1 − k/n)^n)
    per resample (k = 3, n = 200: 1.0512). A sampler that never draws the last record, or that skips the
    redraw, is off by far more than the sampling error (~0.01 over 4000 resamples)."""
    n, k, n_boot = 200, 3, 4000
    y = np.zeros((n, 1), int)
    y[[0, 100, n - 1], 0] = 1  # the last record is one of the rare positives
    counts = np.bincount(bootstrap_indices(n, n_boot, seed=3, y_true=y).ravel(), minlength=n) / n_boot
    lifted = 1 / (1 - (1 - k / n) ** n)
    assert counts[[0, 100, n - 1]] == pytest.approx([lifted] * 3, abs=0.04)
    negatives = np.delete(counts, [0, 100, n - 1])
    assert negatives.mean() == pytest.approx((n - k * lifted) / (n - k), abs=0.005)
    assert negatives.min() > 0.85 and negatives.max() < 1.15  # every record drawn, none favoured


def test_bootstrap_resamples_keep_a_rare_negative():
    """A class positive in all but 3 records: every resample must still hold one of its negatives."""
    y = np.ones((200, 1), int)
    y[[7, 70, 170], 0] = 0
    idx = bootstrap_indices(200, 500, seed=1, y_true=y)
    assert all((y[i].sum(0) < 200).all() for i in idx)
    plain = np.random.default_rng(1).integers(0, 200, (500, 200))  # unconstrained draws, for comparison:
    assert any((y[i].sum(0) == 200).any() for i in plain)  # some hold no negative (≈ 4.9 %), so the rule is at work


def test_decision_rates_match_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, recall_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    calls = rng.random(200) < 0.4
    rates = decision_rates(y, calls)
    assert rates["sensitivity"] == pytest.approx(recall_score(y, calls))
    assert rates["specificity"] == pytest.approx(recall_score(1 - y, ~calls))
    assert rates["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, calls))
    # integer 0/1 calls and lists: ~ on an int 1 is -2, which once gave a specificity of -1.5
    as_ints = decision_rates(list(y), calls.astype(int))
    assert as_ints == pytest.approx(rates)
    for bad_y, bad_calls, message in ((y, calls[:-1], "same 1-D shape"), (y[:, None], calls[:, None], "1-D"),
                                      (y, calls * 2, "binary"), (np.ones(5), np.ones(5, bool), "a positive and a negative")):
        with pytest.raises(ValueError, match=message):
            decision_rates(bad_y, bad_calls)


def test_a_patient_bootstrap_resamples_patients_with_all_their_records():
    """Two identical records per patient are one patient's evidence, not two: resampling patients gives the
    interval of the records without their copies (the same draws, each brought twice), resampling records
    one by one a narrower, overconfident one."""
    rng = np.random.default_rng(3)
    y = (rng.random((120, 2)) < 0.3).astype(int)
    p = np.clip(y * 0.3 + rng.random((120, 2)), 0, 1)
    once = bootstrap_ci(y, p, n_boot=300, seed=0)
    twice_y, twice_p, patient = np.repeat(y, 2, axis=0), np.repeat(p, 2, axis=0), np.repeat(np.arange(120), 2)
    by_patient = bootstrap_ci(twice_y, twice_p, n_boot=300, seed=0, groups=patient.astype(str))
    by_record = bootstrap_ci(twice_y, twice_p, n_boot=300, seed=0)
    assert by_patient == pytest.approx(once)
    assert by_record[2] - by_record[1] < 0.85 * (by_patient[2] - by_patient[1])
    draws = bootstrap_indices(240, 20, 0, twice_y, groups=patient)
    assert all(np.array_equal(i[::2], i[1::2] - 1) for i in draws)  # a patient's records come together
    paired = paired_bootstrap(twice_y, twice_p, twice_p[::-1], n_boot=100, seed=0, groups=patient)
    assert paired == pytest.approx(paired_bootstrap(y, p, np.repeat(p, 2, axis=0)[::-1][::2], n_boot=100, seed=0))


def test_one_record_per_patient_draws_what_a_record_bootstrap_draws():
    y = np.tile([[1, 0], [0, 1], [1, 1], [0, 0]], (10, 1))
    records = bootstrap_indices(40, 30, 7, y)
    assert np.array_equal(records, bootstrap_indices(40, 30, 7, y, groups=[f"p{i}" for i in range(40)][::-1]))
    with pytest.raises(ValueError, match="39 group labels for 40 rows"):
        bootstrap_indices(40, 30, 7, y, groups=np.arange(39))


def test_a_patient_bootstrap_needs_enough_patients_each_named():
    """One patient made every resample the whole set (an interval of zero width: false certainty), two gave
    three outcomes (found in review): under MIN_GROUPS patients there is no interval; a missing patient label is
    an error, not one big patient; PTB-XL's collection keeps the benchmark's record bootstrap."""
    import pandas as pd

    from ecgnet.data.collections.base import Collection
    from ecgnet.evaluation.metrics import MIN_GROUPS
    from ecgnet.evaluation.scoring import score

    rng = np.random.default_rng(0)
    y, p = (rng.random((40, 2)) < 0.4).astype(float), rng.random((40, 2))
    for patients in (["P1"] * 40, [f"P{i % (MIN_GROUPS - 1)}" for i in range(40)]):
        auc = score(y, p, ["A", "B"], None, 100, 0, np.array(patients))["macro_auc"]
        assert auc["low"] is None and auc["high"] is None and auc["resampled"] == "patients"
    enough = np.array([f"P{i % MIN_GROUPS}" for i in range(40)])
    assert score(y, p, ["A", "B"], None, 100, 0, enough)["macro_auc"]["low"] is not None
    few = np.tile([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], (2, 1))  # 8 records: "1.000 [1.000, 1.000]"
    assert score(few, few * 0.5 + 0.2, ["A", "B"], None, 100, 0)["macro_auc"]["low"] is None
    assert bootstrap_ci(few, few * 0.5 + 0.2, n_boot=20)[1] is not None  # the benchmark's own path: no minimum
    for missing in (None, float("nan"), ""):
        with pytest.raises(ValueError, match="a group label is missing"):
            bootstrap_indices(40, 10, 0, y, groups=[missing] + [f"P{i}" for i in range(39)])
    common = dict(classes=["A", "B"], y=y, patients=np.array([f"P{i // 2}" for i in range(40)], dtype=object),
                  sources=np.full(40, "s", dtype=object), metadata=pd.DataFrame(index=range(40)))
    ptbxl = Collection(name="ptbxl_superdiagnostic", records=np.arange(40).astype(object), info={"ptbxl": "/x"},
                       **common)
    manifest = Collection(name="m", records=np.arange(40).astype(object), info={"manifest": "m.csv"}, **common)
    assert ptbxl.interval_groups is None and list(manifest.interval_groups) == list(common["patients"])
