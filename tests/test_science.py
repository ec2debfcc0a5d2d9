"""Tests that fail where the science breaks (issue 12 §5).

* the headline figures of docs/results.md and docs/comparison.md recomputed from the committed fold-10
  predictions with scikit-learn;
* per-class decision metrics, the Youden threshold and the bootstrap interval pinned against
  scikit-learn / brute-force / hand-rolled references on non-separable data;
* the paired bootstrap of ``compare`` on a case where one model is truly better, and ``compare``
  run through the CLI;
* Integrated Gradients completeness of the frequency attributions;
* ``train --resume`` continuing an interrupted run; ``predict`` on several different files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score
from typer.testing import CliRunner

from ecgnet.evaluation import metrics as M

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs"
# The pages that print the headline figures (the README's own table is checked by tests/test_docs_figures.py).
README = "\n".join((REPO / "docs" / page).read_text(encoding="utf-8") for page in ("results.md", "comparison.md"))


def _noisy(seed: int = 0, n: int = 600, k: int = 5, noise: float = 1.0):
    """Multi-label y (every class has both values) and overlapping scores: not separable."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < rng.uniform(0.1, 0.5, k)).astype(int)
    p = y + rng.normal(0, noise, (n, k))
    p = 1 / (1 + np.exp(-p))
    return y, np.round(p, 3)  # rounding makes ties, as in the 6-decimal predictions files


# --- 1. README figures = committed predictions = sklearn ---------------------------------------

@pytest.fixture(scope="module")
def fold10_labels(ptbxl_root):
    from ecgnet.data import ptbxl

    root = ptbxl.data_root(ptbxl_root)
    labels = ptbxl.make_labels(ptbxl.read_database(root), ptbxl.read_statements(root), "superdiagnostic")
    test = labels.split("test")
    return labels.classes, pd.DataFrame(labels.y[test], index=labels.ecg_ids[test], columns=labels.classes)


def _committed_auc(run: str, fold10_labels) -> tuple[float, np.ndarray, np.ndarray]:
    classes, y = fold10_labels
    pred = pd.read_csv(RUNS / run / "test" / "predictions.csv").set_index("ecg_id")
    assert sorted(pred.index) == sorted(y.index), f"{run}: predictions are not exactly fold 10"
    y = y.loc[pred.index, classes].to_numpy(int)
    p = pred[classes].to_numpy(float)
    return float(roc_auc_score(y, p, average="macro")), y, p


def _readme_row(run: str) -> str:
    """The README results-table row of ``run`` (the one with an AUC and its interval)."""
    rows = [line for line in README.splitlines()
            if re.match(rf"\| `{run}`( ★)? \|", line) and re.search(r"\| 0\.\d{4} \[", line)]
    assert len(rows) == 1, f"README has {len(rows)} results-table rows for {run}"
    return rows[0]


@pytest.mark.parametrize("run, stated", [("baseline_time", "0.9338"),
                                         ("intermediate_concat_weighted_bce", "0.9357")])
def test_readme_macro_auc_is_the_committed_predictions(fold10_labels, run, stated):
    auc, _, _ = _committed_auc(run, fold10_labels)
    assert f"{auc:.4f}" == stated  # the predictions give the figure…
    assert f"| {stated} [" in _readme_row(run)  # …and the README's results table states it
    assert f"AUC **{stated}" in README or f"Macro AUC {stated}" in README or f"AUC {stated}" in README
    # the run's own metrics.json agrees with sklearn on its predictions
    saved = json.loads((RUNS / run / "test" / "metrics.json").read_text())["macro_auc"]["value"]
    assert saved == pytest.approx(auc, abs=5e-6)


def test_readme_headline_and_paired_delta(fold10_labels):
    base, y, p_base = _committed_auc("baseline_time", fold10_labels)
    best, y2, p_best = _committed_auc("intermediate_concat_weighted_bce", fold10_labels)
    assert f"**Macro AUC {base:.4f} [" in README
    assert f"AUC **{best:.4f} [" in README
    # the Δ column of the best model is the paired difference of the two prediction files
    pred_b = pd.read_csv(RUNS / "baseline_time" / "test" / "predictions.csv").set_index("ecg_id")
    pred_a = pd.read_csv(RUNS / "intermediate_concat_weighted_bce" / "test" / "predictions.csv").set_index("ecg_id")
    classes, _ = fold10_labels
    p_b = pred_b.loc[pred_a.index, classes].to_numpy(float)
    diff = M.macro_auc(y2, p_best) - M.macro_auc(y2, p_b)
    assert f"| {diff:+.4f} [" in _readme_row("intermediate_concat_weighted_bce")
    assert diff == pytest.approx(best - base, abs=1e-9)


