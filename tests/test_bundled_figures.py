"""The bundled models' reported fold-10 figures, pinned: what ``ecgnet models`` lists and what the docs
quote (macro AUC with its 90 % bootstrap interval, per-class AUC), and — with PTB-XL — the macro AUC
recomputed from the committed predictions by scikit-learn, independently of ecgnet's metrics code.
A test that only checked ``0.5 < auc`` let a model listed with another split's figures pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgnet.runs.bundled import BUNDLED_MODELS, bundled_root, list_bundled

# fold 10 (2163 records), as reported by each run's test/metrics.json: macro AUC [90 % CI], per-class AUC
REPORTED = {
    "distill_long_time": ((0.9354, 0.9300, 0.9407), {"CD": 0.9325, "HYP": 0.9109, "MI": 0.9423, "NORM": 0.9518,
                                                     "STTC": 0.9394}),
    "long_time": ((0.9355, 0.9301, 0.9411), {"CD": 0.9315, "HYP": 0.9159, "MI": 0.9412, "NORM": 0.9518, "STTC": 0.9371}),
    "baseline_time": ((0.9338, 0.9282, 0.9392), {"CD": 0.9309, "HYP": 0.9084, "MI": 0.9401, "NORM": 0.9522,
                                                 "STTC": 0.9373}),
    "intermediate_concat_weighted_bce": ((0.9357, 0.9304, 0.9406), {"CD": 0.9281, "HYP": 0.9161, "MI": 0.9407,
                                                                    "NORM": 0.9520, "STTC": 0.9414}),
    "ensemble_greedy": ((0.9392, 0.9340, 0.9440), {"CD": 0.9313, "HYP": 0.9202, "MI": 0.9462, "NORM": 0.9551,
                                                   "STTC": 0.9431}),
}
PRESENT = [name for name in BUNDLED_MODELS if (bundled_root() / name / "test" / "metrics.json").is_file()]


def test_every_bundled_model_has_pinned_figures():
    assert set(BUNDLED_MODELS) <= set(REPORTED)


@pytest.mark.parametrize("name", PRESENT)
def test_listed_and_stored_figures_are_the_reported_ones(name):
    (point, low, high), per_class = REPORTED[name]
    listed = {m.name: m for m in list_bundled()}[name]
    assert listed.test_macro_auc == pytest.approx(point, abs=5e-5)
    stored = json.loads((bundled_root() / name / "test" / "metrics.json").read_text())
    assert stored["split"] == "test" and stored["n_records"] == 2163
    assert (stored["macro_auc"]["value"], stored["macro_auc"]["low"], stored["macro_auc"]["high"]) == \
        pytest.approx((point, low, high), abs=5e-5)
    assert {c: v["auc"] for c, v in stored["per_class"].items()} == pytest.approx(per_class, abs=5e-5)


@pytest.mark.parametrize("name", PRESENT)
def test_macro_auc_recomputed_by_sklearn_from_the_committed_predictions(name, ptbxl_tables):
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from ecgnet.data import ptbxl

    db, statements = ptbxl_tables
    predictions = pd.read_csv(bundled_root() / name / "test" / "predictions.csv").set_index("ecg_id")
    fold10 = db.index[db["strat_fold"] == ptbxl.TEST_FOLD]
    labelled = [i for i in fold10 if ptbxl.task_labels(db.at[i, "scp_codes"], statements, "superdiagnostic")]
    assert sorted(predictions.index) == sorted(labelled) and len(labelled) == 2163  # records with a superclass
    labels = [ptbxl.task_labels(db.at[i, "scp_codes"], statements, "superdiagnostic") for i in predictions.index]
    aucs = {c: roc_auc_score(np.array([c in s for s in labels]), predictions[c]) for c in predictions.columns}
    (point, _, _), per_class = REPORTED[name]
    assert aucs == pytest.approx(per_class, abs=2e-4)  # the CSV holds 6 decimals
    assert np.mean(list(aucs.values())) == pytest.approx(point, abs=2e-4)
