"""Operating points and probability calibration against scikit-learn and brute force: Youden, F1 and
target-sensitivity thresholds, unknown labels masked, the fallback for classes that cannot be fitted,
isotonic maps equal to sklearn's predictions, temperature scaling recovering a known temperature, and
ECE on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import f1_score, recall_score

from ecgnet.evaluation.calibration import expected_calibration_error
from ecgnet.evaluation.operating_points import fit_thresholds
from ecgnet.evaluation.recalibration import (apply_calibrator, apply_calibrators, fit_calibrators,
                                             fit_temperature, sigmoid)


def scores(n=300, classes=3, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, classes)) < [0.3, 0.1, 0.5][:classes]).astype(float)
    p = sigmoid(1.5 * y + rng.normal(size=y.shape))
    return y, (np.round(p, 2) if ties else p)


def j_at(y, p, t):
    calls = p >= t
    return calls[y == 1].mean() + (~calls[y == 0]).mean() - 1


@pytest.mark.parametrize("ties", [False, True])
def test_youden_is_the_brute_force_maximum_of_j(ties):
    y, p = scores(ties=ties)
    t = fit_thresholds(y, p, "youden").values
    for k in range(y.shape[1]):
        best = max(j_at(y[:, k], p[:, k], c) for c in np.unique(p[:, k]))
        assert j_at(y[:, k], p[:, k], t[k]) == pytest.approx(best)


@pytest.mark.parametrize("ties", [False, True])
def test_f1_threshold_reaches_sklearns_best_f1(ties):
    y, p = scores(seed=1, ties=ties)
    t = fit_thresholds(y, p, "f1").values
    for k in range(y.shape[1]):
        best = max(f1_score(y[:, k], p[:, k] >= c) for c in np.unique(p[:, k]))
        assert f1_score(y[:, k], p[:, k] >= t[k]) == pytest.approx(best)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_target_sensitivity_is_the_highest_threshold_reaching_it(target):
    y, p = scores(seed=2, ties=True)
    t = fit_thresholds(y, p, "sensitivity", target_sensitivity=target).values
    for k in range(y.shape[1]):
        assert recall_score(y[:, k], p[:, k] >= t[k]) >= target
        higher = np.unique(p[:, k])[np.unique(p[:, k]) > t[k]]
        if higher.size:  # the next candidate up no longer finds enough cases
            assert recall_score(y[:, k], p[:, k] >= higher.min()) < target


def test_unknown_labels_are_masked_and_unfittable_classes_keep_the_fallback():
    y, p = scores(seed=3)
    masked = y.copy()
    masked[:50, 0] = np.nan
    masked[:, 2] = 0.0  # no positive: cannot be fitted
    fit = fit_thresholds(masked, p, "youden", fallback=[0.1, 0.2, 0.33])
    assert fit.values[0] == fit_thresholds(y[50:, :1], p[50:, :1]).values[0]
    assert fit.fitted == [True, True, False] and fit.values[2] == 0.33 and "0 positive" in fit.reasons[2]
    with pytest.raises(ValueError, match="method must be"):
        fit_thresholds(y, p, "roc")
    with pytest.raises(ValueError, match="target sensitivity"):
        fit_thresholds(y, p, "sensitivity", target_sensitivity=1.5)


def test_isotonic_map_equals_sklearns_predictions():
    y, p = scores(n=500, seed=4)
    maps = fit_calibrators(y, p, "isotonic")
    grid = np.concatenate([np.linspace(-0.1, 1.1, 301), p[:, 0]])  # beyond the knots too: clipped
    for k in range(y.shape[1]):
        reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p[:, k], y[:, k])
        assert np.allclose(apply_calibrator(grid, maps[k]), reference.predict(grid), atol=1e-12)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, 40_000)
    y = (rng.random(z.size) < sigmoid(z)).astype(float)  # calibrated at logit z
    distorted = sigmoid(z * true_t)  # over-confident for T > 1: the fit must find T = true_t
    assert fit_temperature(y, distorted) == pytest.approx(true_t, rel=0.05)
    restored = apply_calibrator(distorted, {"kind": "temperature", "temperature": fit_temperature(y, distorted)})
    assert expected_calibration_error(y, restored) < 0.02 or true_t == 1.0


def test_temperature_keeps_ranking_and_identity_for_unfittable_classes():
    y, p = scores(seed=6)
    y[:, 1] = np.nan
    maps = fit_calibrators(y, p, "temperature")
    assert maps[1] == {"kind": "none"} and maps[0]["kind"] == "temperature"
    out = apply_calibrators(p, maps)
    assert np.array_equal(np.argsort(out[:, 0]), np.argsort(p[:, 0])) and np.array_equal(out[:, 1], p[:, 1])
    with pytest.raises(ValueError, match="calibration must be"):
        fit_calibrators(y, p, "platt")
    with pytest.raises(ValueError, match="positive number"):
        apply_calibrator(p[:, 0], {"kind": "temperature", "temperature": -1})


def test_ece_on_a_hand_computed_example():
    # 10 bins: [0.05] in bin 0 (gap 0.05), [0.15, 0.15] in bin 1 (rate 0.5, gap 0.35, weight 2), [0.95] in bin 9
    # (gap 0.05): (0.05 + 2·0.35 + 0.05) / 4 = 0.2
    assert expected_calibration_error([0, 0, 1, 1], [0.05, 0.15, 0.15, 0.95]) == pytest.approx(0.2)


# --- a site's profile, cross-fitted ---------------------------------------------------------------

from sklearn.metrics import balanced_accuracy_score  # noqa: E402

from ecgnet.evaluation.site_calibration import assign_folds, before_after, cross_fit, fit_site  # noqa: E402


def test_folds_keep_a_patients_records_together():
    patients = np.repeat(np.arange(20), 3)
    folds = assign_folds(60, 5, seed=1, groups=patients)
    assert all(len(set(folds[patients == g])) == 1 for g in range(20))
    assert sorted(np.bincount(folds)) == [12] * 5 and np.array_equal(folds, assign_folds(60, 5, 1, patients))
    with pytest.raises(ValueError, match="folds"):
        assign_folds(3, 5)


def test_cross_fit_scores_each_fold_with_the_profile_fitted_on_the_others():
    y, p = scores(n=120, seed=7)
    folds = assign_folds(120, 4, seed=0)
    q, t = cross_fit(y, p, folds, method="youden", calibration="temperature")
    site = fit_site(y[folds != 2], p[folds != 2], "youden", calibration="temperature")
    assert np.allclose(t[folds == 2], site["thresholds"])
    assert site["calibrators"][0]["kind"] == "temperature" and not np.allclose(q, p)


def test_cross_fitting_removes_the_optimism_of_in_sample_thresholds():
    optimistic, honest = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        y = (rng.random((150, 1)) < 0.3).astype(float)
        p = rng.random((150, 1))  # no signal at all: the honest balanced accuracy is 0.5
        optimistic.append(balanced_accuracy_score(y[:, 0], p[:, 0] >= fit_site(y, p)["thresholds"][0]))
        q, t = cross_fit(y, p, assign_folds(150, 5, seed=0))
        honest.append(balanced_accuracy_score(y[:, 0], q[:, 0] >= t[:, 0]))
    assert np.mean(optimistic) > np.mean(honest) + 0.03 and abs(np.mean(honest) - 0.5) < 0.02


def test_before_after_matches_sklearn_on_known_labels_and_skips_unscorable_classes():
    y, p = scores(n=200, seed=9)
    y[:30, 0] = np.nan
    y[:, 2] = 0.0
    q, t = cross_fit(y, p, assign_folds(200, 5, seed=0), fallback=[0.5, 0.5, 0.5])
    result = before_after(y, p, [0.5, 0.4, 0.5], q, t, ["A", "B", "C"], n_boot=100)
    known = ~np.isnan(y[:, 0])
    a = result["per_class"]["A"]
    assert a["n"] == 170 and a["before"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y[known, 0], p[known, 0] >= 0.5))
    assert a["after"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[known, 0], q[known, 0] >= t[known, 0]))
    assert a["before"]["low"] <= a["before"]["balanced_accuracy"] <= a["before"]["high"]
    assert a["difference"]["low"] <= a["difference"]["value"] <= a["difference"]["high"]
    assert "skipped" in result["per_class"]["C"] and result["classes_scored"] == ["A", "B"]


def test_method_run_keeps_the_runs_decisions_and_recalibrates_only():
    y, p = scores(n=200, seed=10)
    run_t = np.array([0.4, 0.5, 0.6])
    site = fit_site(y, p, method="run", calibration="temperature", fallback=run_t)
    q = apply_calibrators(p, site["calibrators"])
    assert np.array_equal(q >= np.array(site["thresholds"]), p >= run_t)  # the same calls, calibrated scale
    assert not np.allclose(q, p)
    ident = fit_site(y, p, method="run", calibration="none", fallback=run_t)
    assert ident["thresholds"] == run_t.tolist() and ident["fitted"] == [False] * 3


# --- shrinkage toward the run's thresholds ----------------------------------------------------------

from ecgnet.evaluation.operating_points import shrink_toward  # noqa: E402


def test_shrinkage_weights_the_site_by_its_rarer_label_count_in_logit_space():
    logit = lambda t: np.log(t / (1 - t))  # noqa: E731
    assert shrink_toward(0.8, 0.3, 10, 0) == 0.8
    for m, s in ((5, 20), (200, 20), (1, 1)):
        w = m / (m + s)
        assert logit(shrink_toward(0.8, 0.3, m, s)) == pytest.approx(w * logit(0.8) + (1 - w) * logit(0.3))
    assert abs(shrink_toward(0.8, 0.3, 10_000, 5) - 0.8) < 1e-3 and abs(shrink_toward(0.8, 0.3, 1, 1e6) - 0.3) < 1e-6
    assert 0 < shrink_toward(1.0, 0.0, 3, 3) < 1  # the ends are clipped, not infinite
    with pytest.raises(ValueError, match="shrinkage"):
        shrink_toward(0.8, 0.3, 10, -1)


def test_fit_thresholds_shrinks_only_fitted_classes_and_by_each_class_count():
    y, p = scores(n=300, seed=11)
    y[:, 2] = 0.0  # unfittable: keeps the fallback, shrunk or not
    fallback = np.array([0.2, 0.7, 0.45])
    raw = fit_thresholds(y, p, "youden", fallback=fallback)
    shrunk = fit_thresholds(y, p, "youden", fallback=fallback, shrinkage=30)
    for k in (0, 1):
        m = int(min(y[:, k].sum(), len(y) - y[:, k].sum()))
        assert shrunk.values[k] == pytest.approx(shrink_toward(raw.values[k], fallback[k], m, 30))
    assert shrunk.values[2] == fallback[2] and shrunk.fitted == raw.fitted
    # the rarer class (fewer positives) moves less of the way from the fallback to its own threshold
    share = [(shrunk.values[k] - fallback[k]) / (raw.values[k] - fallback[k]) for k in (0, 1)]
    assert share[1] < share[0]


def test_site_shrinkage_pulls_toward_the_run_threshold_carried_through_the_calibration():
    y, p = scores(n=200, seed=12)
    run_t = np.array([0.4, 0.5, 0.6])
    full = fit_site(y, p, "youden", calibration="temperature", fallback=run_t, shrinkage=1e9)
    q = apply_calibrators(p, full["calibrators"])
    assert np.array_equal(q >= np.array(full["thresholds"]) - 1e-9, p >= run_t - 1e-9)  # s → ∞: the run's calls
    none = fit_site(y, p, "youden", calibration="temperature", fallback=run_t, shrinkage=0)
    assert none["thresholds"] == fit_site(y, p, "youden", calibration="temperature", fallback=run_t)["thresholds"]