# --- 2. decision metrics, Youden threshold, bootstrap interval ---------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_metrics_match_sklearn(seed):
    y, p = _noisy(seed)
    rng = np.random.default_rng(100 + seed)
    thresholds = np.quantile(p, rng.uniform(0.2, 0.8, y.shape[1]), axis=0).diagonal()
    got = M.threshold_metrics(y, p, thresholds)
    f1s = []
    for k in range(y.shape[1]):
        pred = (p[:, k] >= thresholds[k]).astype(int)
        tn, fp, fn, tp = confusion_matrix(y[:, k], pred, labels=[0, 1]).ravel()
        assert 0 < tp < tp + fn and 0 < tn < tn + fp  # the threshold really makes errors both ways
        assert got["sensitivity"][k] == pytest.approx(tp / (tp + fn), abs=1e-12)
        assert got["specificity"][k] == pytest.approx(tn / (tn + fp), abs=1e-12)
        assert got["accuracy"][k] == pytest.approx((tp + tn) / len(y), abs=1e-12)
        assert got["balanced_accuracy"][k] == pytest.approx(balanced_accuracy_score(y[:, k], pred), abs=1e-12)
        f1s.append(f1_score(y[:, k], pred))
        assert got["f1"][k] == pytest.approx(f1s[-1], abs=1e-12)
    assert got["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-12)
    assert got["macro_f1"] == pytest.approx(f1_score(y, (p >= thresholds).astype(int), average="macro"), abs=1e-12)


def _youden(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = p >= t
    return pred[y == 1].mean() + (~pred[y == 0]).mean() - 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_threshold_is_the_brute_force_maximum(seed):
    y, p = _noisy(seed, noise=1.5)
    thresholds = M.choose_thresholds(y, p)
    for k in range(y.shape[1]):
        candidates = np.append(np.unique(p[:, k]), np.inf)  # every distinct decision on this data
        j = np.array([_youden(y[:, k], p[:, k], t) for t in candidates])
        assert 0 < j.max() < 1  # not separable: the choice matters
        assert np.isfinite(thresholds[k])
        assert _youden(y[:, k], p[:, k], thresholds[k]) == pytest.approx(j.max(), abs=1e-12)
        # and threshold_metrics at that threshold reports the same J
        tm = M.threshold_metrics(y, p, thresholds)
        assert tm["sensitivity"][k] + tm["specificity"][k] - 1 == pytest.approx(j.max(), abs=1e-12)


@pytest.mark.parametrize("ci", [0.90, 0.95])
def test_bootstrap_ci_is_the_percentile_bootstrap(ci):
    y, p = _noisy(3, n=300)
    point, low, high = M.bootstrap_ci(y, p, n_boot=200, ci=ci, seed=7)
    idx = M.bootstrap_indices(len(y), 200, 7, y)
    values = np.array([M.macro_auc(y[i], p[i]) for i in idx])
    lo, hi = np.percentile(values, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    assert (low, high) == (lo, hi)
    assert point == M.macro_auc(y, p)
    assert point == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)
    # and each resample is scored as sklearn would score it
    for i in idx[:5]:
        assert M.macro_auc(y[i], p[i]) == pytest.approx(roc_auc_score(y[i], p[i], average="macro"), abs=1e-12)


# --- 3. paired bootstrap -----------------------------------------------------------------------

def test_paired_bootstrap_finds_the_better_model():
    rng = np.random.default_rng(5)
    y = (rng.random((500, 5)) < 0.3).astype(int)
    a = y + rng.normal(0, 0.6, y.shape)  # truly better
    b = y + rng.normal(0, 1.2, y.shape)
    ab = M.paired_bootstrap(y, a, b, n_boot=300, seed=0)
    ba = M.paired_bootstrap(y, b, a, n_boot=300, seed=0)
    assert ab["diff"] == M.macro_auc(y, a) - M.macro_auc(y, b)
    assert ab["diff"] > 0.05 and ab["low"] > 0 and ab["p_value"] < 0.01
    assert ba["diff"] == -ab["diff"]
    assert ba["high"] == pytest.approx(-ab["low"], abs=1e-12) and ba["low"] == pytest.approx(-ab["high"], abs=1e-12)
    assert ba["p_value"] > 0.99
    # equal models: no difference, no significance
    same = M.paired_bootstrap(y, a, a, n_boot=100, seed=0)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0


# --- 4. `ecgnet compare` through the CLI -------------------------------------------------------

def test_compare_cli(ptbxl_root, fold10_labels, tmp_path, monkeypatch):
    from ecgnet.cli import app

    monkeypatch.chdir(tmp_path)
    base, other = RUNS / "metadata", RUNS / "frequency"
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(base), str(other), "--baseline", str(base),
                                      "--data", str(ptbxl_root), "--no-explain", "--ablation-records", "0",
                                      "--n-boot", "50", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "comparison.json").read_text())
    runs = {r["name"]: r for r in report["runs"]}
    assert set(runs) == {"metadata", "frequency"} and report["baseline"] == "metadata"
    assert runs["metadata"]["vs_baseline"]["diff"] == 0
    classes, labels = fold10_labels
    pa = pd.read_csv(other / "test" / "predictions.csv").set_index("ecg_id")
    pb = pd.read_csv(base / "test" / "predictions.csv").set_index("ecg_id").loc[pa.index]
    y = labels.loc[pa.index, classes].to_numpy(int)
    expected = M.paired_bootstrap(y, pa[classes].to_numpy(float), pb[classes].to_numpy(float), n_boot=50, seed=0)
    got = runs["frequency"]["vs_baseline"]
    assert got["diff"] == pytest.approx(expected["diff"], abs=1e-12)
    assert got["diff"] == pytest.approx(roc_auc_score(y, pa[classes]) - roc_auc_score(y, pb[classes]), abs=1e-12)
    # the same records in the same (fold-10, ecg_id) order → the same resamples → the same interval
    assert list(pa.index) == sorted(pa.index)
    assert (got["low"], got["high"], got["p_value"]) == pytest.approx(
        (expected["low"], expected["high"], expected["p_value"]), abs=1e-12)


