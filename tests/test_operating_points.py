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


def test_equal_j_or_f1_written_two_ways_is_a_tie_won_by_the_highest_threshold():
    """J = 1/6 at 0.8 (sensitivity 1/6, specificity 1) and at 0.4 (5/6, 2/3) differ in the last bit: the
    documented tie-break (the highest) lost to the rounding and gave 0.4 (found in a statistics audit)."""
    from ecgnet.evaluation.operating_points import f1_threshold, youden_threshold

    y = np.array([1, 0, 1, 1, 1, 1, 1, 0, 0])
    p = np.array([.8, .4, .1, .5, .4, .4, .4, .3, .5])
    assert j_at(y, p, 0.8) == pytest.approx(j_at(y, p, 0.4)) and youden_threshold(y, p) == 0.8
    y, p = np.array([0, 0, 0, 1, 1, 1, 1, 0]), np.array([.4, .9, .6, .2, .6, .6, .8, .5])  # F1 2/3 at 0.6 and 0.2
    assert f1_score(y, p >= 0.6) == pytest.approx(f1_score(y, p >= 0.2)) and f1_threshold(y, p) == 0.6


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
    assert expected_calibration_error(y, restored) < 0.02  # T = 1: calibrated already, and left so


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

from ecgnet.data.collections.folds import stratified_group_folds  # noqa: E402
from ecgnet.evaluation.site_calibration import before_after, cross_fit, fit_site  # noqa: E402


def test_cross_fit_scores_each_fold_with_the_profile_fitted_on_the_others():
    y, p = scores(n=120, seed=7)
    folds = stratified_group_folds(y, np.arange(120), 4, seed=0)
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
        q, t = cross_fit(y, p, stratified_group_folds(y, np.arange(150), 5, seed=0))
        honest.append(balanced_accuracy_score(y[:, 0], q[:, 0] >= t[:, 0]))
    assert np.mean(optimistic) > np.mean(honest) + 0.03 and abs(np.mean(honest) - 0.5) < 0.02


def test_before_after_matches_sklearn_on_known_labels_and_skips_unscorable_classes():
    y, p = scores(n=200, seed=9)
    y[:30, 0] = np.nan
    y[:, 2] = 0.0
    q, t = cross_fit(y, p, stratified_group_folds(y, np.arange(200), 5, seed=0), fallback=[0.5, 0.5, 0.5])
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


def test_the_run_s_threshold_carried_through_an_isotonic_map_keeps_its_calls():
    """A run threshold inside the isotonic map's bottom flat piece (value 0) was carried as 0, so 'p >= 0' called
    every record positive (specificity 0; found in a statistics audit). Now the piece goes to the nearer end."""
    from ecgnet.evaluation.recalibration import carry_threshold, raw_threshold

    y = np.array([0, 0, 0, 0, 1, 0, 1, 1.])[:, None]
    p = np.array([.05, .1, .2, .3, .35, .4, .6, .9])[:, None]
    site = fit_site(y, p, method="run", calibration="isotonic", fallback=[0.25])
    q = apply_calibrators(p, site["calibrators"])[:, 0]
    calls = q >= site["thresholds"][0]
    assert site["thresholds"][0] > 0 and calls.tolist() == (p[:, 0] > 0.3).tolist()  # 0.25 is nearer 0.3 than 0
    assert (calls == (p[:, 0] >= 0.25)).mean() >= 7 / 8  # all but the record inside the flat piece above 0.25
    iso = site["calibrators"][0]
    assert carry_threshold(0.37, iso) == pytest.approx(np.interp(0.37, iso["x"], iso["y"]))  # a rising stretch
    for t in (0.32, 0.37, 0.5, 0.7):  # the inverse: the lowest raw probability the map takes to t's value
        assert raw_threshold(carry_threshold(t, iso), iso) <= t + 1e-12
    grid = np.linspace(0, 1, 100_001)
    mapped = apply_calibrators(grid[:, None], [iso])[:, 0]
    for v in np.linspace(mapped.min(), mapped.max(), 23)[1:-1]:  # every calibrated value the map reaches
        r = raw_threshold(v, iso)
        lowest = grid[np.argmax(mapped >= v - 1e-12)]  # brute force: the first raw probability taken to v or above
        assert r == pytest.approx(lowest, abs=2e-5), (v, r, lowest)
    temperature = {"kind": "temperature", "temperature": 1.7}
    assert raw_threshold(carry_threshold(0.3, temperature), temperature) == pytest.approx(0.3)


