"""Calibration figures: ECE is ~0 for probabilities that are frequencies and grows with the gap; the run
report carries the reliability figure and the per-class table."""

from __future__ import annotations

import numpy as np
import pytest

from ecgnet.evaluation.calibration import calibration_summary, expected_calibration_error, reliability_figure


def test_ece_is_zero_for_calibrated_and_the_gap_for_shrunk_probabilities():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = rng.random(200_000) < p
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, p / 2) == pytest.approx(0.25, abs=0.01)  # mean gap of p/2
    assert expected_calibration_error(np.ones(4), np.ones(4)) == 0.0  # p = 1 falls in the last bin


def test_summary_and_figure_cover_every_class():
    rng = np.random.default_rng(1)
    p = rng.random((500, 3))
    y = (rng.random((500, 3)) < p).astype(float)
    summary = calibration_summary(y, p, ["A", "B", "C"])
    assert set(summary["per_class"]) == {"A", "B", "C"}
    assert summary["macro_brier"] == pytest.approx(np.mean((y - p) ** 2, axis=0).mean())
    fig = reliability_figure(y, p, ["A", "B", "C"])
    assert len([ax for ax in fig.axes if ax.has_data()]) == 3


def test_run_report_shows_calibration(tiny_run):
    assert (tiny_run.run_dir / "figures" / "calibration.png").is_file()
    report = (tiny_run.run_dir / "report.md").read_text()
    assert "calibration" in report.lower() and "ECE" in report


def test_ece_refuses_what_is_not_one_class_of_probabilities():
    """A (records, classes) pair gave an ECE of 1.37 and probabilities over 1 one of 2.76: impossible values,
    silently; lengths that disagree a raw IndexError."""
    from ecgnet.evaluation.calibration import expected_calibration_error

    y, p = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3])
    assert 0 <= expected_calibration_error(y, p) <= 1
    for bad_y, bad_p, message in ((np.stack([y, y], 1), np.stack([p, p], 1), "1-D"), (y, p[:3], "same"),
                                  (y, p * 4, r"\[0, 1\]"), (y * 2, p, "binary"), (y[:0], p[:0], "non-empty")):
        with pytest.raises(ValueError, match=message):
            expected_calibration_error(bad_y, bad_p)