# --- 5. frequency attributions: Integrated Gradients completeness ------------------------------

@pytest.mark.parametrize("phase", [False, True])
def test_frequency_attributions_are_complete(phase):
    from ecgnet.explain.attributions import frequency_attributions
    from ecgnet.models import build_model

    torch.manual_seed(0)
    model = build_model("frequency_transformer", 5, phase=phase, d_model=32, n_layers=1, n_heads=4).eval()
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.5, (12, 250)).astype(np.float32)
    metadata = np.zeros(8, dtype=np.float32)
    for target in (0, 3):
        attr = frequency_attributions(model, signal, metadata, target, window=250, start=0, n_steps=300)
        assert attr is not None and attr.values.shape == (12, 126)
        np.testing.assert_allclose(attr.frequencies, np.fft.rfftfreq(250, 1 / 100))
        with torch.no_grad():
            x = torch.as_tensor(signal)[None]
            m = torch.as_tensor(metadata)[None]
            gap = float(model(x, m)[0, target] - model(torch.zeros_like(x), m)[0, target])
        assert abs(gap) > 1e-3  # something to explain
        # completeness: attributions add up to f(x) − f(baseline), the baseline being the 0 mV signal
        assert attr.values.sum() == pytest.approx(gap, abs=0.02 * abs(gap) + 1e-4)
        assert abs(attr.delta) <= 0.02 * abs(gap) + 1e-4


# --- 6. --resume -------------------------------------------------------------------------------

class _Killed(Exception):
    """Stands for the process being killed mid-training."""


