"""The one scoring of probabilities against labels that may be unknown (evaluate --manifest,
evaluate-external and cross-validation share it): sklearn's AUCs on the known rows, the benchmark's
interval when nothing is unknown, an interval also when something is, a class without a negative left out."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgnet.evaluation import metrics as M
from ecgnet.evaluation.scoring import few_cases, masked_macro_auc, score
from ecgnet.training import collection_scoring


def _data(seed=0, n=80):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.35).astype(float)
    p = np.clip(0.6 * y + rng.random((n, 3)) * 0.7, 0, 1)
    return y, p


def test_with_nothing_unknown_the_interval_is_the_benchmarks():
    y, p = _data()
    out = score(y, p, ["A", "B", "C"], n_boot=200, seed=3)
    point, low, high = M.bootstrap_ci(y.astype(int), p, n_boot=200, seed=3)
    assert out["macro_auc"]["value"] == pytest.approx(roc_auc_score(y, p, average="macro"))
    assert (out["macro_auc"]["low"], out["macro_auc"]["high"]) == pytest.approx((low, high))


def test_unknown_labels_are_left_out_class_by_class_and_still_get_an_interval():
    y, p = _data(1)
    y[:10, 0] = np.nan
    y[30:35, 2] = np.nan
    out = score(y, p, ["A", "B", "C"], {"A": 0.5, "B": 0.5, "C": 0.5}, n_boot=200, seed=0)
    per_class = [roc_auc_score(y[~np.isnan(y[:, k]), k], p[~np.isnan(y[:, k]), k]) for k in range(3)]
    assert [out["per_class"][c]["auc"] for c in "ABC"] == pytest.approx(per_class)
    assert out["macro_auc"]["value"] == pytest.approx(np.mean(per_class)) == pytest.approx(masked_macro_auc(y, p))
    assert out["macro_auc"]["low"] < out["macro_auc"]["value"] < out["macro_auc"]["high"]
    assert out["per_class"]["A"]["n"] == 70 and out["n"] == 80
    assert 0 < out["mean_balanced_accuracy"] <= 1


def test_a_class_without_a_known_negative_is_not_scored():
    y, p = _data(2, n=12)
    y[:, 1] = 1.0  # no negative
    out = score(y, p, ["A", "B", "C"], n_boot=1000, seed=0)
    assert out["classes_scored"] == ["A", "C"] and out["per_class"]["B"]["auc"] is None
    assert out["per_class"]["B"]["n_positive"] == 12 and out["macro_auc"]["value"] == pytest.approx(
        np.mean([roc_auc_score(y[:, k], p[:, k]) for k in (0, 2)]))
    assert masked_macro_auc(np.full((4, 1), np.nan), np.zeros((4, 1)), empty=0.5) == 0.5


def test_cross_validation_scores_alike_under_its_own_record_count_name():
    y, p = _data(3)
    y[:5, 1] = np.nan
    cv, shared = collection_scoring.score(y, p, ["A", "B", "C"], None, 100, 0), score(y, p, ["A", "B", "C"], None, 100, 0)
    assert cv["n_records"] == shared.pop("n") == 80
    assert {k: v for k, v in cv.items() if k != "n_records"} == shared


def test_classes_with_few_cases_are_named_in_a_warning():
    y, p = _data(4)
    assert few_cases(score(y, p, ["A", "B", "C"], n_boot=10)) is None  # ≥ 10 of each
    y[:, 1] = 0.0
    y[0, 1] = 1.0  # one positive: AUC 1.000 [1.000, 1.000] if it is ranked first
    warning = few_cases(score(y, p, ["A", "B", "C"], n_boot=10))
    assert warning.startswith("fewer than 10 positives or negatives for B (1 positive, 79 negative)")


def test_score_refuses_shapes_that_disagree_with_its_classes():
    """y and p of different shapes, or fewer class names than columns: a raw IndexError before."""
    y, p = np.array([[0, 1], [1, 0], [1, np.nan]]), np.array([[0.2, 0.7], [0.9, 0.1], [0.6, 0.5]])
    assert score(y, p, ["a", "b"], n_boot=10)["classes_scored"] == ["a", "b"]
    for args in ((y, p[:, :1], ["a", "b"]), (y, p, ["a"]), (y[:, 0], p[:, 0], ["a"])):
        with pytest.raises(ValueError, match="one column per class"):
            score(*args, n_boot=10)


def test_calls_at_the_thresholds_match_sklearn_including_ties():
    """Sensitivity, specificity and balanced accuracy at each class's threshold (p ≥ t is positive), with
    unknown labels left out, as sklearn computes them; some probabilities equal their threshold exactly."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    y, p = _data(4, n=120)
    y[:15, 1] = np.nan
    thresholds = {"A": 0.3, "B": 0.62, "C": 0.5}
    p[::7, 1], p[::9, 2] = 0.62, 0.5  # ties: called positive
    out = score(y, p, ["A", "B", "C"], thresholds, n_boot=50, seed=0)
    bal = []
    for k, c in enumerate("ABC"):
        known = ~np.isnan(y[:, k])
        yk, calls = y[known, k].astype(int), (p[known, k] >= thresholds[c]).astype(int)
        entry = out["per_class"][c]
        assert entry["sensitivity"] == pytest.approx(recall_score(yk, calls))
        assert entry["specificity"] == pytest.approx(recall_score(1 - yk, 1 - calls))
        assert entry["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(yk, calls))
        bal.append(balanced_accuracy_score(yk, calls))
    assert out["mean_balanced_accuracy"] == pytest.approx(np.mean(bal))


def test_a_class_mostly_unknown_keeps_a_known_positive_and_negative_in_every_resample():
    """95 of 100 labels unknown (3 positive, 2 negative known): each bootstrap resample must hold a known
    positive and a known negative of it, or the resample's AUC is undefined."""
    y, p = _data(5, n=100)
    y[:, 0] = np.nan
    y[[3, 17, 40], 0], y[[55, 90], 0] = 1.0, 0.0
    idx = M.bootstrap_indices(100, 300, 0, y)
    for rows in idx:
        column = y[rows, 0]
        assert np.nansum(column) >= 1 and np.sum(column == 0) >= 1
    out = score(y, p, ["A", "B", "C"], n_boot=300, seed=0)
    assert out["per_class"]["A"]["n"] == 5 and out["per_class"]["A"]["auc"] is not None


def test_a_threshold_that_calls_most_records_positive_is_said():
    """Youden's J on a weakly ranked rare class chose HYP >= 0.038 at a site: 65 % of its records called positive
    against a prevalence of 16 %, in every prediction after, without a word (found in a site audit)."""
    from ecgnet.training.collection_scoring import call_rate_warnings

    y = np.array([[1.0, 1], [0, 0], [0, 1], [0, 0], [0, np.nan], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])
    p = np.array([[0.9, 0.9], [0.5, 0.1], [0.5, 0.8], [0.5, 0.2], [0.5, 0.5], [0.1, 0.1], [0.1, 0.7],
                  [0.1, 0.2], [0.1, 0.9], [0.1, 0.1]])
    said = call_rate_warnings(y, p, {"HYP": 0.3, "NORM": 0.5}, ["HYP", "NORM"])
    assert said == ["HYP's threshold 0.300 calls 50% of the records positive (prevalence 10%): a positive HYP means "
                    "above that threshold, not a probable HYP — read the probability, or set the site's operating "
                    "point with ecgnet calibrate"]