def test_shrinkage_after_an_isotonic_map_is_done_on_raw_probabilities():
    """The run threshold carried through an isotonic map is often exactly 0 or 1, so a logit-space pull toward it
    was decided by the clip at 1e-6 (0.143 became 4e-4). Shrinking on raw probabilities equals the calibrated-
    space pull for temperature scaling and stays between the site's and the run's calls for isotonic."""
    y, p = scores(n=200, seed=12)
    run_t = np.array([0.4, 0.5, 0.6])
    for calibration in ("temperature", "isotonic"):
        free = fit_site(y, p, "youden", calibration=calibration, fallback=run_t)
        run = fit_site(y, p, "run", calibration=calibration, fallback=run_t)
        shrunk = fit_site(y, p, "youden", calibration=calibration, fallback=run_t, shrinkage=40)
        q = apply_calibrators(p, free["calibrators"])
        counts = [[(q[:, k] >= fit["thresholds"][k]).sum() for fit in (free, run, shrunk)] for k in range(3)]
        for n_free, n_run, n_shrunk in counts:  # the calls lie between the site's and the run's
            assert min(n_free, n_run) <= n_shrunk <= max(n_free, n_run)
        assert any(n_free != n_run for n_free, n_run, _ in counts)
        assert all(0.01 < t < 0.99 for t in shrunk["thresholds"])  # not a clipped logit's artefact
    # a run threshold in the map's bottom piece (isotonic value 0): the pull in calibrated logits went to the clip,
    # threshold 0.0043 (211 of 300 called); on raw probabilities it lies between the two (data from review)
    rng = np.random.default_rng(0)
    y1 = (rng.random((300, 1)) < 0.3).astype(float)
    p1 = np.clip(0.25 * y1 + rng.random((300, 1)) * 0.6, 0, 1)
    shrunk = fit_site(y1, p1, "youden", calibration="isotonic", fallback=[0.1], shrinkage=40)
    calls = int((apply_calibrators(p1, shrunk["calibrators"])[:, 0] >= shrunk["thresholds"][0]).sum())
    assert shrunk["thresholds"][0] == pytest.approx(0.25) and calls == 188
    logit = lambda t: np.log(t / (1 - t))  # noqa: E731
    free = fit_site(y, p, "youden", calibration="temperature", fallback=run_t)
    shrunk = fit_site(y, p, "youden", calibration="temperature", fallback=run_t, shrinkage=40)
    for k, c in enumerate(free["calibrators"]):  # temperature: the same as pulling in calibrated logit space
        m = int(min(y[:, k].sum(), len(y) - y[:, k].sum()))
        w = m / (m + 40)
        carried = 1 / (1 + np.exp(-logit(run_t[k]) / c["temperature"]))
        assert logit(shrunk["thresholds"][k]) == pytest.approx(w * logit(free["thresholds"][k]) + (1 - w) * logit(carried),
                                                               abs=1e-6)


def test_site_options_that_cannot_mean_anything_are_refused():
    from ecgnet.errors import ECGNetError
    from ecgnet.evaluation.calibrate_site import check_options

    y, p = scores(n=50, seed=1)
    with pytest.raises(ValueError, match="method 'run' carries the run's thresholds"):
        fit_site(y, p, method="run")  # NaN thresholds, every call negative, before
    with pytest.raises(ECGNetError, match="misses the sensitivity asked for"):
        check_options("site", "sensitivity", "temperature", 0.9, shrinkage=40)
    with pytest.raises(ECGNetError, match="keeps the run's thresholds"):
        check_options("site", "run", "temperature", 0.9, shrinkage=40)
    check_options("site", "youden", "isotonic", 0.9, shrinkage=40)


def test_a_class_the_records_separate_perfectly_keeps_the_identity_and_says_why():
    """Four records that separate a class perfectly drove its temperature to the search's bound (0.05): every
    probability became 0.000 or 1.000 and predict --site called '1.000 ≥ 1.000' (found in a hospital audit). Such
    a class is left uncalibrated, its map saying why; a class that does not separate still gets its temperature."""
    from ecgnet.evaluation.recalibration import NOT_FITTED, apply_calibrator, fit_calibrator

    y, p = np.array([0, 0, 1, 1.0]), np.array([0.2, 0.3, 0.6, 0.7])
    separated = fit_calibrator(y, p, "temperature")
    assert separated == {"kind": "none", "not_fitted": NOT_FITTED}
    np.testing.assert_array_equal(apply_calibrator(p, separated), p)
    overlapping = fit_calibrator(np.array([0, 1, 0, 1.0]), p, "temperature")
    assert overlapping["kind"] == "temperature" and overlapping["temperature"] > 0.06