@pytest.mark.slow
def test_resume_continues_an_interrupted_run(ptbxl_root, tmp_path, monkeypatch):
    """A 2-epoch run killed as epoch 2 starts, then `train --resume`: epoch 2 only is trained, and the
    log, run.json and evaluation cover both epochs."""
    from conftest import TINY_CONFIG, _cache_dir
    from ecgnet.config import parse_config
    from ecgnet.training import fit
    from ecgnet.training.module import ClassifierModule

    monkeypatch.chdir(tmp_path)
    config = parse_config({**TINY_CONFIG, "name": "resumed",
                           "data": {**TINY_CONFIG["data"], "max_train_records": 200},
                           "training": {**TINY_CONFIG["training"], "epochs": 2}})
    started, fit_calls, kill_at = [], [], [1]
    original_start, original_fit = ClassifierModule.on_train_epoch_start, fit.L.Trainer.fit

    def on_train_epoch_start(self):
        started.append(self.current_epoch)
        if self.current_epoch in kill_at:
            raise _Killed
        return original_start(self)

    def spy_fit(self, *args, **kwargs):
        fit_calls.append(kwargs.get("ckpt_path"))
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(ClassifierModule, "on_train_epoch_start", on_train_epoch_start)
    monkeypatch.setattr(fit.L.Trainer, "fit", spy_fit)
    run_dir = tmp_path / "resumed"
    with pytest.raises(_Killed):
        fit.train(config, ptbxl_root, runs_dir=tmp_path, cache_dir=_cache_dir(), progress=False, n_boot=10)
    assert started == [0, 1] and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "run.json").exists()
    first = pd.read_csv(run_dir / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert first["epoch"].tolist() == [0]

    kill_at.clear()
    run_dir, results = fit.train(config, ptbxl_root, runs_dir=tmp_path, resume=True, cache_dir=_cache_dir(),
                                 progress=False, n_boot=10)
    assert fit_calls == [None, run_dir / "checkpoints" / "last.ckpt"]
    assert started == [0, 1, 1]  # the resumed session trained epoch 2 only
    epochs = pd.read_csv(run_dir / "logs" / "metrics.csv").dropna(subset=["val_macro_auc"])
    assert epochs["epoch"].tolist() == [0, 1]  # the log keeps the first session's epoch
    assert epochs["val_macro_auc"].iloc[0] == first["val_macro_auc"].iloc[0]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["epochs_run"] == 2 and info["best_epoch"] in (1, 2)
    # run.json's provenance is the finishing session's; `sessions` keeps both, the starting one first
    assert [s["date"] for s in info["sessions"]] == sorted(s["date"] for s in info["sessions"])
    assert len(info["sessions"]) == 2 and info["sessions"][-1]["date"] == info["date"]
    assert all(s["git_revision"] == info["git_revision"] for s in info["sessions"])
    assert info["best_val_macro_auc"] == pytest.approx(epochs["val_macro_auc"].max())
    assert (run_dir / "test" / "predictions.csv").is_file() and 0.5 < results["test"]["macro_auc"]["value"] <= 1


# --- 7. predict on several different files -----------------------------------------------------

def test_predict_several_files_each_its_own_result(untrained_run, write_record, tmp_path):
    from ecgnet.cli import app
    from ecgnet.inference.predictor import Predictor

    paths = [write_record(f"rec{seed}", seed=seed)[0] for seed in (1, 2, 3)]
    result = CliRunner().invoke(app, ["predict", *map(str, paths), "--checkpoint", str(untrained_run), "--json",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["record"] for r in out] == [str(p) for p in paths]
    predictor = Predictor(untrained_run)
    alone = [predictor.predict_file(p) for p in paths]
    for got, expected in zip(out, alone):
        assert got == json.loads(json.dumps(expected))
    probs = [tuple(d["probability"] for d in sorted(r["diagnoses"], key=lambda d: d["class"])) for r in out]
    assert len(set(probs)) == len(paths), f"different records, same probabilities: {probs}"


def test_resume_refuses_a_changed_config(tmp_path):
    """The schedule and data live in the checkpoint: resuming with other epochs would crash mid-run."""
    from conftest import TINY_CONFIG
    from ecgnet.config import parse_config
    from ecgnet.errors import ECGNetError
    from ecgnet.training.fit import pin_or_check_config

    saved = tmp_path / "checkpoints" / "config.yaml"
    config = parse_config(TINY_CONFIG, source="tiny")
    pin_or_check_config(config, saved, resuming=False)  # a fresh start records its config
    pin_or_check_config(config, saved, resuming=True)
    pin_or_check_config(config.model_copy(update={"training": config.training.model_copy(update={"threads": 1})}),
                    saved, resuming=True)  # threads change speed, not the run
    longer = config.model_copy(update={"training": config.training.model_copy(update={"epochs": 9})})
    with pytest.raises(ECGNetError, match=r"cannot resume with a changed config \(training.epochs\)"):
        pin_or_check_config(longer, saved, resuming=True)


def test_committed_calls_are_sklearns_at_the_thresholds_chosen_on_fold_9(fold10_labels):
    """The threshold figures of a committed run (each class's sensitivity, specificity, F1, balanced accuracy,
    and macro F1 and mean balanced accuracy) recomputed with sklearn from its fold-10 predictions at the
    thresholds val/metrics.json chose on fold 9 — not read back from the file the same code wrote."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    classes, _ = fold10_labels
    _, y, p = _committed_auc("baseline_time", fold10_labels)
    test = json.loads((RUNS / "baseline_time" / "test" / "metrics.json").read_text())
    val = json.loads((RUNS / "baseline_time" / "val" / "metrics.json").read_text())
    f1s, bals = [], []
    for k, c in enumerate(classes):
        t = val["per_class"][c]["threshold"]
        assert not np.any(np.abs(p[:, k] - t) < 1e-6)  # no call turns on the predictions' 6 decimals
        calls, e = (p[:, k] >= t).astype(int), test["per_class"][c]
        assert e["threshold"] == pytest.approx(t)
        assert e["sensitivity"] == pytest.approx(recall_score(y[:, k], calls))
        assert e["specificity"] == pytest.approx(recall_score(1 - y[:, k], 1 - calls))
        assert e["f1"] == pytest.approx(f1_score(y[:, k], calls))
        assert e["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[:, k], calls))
        f1s.append(f1_score(y[:, k], calls))
        bals.append(balanced_accuracy_score(y[:, k], calls))
    assert test["macro_f1"] == pytest.approx(np.mean(f1s))
    assert test["mean_balanced_accuracy"] == pytest.approx(np.mean(bals))
