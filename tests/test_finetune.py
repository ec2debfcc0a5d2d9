"""Fine-tuning from a shipped model: the head kept (reordered) for the same classes, a new one for others,
only the output layer trainable in head mode; a tiny cross-validated fine-tune through the CLI that must
beat chance and writes RUN/cv/predictions.csv; PTB-XL through a manifest trains as PTB-XL does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
import pandas as pd
import pytest
import torch
import wfdb
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.data.signals import LEADS
from ecgnet.errors import ECGNetError
from ecgnet.training.finetune import (FrozenInEval, default_mode, finetune_config, load_source, output_keys,
                                     start_model)


@pytest.fixture(scope="module")
def source():
    return load_source("long_time")


def test_same_classes_keep_the_head_in_the_collections_order(source):
    classes = list(reversed(source.classes))
    model, facts = start_model(source, classes, "full")
    head = output_keys(source.config, len(classes))
    assert head and "reordered" in facts["head"]
    for k in head:
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), source.model.state_dict()[k].numpy()[::-1])
    body = next(k for k in model.state_dict() if k not in head and model.state_dict()[k].dtype.is_floating_point)
    assert torch.equal(model.state_dict()[body], source.model.state_dict()[body])
    assert facts["frozen_parameters"] == 0


def test_some_of_the_runs_classes_keep_their_rows_of_its_head(source):
    """A site labelling only MI and NORM: the run's rows for them are kept (it got a new, random output layer and
    --mode head, saying 'new: none'), so the default is full fine-tuning and α-interpolation applies."""
    from ecgnet.training.finetune import check_alpha

    classes = ["NORM", "MI"]
    model, facts = start_model(source, classes, "full")
    assert facts["head"] == "kept (the rows of 2 of its 5 classes)" and default_mode(source, classes) == "full"
    for k in output_keys(source.config, len(classes)):
        rows = [source.classes.index(c) for c in classes]
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), source.model.state_dict()[k].numpy()[rows])
    x, meta = torch.randn(2, 12, 250), torch.zeros(2, 8)
    source.model.eval(), model.eval()
    with torch.no_grad():
        full, part = source.model(x, meta), model(x, meta)
    np.testing.assert_allclose(part.numpy(), full.numpy()[:, rows], atol=1e-5)  # the same logits for those classes
    config = finetune_config(source, None, [], "full", classes=classes)
    assert config.training.finetune_alpha == 0.5 and config.training.lr == 1e-3  # the run's-own-classes recipe
    check_alpha(config, source, classes)  # interpolation toward the run is defined


def test_a_cyclic_class_order_maps_each_output_to_its_class(source):
    """A 5-cycle of the classes (a reversal is its own inverse, so it cannot tell the permutation from its
    inverse): output i of the started model is the source's output for class i, on the same input."""
    classes = source.classes[1:] + source.classes[:1]
    model, _ = start_model(source, classes, "full")
    x = torch.randn(2, 12, 250, generator=torch.Generator().manual_seed(0))
    m = torch.zeros(2, 8)
    with torch.no_grad():
        ours, theirs = model.eval()(x, m), source.model.eval()(x, m)
    for i, c in enumerate(classes):
        torch.testing.assert_close(ours[:, i], theirs[:, source.classes.index(c)])


def test_other_classes_get_a_new_head_and_head_mode_freezes_the_rest(source):
    model, facts = start_model(source, ["X", "Y", "Z"], "head")
    head = output_keys(source.config, 3)
    assert facts["head"].startswith("new (3 classes")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == head & {n for n, _ in model.named_parameters()}
    assert facts["trainable_parameters"] < 2000 < facts["frozen_parameters"]
    model.train()
    FrozenInEval().on_train_epoch_start(None, type("M", (), {"model": model})())
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns and not any(m.training for m in bns)


def test_finetune_config_base_and_overrides(source):
    config = finetune_config(source, None, ["training.epochs=3", "name=mine"], "head")
    assert config.name == "mine" and config.training.epochs == 3 and config.training.ema_decay is None
    assert config.model == source.config.model and config.training.lr == pytest.approx(1e-2)
    with pytest.raises(ECGNetError, match="--mode must be one of"):
        finetune_config(source, None, [], "everything")


def test_default_mode_and_learning_rate_follow_the_head(source):
    """The model's own classes (any order): every layer trains, at lr 1e-3; new classes: only a new head, at
    1e-2; an explicit full fine-tune to new classes keeps the small-data schedule's 3e-3."""
    own, new = list(reversed(source.classes)), ["X", "Y"]
    assert default_mode(source, own) == "full" and default_mode(source, new) == "head"
    lr = lambda mode, classes: finetune_config(source, None, [], mode, classes=classes).training.lr  # noqa: E731
    assert lr("full", own) == pytest.approx(1e-3) and lr("full", new) == pytest.approx(3e-3)
    assert lr("head", own) == pytest.approx(1e-2) == lr("head", new)
    assert finetune_config(source, None, ["training.lr=5e-4"], "full", classes=own).training.lr == pytest.approx(5e-4)
    alpha = lambda mode, classes: finetune_config(source, None, [], mode, classes=classes).training.finetune_alpha  # noqa: E731
    assert alpha("full", own) == 0.5 == alpha("head", own) and alpha("head", new) is None is alpha("full", new)


def test_interpolated_weights_lie_between_the_start_and_the_fine_tuned_ones(source):
    from ecgnet.training.finetune import interpolate_weights

    start = {k: v.clone() for k, v in source.model.state_dict().items()}
    tuned, _ = start_model(source, source.classes, "full")
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(1.0)
    tuned_state = {k: v.clone() for k, v in tuned.state_dict().items()}
    mixed = interpolate_weights(tuned, start, 0.25).state_dict()
    for k, v in mixed.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.75 * start[k] + 0.25 * tuned_state[k])
        else:  # batch counters: the fine-tuned model's
            assert torch.equal(v, tuned_state[k])


def test_finetune_alpha_needs_a_source_with_its_own_classes(source, tmp_path):
    from ecgnet.training.finetune import check_alpha
    from ecgnet.training.fit import train

    config = finetune_config(source, None, [], "full", classes=source.classes)
    check_alpha(config, source, list(reversed(source.classes)))  # any order: fine
    with pytest.raises(ECGNetError, match="needs the run's own classes"):
        check_alpha(config, source, ["X", "Y"])
    with pytest.raises(ECGNetError, match="it needs --from"):
        check_alpha(config, None, source.classes)
    with pytest.raises(ECGNetError, match="it needs --from"):  # refused before anything is written
        train(config.model_copy(update={"name": "never"}), None, tmp_path)
    assert not (tmp_path / "never").exists()


def test_finetuning_the_distilled_default_does_not_distill():
    """The shipped default learnt from a teacher's PTB-XL soft targets; a site's fine-tune learns its labels."""
    distilled = load_source("distill_long_time")
    assert distilled.config.training.distill_teacher
    assert finetune_config(distilled, None, [], "head").training.distill_teacher is None
    # it was timed on 1 thread: a site's fine-tune runs on the machine's threads (a wheel-user audit), unless set
    assert distilled.config.training.threads == 1 and finetune_config(distilled, None, [], "head").training.threads is None
    assert finetune_config(distilled, None, ["training.threads=3"], "head").training.threads == 3


def test_an_ensemble_is_refused_naming_its_members_and_which_are_bundled():
    """`--from ensemble_greedy` said 'start from one of its members' without naming them, though only some ship in
    the wheel (a user audit): each member is named, the bundled ones (the same weights) as --from takes them."""
    with pytest.raises(ECGNetError) as e:
        load_source("ensemble_greedy")
    said = str(e.value)
    assert said.startswith("ensemble_greedy: an ensemble cannot be fine-tuned; start from one of its 8 members — "
                           "bundled, give its name to --from: long_time, intermediate_concat_weighted_bce; not "
                           "bundled, give the run directory it was made from if you have it: ")
    for member in ("early", "s4d_time", "multitask_time", "intermediate_concat", "intermediate_attention",
                   "intermediate_concat_oversample"):
        assert f"{member} (runs/{member})" in said
    for bundled in ("long_time", "intermediate_concat_weighted_bce"):
        assert f"{bundled} (runs/" not in said


def write_learnable(folder: Path, n: int = 36, fs: int = 100, gain: float = 1000.0) -> Path:
    """10 s records at ``fs`` Hz (``gain`` ADC units per mV) where class X is an 8 Hz, 1.5 mV oscillation and
    Y a 1 Hz, 2 mV wave in the limb leads, on noise; a manifest with sources, patients and both classes."""
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(10 * fs) / fs
    for i in range(n):
        x, yy = i % 2, (i // 2) % 2
        sig = rng.normal(0, 0.1, (10 * fs, 12)) + x * 1.5 * np.sin(2 * np.pi * 8 * t)[:, None]
        sig[:, :3] += yy * 2 * np.sin(2 * np.pi * 1 * t)[:, None]
        wfdb.wrsamp(f"s{i}", fs=fs, units=["mV"] * 12, sig_name=list(LEADS), p_signal=np.round(sig, 3),
                    fmt=["16"] * 12, adc_gain=[gain] * 12, baseline=[0] * 12, write_dir=str(folder))
        rows.append({"record": f"s{i}.hea", "patient": f"p{i // 2}", "source": f"site{i % 3}", "X": x, "Y": yy})
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    return folder / "m.csv"


@pytest.mark.slow
@pytest.mark.parametrize("fs, gain", [(100, 1000.0), (500, 200.0)])  # PTB-XL's, and a foreign cart's rate and gain
def test_tiny_cv_finetune_beats_chance(tmp_path, monkeypatch, fs, gain):
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    manifest = write_learnable(tmp_path, fs=fs, gain=gain)
    result = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "3",
                                      "--runs-dir", str(tmp_path / "runs"), "--set", "training.epochs=6",
                                      "--set", "training.threads=1", "--set", "name=tiny_ft", "--n-boot", "50",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny_ft"
    predictions = pd.read_csv(run / "cv" / "predictions.csv")
    assert list(predictions.columns) == ["record", "fold", "source", "patient", "y_X", "y_Y", "p_X", "p_Y"]
    assert len(predictions) == 36 and sorted(predictions["fold"].unique()) == [1, 2, 3]
    labels = pd.read_csv(manifest).set_index("record").loc[predictions["record"], ["X", "Y"]].to_numpy()
    assert (predictions[["y_X", "y_Y"]].to_numpy() == labels).all()  # the labels scored, beside the predictions
    metrics = json.loads((run / "cv" / "metrics.json").read_text())
    assert metrics["pooled"]["macro_auc"]["value"] > 0.75, metrics["pooled"]
    pooled = np.mean([roc_auc_score(predictions[f"y_{c}"], predictions[f"p_{c}"]) for c in "XY"])
    assert metrics["pooled"]["macro_auc"]["value"] == pytest.approx(pooled, abs=1e-5)  # the file alone rescores it
    assert "10 s segments" in metrics["protocol"]["scored_on"]  # said where it is read
    assert "scored on: each record as predict scores it" in (run / "cv" / "report.md").read_text()
    assert "schedule (each fold and the final model): lr 0.01 (one-cycle), batch 32, at most 6 epochs, early " \
           "stopping after 8" in (run / "report.md").read_text()  # what fine-tuning did, beside how it scored
    info = json.loads((run / "run.json").read_text())
    assert info["finetune"]["from"] == "long_time" and info["finetune"]["head"].startswith("new")
    assert info["finetune"]["mode"] == "head"  # new classes: head-only by default
    assert (run / "val" / "metrics.json").is_file() and (run / "report.md").is_file()
    from ecgnet.runs import load_run

    model, config, _ = load_run(run)  # the final model is a run like any other
    assert config.name == "tiny_ft"
    shown = CliRunner().invoke(app, ["predict", str(tmp_path / "s1.hea"), "--checkpoint", str(run), "--resample",
                                     "--no-progress"])
    assert shown.exit_code == 0, shown.output  # its thresholds are the cross-validation's, and it says so
    assert "threshold (chosen on pooled out-of-fold predictions of the cross-validation)" in " ".join(shown.output.split())


@pytest.mark.slow
def test_cv_compares_with_zero_shot_on_the_runs_own_classes(tmp_path, monkeypatch):
    """With the run's own classes (NORM and MI, later in its order than CD and HYP) cross-validation also
    scores the shipped model as it is: its probabilities are long_time's by class name, its macro AUC is
    sklearn's on them, and the paired difference is fine-tuned minus zero-shot, not the reverse."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.data.readers import read_ecg_any

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 24)
    table = pd.read_csv(manifest).rename(columns={"X": "NORM", "Y": "MI"})
    table["MI"] = table["MI"].astype(object)
    table.loc[[1, 6], "MI"] = ""  # unknown: the paired difference covered only classes without unknowns (found
    table.to_csv(manifest, index=False)  # in a site audit: +0.004 over 4 classes beside 5-class AUCs)
    table = pd.read_csv(manifest)
    result = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "2",
                                      "--runs-dir", str(tmp_path / "runs"), "--set", "training.epochs=2", "--set",
                                      "training.threads=1", "--set", "name=zs", "--n-boot", "50", "--no-progress"])
    assert result.exit_code == 0, result.output
    cv = tmp_path / "runs" / "zs" / "cv"
    metrics = json.loads((cv / "metrics.json").read_text())
    zero = pd.read_csv(cv / "zero_shot_predictions.csv")
    oof = pd.read_csv(cv / "predictions.csv")
    y = table.set_index("record").loc[zero["record"], ["NORM", "MI"]].to_numpy(float)
    assert np.array_equal(oof[["y_NORM", "y_MI"]].to_numpy(float), y, equal_nan=True)  # unknown: an empty cell
    known = ~np.isnan(y)
    sk = np.mean([roc_auc_score(y[known[:, k], k], zero[f"p_{c}"][known[:, k]]) for k, c in enumerate(["NORM", "MI"])])
    assert metrics["zero_shot"]["macro_auc"]["value"] == pytest.approx(sk, abs=1e-6)
    predictor = Predictor("long_time")
    first = predictor.predict_record(read_ecg_any(tmp_path / zero["record"][0], predictor.rate, resample=True))
    by_class = {d["class"]: d["probability"] for d in first["diagnoses"]}
    assert (zero["p_NORM"][0], zero["p_MI"][0]) == pytest.approx((by_class["NORM"], by_class["MI"]), abs=1e-5)
    oof_p = oof.set_index("record").loc[zero["record"]]
    pooled = np.mean([roc_auc_score(y[known[:, k], k], oof_p[f"p_{c}"][known[:, k]])
                      for k, c in enumerate(["NORM", "MI"])])
    assert metrics["vs_zero_shot"]["diff"] == pytest.approx(pooled - sk, abs=1e-6)
    assert metrics["vs_zero_shot"]["classes"] == ["NORM", "MI"]  # MI too, on its known records
    assert metrics["vs_zero_shot"]["diff"] == pytest.approx(metrics["pooled"]["macro_auc"]["value"]
                                                            - metrics["zero_shot"]["macro_auc"]["value"], abs=1e-9)
    # two records per patient: the intervals resample patients, each with both records, and say so
    assert metrics["vs_zero_shot"]["resampled"] == metrics["pooled"]["macro_auc"]["resampled"] == "patients"
    assert "intervals over patients, each with all their records" in (cv / "report.md").read_text()
    page = (tmp_path / "runs" / "zs" / "report.html").read_text()  # the run's report, with its figures, in HTML
    assert "<h2 id='fine-tuned-against-zero-shot'>" in page and page.count("data:image/png;base64,") == 3
    assert "zero-shot long_time" in page and "ROC curves, pooled out-of-fold (dashed: zero-shot long_time)" in page
    for folder in (cv, cv.parent):
        assert sorted(p.name for p in (folder / "figures").glob("*.png")) == ["auc.png", "folds.png", "roc.png"]
        assert "![ROC curves" in (folder / "report.md").read_text()
    # every record trained the final model: the site's profile is fitted on the out-of-fold predictions instead
    # (calibrate --from-cv), as the module's own fit gives it on cv/predictions.csv's arrays, and predict applies it
    from ecgnet.evaluation.recalibration import apply_calibrator, fit_calibrator

    run = cv.parent
    calibrated = CliRunner().invoke(app, ["calibrate", str(run), "--site", "here", "--from-cv", "--folds", "3",
                                          "--n-boot", "20", "--no-progress"])
    assert calibrated.exit_code == 0, calibrated.output
    assert "optimistic" not in calibrated.output and "out-of-fold predictions of 2 fold models" in calibrated.output
    profile = json.loads((run / "profiles" / "here.json").read_text())
    assert profile["fitted_on"]["probabilities"] == "out-of-fold" and profile["fitted_on"]["records"] == 24
    assert list(profile["classes"]) == ["NORM", "MI"]
    for c in ["NORM", "MI"]:  # MI with its unknown labels left out
        direct = fit_calibrator(oof[f"y_{c}"], oof[f"p_{c}"], "temperature")
        assert profile["calibrators"][c]["kind"] == direct["kind"], c
        assert profile["calibrators"][c].get("temperature") == pytest.approx(direct.get("temperature"), rel=1e-6), c
    sited = Predictor(run, site="here").predict_record(read_ecg_any(tmp_path / oof["record"][0], 100, resample=True))
    plain = Predictor(run).predict_record(read_ecg_any(tmp_path / oof["record"][0], 100, resample=True))
    raw = {d["class"]: d["probability"] for d in plain["diagnoses"]}
    for d in sited["diagnoses"]:
        assert d["probability"] == pytest.approx(float(apply_calibrator(raw[d["class"]],
                                                                        profile["calibrators"][d["class"]])), abs=1e-6)
        assert d["positive"] == (d["probability"] >= profile["thresholds"][d["class"]])


@pytest.mark.slow
def test_cv_resume_reuses_finished_folds_and_retrains_the_missing_one(tmp_path, monkeypatch):
    """A cross-validation killed after some folds: --resume keeps the folds that finished (same weights, same
    out-of-fold predictions) and trains the rest; a changed config is refused, not silently mixed in."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 24)
    args = ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "3", "--runs-dir",
            str(tmp_path / "runs"), "--set", "training.epochs=2", "--set", "training.threads=1", "--set", "name=cv",
            "--n-boot", "20", "--no-progress"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    cv = tmp_path / "runs" / "cv" / "cv"
    stamp = {f: (cv / f / "model.safetensors").stat().st_mtime_ns for f in ("fold_1", "fold_3")}
    before = pd.read_csv(cv / "predictions.csv")
    import shutil

    shutil.rmtree(cv / "fold_2")  # killed before fold 2 was written
    (tmp_path / "runs" / "cv" / "run.json").unlink()
    again = CliRunner().invoke(app, args + ["--resume"])
    assert again.exit_code == 0, again.output
    assert {f: (cv / f / "model.safetensors").stat().st_mtime_ns for f in stamp} == stamp  # not retrained
    reused = [line for line in again.output.splitlines() if "reused" in line]  # and each says so (a user audit)
    assert reused == [f"cross-validation {k}/3 (fold {k}): finished before, reused" for k in (1, 3)], again.output
    assert (cv / "fold_2" / "run.json").is_file() and (tmp_path / "runs" / "cv" / "run.json").is_file()
    after = pd.read_csv(cv / "predictions.csv")
    kept = before["fold"] != 2
    pd.testing.assert_frame_equal(after[kept], before[kept])
    changed = CliRunner().invoke(app, args + ["--resume", "--set", "training.lr=0.5"])
    assert changed.exit_code != 0 and "cannot resume with a changed config (training.lr)" in changed.output
    # another split (here 2 folds instead of 3) is refused too: its fold_1 would be another fold_1
    other = [a if a != "3" else "2" for a in args]
    resplit = CliRunner().invoke(app, other + ["--resume"])
    assert resplit.exit_code == 2 and "trained on another split of the records" in resplit.output, resplit.output
    assert {f: (cv / f / "model.safetensors").stat().st_mtime_ns for f in stamp} == stamp
    assert json.loads((cv / "fold_1" / "run.json").read_text())["split_sha256"]


@pytest.mark.slow
def test_alpha_near_zero_saves_the_source_weights(source, tmp_path, monkeypatch):
    """The saved model is the interpolation: with α → 0 it is the run fine-tuning started from, however far
    the training moved (lr 0.1), and run.json says so."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    rows = []
    for i in range(16):
        wfdb.wrsamp(f"r{i}", fs=100, units=["mV"] * 12, sig_name=list(LEADS),
                    p_signal=np.round(rng.normal(0, 0.3, (1000, 12)), 3), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, write_dir=str(tmp_path))
        rows.append({"record": f"r{i}.hea", "patient": f"p{i}", **{c: int((i + k) % 3 == 0) for k, c in
                                                                    enumerate(source.classes)}})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    result = CliRunner().invoke(app, ["train", "--manifest", str(tmp_path / "m.csv"), "--from", "long_time",
                                      "--runs-dir", str(tmp_path / "runs"), "--set", "training.epochs=2",
                                      "--set", "training.lr=0.1", "--set", "training.finetune_alpha=1e-6",
                                      "--set", "training.threads=1", "--set", "name=alpha", "--n-boot", "20",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    from ecgnet.runs import load_run

    model, config, info = load_run(tmp_path / "runs" / "alpha")
    assert config.training.finetune_alpha == 1e-6
    assert info["finetune"]["interpolation"].startswith("saved weights = 0.999999·start + 1e-06·fine-tuned")
    saved, shipped = model.state_dict(), source.model.state_dict()
    for k, v in saved.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, shipped[k], atol=1e-4, rtol=1e-4)


def test_the_cv_report_of_a_run_trained_from_scratch_draws_what_it_has(tmp_path):
    """Without --from there is no zero-shot model to draw beside the out-of-fold curves, and a class without
    positives has no AUC: the report still has its tables and the figures it can draw, and says no zero-shot."""
    from ecgnet.document import write_document
    from ecgnet.training.cv_report import _figures, cv_report

    rng = np.random.default_rng(0)
    y = np.stack([rng.integers(0, 2, 40), np.zeros(40)], axis=1).astype(float)
    y[:3, 0] = np.nan  # unknown labels are left out of the curve
    oof = np.clip(y + rng.normal(0, 0.6, y.shape), 0, 1)
    entry = {"auc": 0.8, "low": 0.7, "high": 0.9, "n": 37, "n_positive": 19}
    none = {"auc": None, "low": None, "high": None, "n": 40, "n_positive": 0}
    pooled = {"n_records": 40, "per_class": {"A": entry, "B": none},
              "macro_auc": {"value": 0.8, "low": 0.7, "high": 0.9, "resampled": "records"}}
    metrics = {"protocol": {"kind": "2-fold", "folds": {"1": "fold 1", "2": "fold 2"}, "grouping": "g",
                            "inner_validation": "i", "seed": 0},
               "pooled": pooled, "per_fold": {"fold 1": {**pooled, "n_records": 20}, "fold 2": {**pooled, "n_records": 20}}}
    info = {"name": "scratch", "model": "m", "parameters": 10, "collection": {"name": "c", "records": 40}}
    title, protocol, sections = cv_report(metrics, info)
    assert title == "scratch: 2-fold cross-validation" and "trained from scratch (no --from)" in protocol
    figures = _figures(tmp_path / "figures", metrics, y, oof, None, None)
    assert sorted(figures) == ["auc.png", "folds.png", "roc.png"] and "zero-shot" not in figures["roc.png"][0]
    page = write_document(tmp_path, "report", title, sections, figures, bullets=("Protocol", protocol)).read_text()
    assert page.count("data:image/png;base64,") == 3 and "Fine-tuned against zero-shot" not in page
    assert "| pooled | 40 | 0.800 [0.700, 0.900] | 0.800 [0.700, 0.900] | – |" in (tmp_path / "report.md").read_text()


def test_train_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--manifest", str(tmp_path / "none.csv"), "--from", "long_time"])
    assert result.exit_code == 2 and "no such manifest" in result.output
    result = runner.invoke(app, ["train", "--mode", "head", "--config", "x.yaml"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_ptbxl_collection_trains_as_native_ptbxl(ptbxl_root, tmp_path, monkeypatch):
    """Parity: the tiny config through the PTB-XL collection (what a PTB-XL manifest is, row for row:
    tests/test_manifest.py) and through the native PTB-XL path give the same fold-10 AUC (same seed)."""
    from conftest import TINY_CONFIG, _cache_dir

    from ecgnet.config import parse_config
    from ecgnet.data.collections import CollectionData, ptbxl_assignment, ptbxl_collection
    from ecgnet.training.fit import train

    monkeypatch.chdir(tmp_path)
    config = parse_config({**TINY_CONFIG, "data": {**TINY_CONFIG["data"], "max_train_records": 300},
                           "training": {**TINY_CONFIG["training"], "epochs": 2}}, "parity")
    _, native = train(config, ptbxl_root, tmp_path / "native", cache_dir=_cache_dir(), progress=False, n_boot=20)
    c = ptbxl_collection(ptbxl_root, "superdiagnostic").load_signals(100, _cache_dir(), progress=False)
    data = CollectionData(c, ptbxl_assignment(c.folds))
    _, via = train(config, None, tmp_path / "collection", progress=False, n_boot=20, data=data)
    a, b = native["test"]["macro_auc"]["value"], via["test"]["macro_auc"]["value"]
    assert abs(a - b) <= 0.002, (a, b)


@pytest.mark.slow
def test_ptbxl_manifest_trains_as_the_ptbxl_collection(ptbxl_root, tmp_path, monkeypatch):
    """Parity on a subset: a PTB-XL manifest (written by `ecgnet manifest`) of 240 training, 120 fold-9 and
    120 fold-10 records trains as the same rows of the PTB-XL collection do (same seed): same fold-10 AUC."""
    from conftest import TINY_CONFIG, _cache_dir

    from ecgnet.config import parse_config
    from ecgnet.data.collections import CollectionData, ptbxl_assignment, ptbxl_collection, read_manifest
    from ecgnet.data.collections.make import ptbxl_manifest
    from ecgnet.evaluation.scoring import masked_macro_auc
    from ecgnet.runs import load_run
    from ecgnet.training.collection_scoring import predict
    from ecgnet.training.fit import train

    monkeypatch.chdir(tmp_path)
    native = ptbxl_collection(ptbxl_root, "superdiagnostic")
    rng = np.random.default_rng(0)
    rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(np.isin(native.folds, fs)), n, replace=False)
                                   for fs, n in (((1, 2, 3, 4, 5, 6, 7, 8), 240), ((9,), 120), ((10,), 120))]))
    subset = native.subset(rows)
    ptbxl_manifest(ptbxl_root, tmp_path / "all.csv", "superdiagnostic")  # every record, then the same rows
    table = pd.read_csv(tmp_path / "all.csv", dtype=str, keep_default_na=False)
    table.iloc[rows].to_csv(tmp_path / "m.csv", index=False)
    manifest = read_manifest(tmp_path / "m.csv").load_signals(100, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(np.asarray(manifest.signal), np.asarray(subset.load_signals(100, _cache_dir()).signal))
    config = parse_config({**TINY_CONFIG, "data": {"task": "superdiagnostic"},
                           "training": {**TINY_CONFIG["training"], "epochs": 2}}, "parity")
    results = []
    for name, c in (("manifest", manifest), ("collection", subset.load_signals(100, _cache_dir()))):
        data = CollectionData(c, ptbxl_assignment(c.folds))
        run_dir, _ = train(config, None, tmp_path / name, progress=False, n_boot=20, data=data)
        rows = data.assignment["test"]  # fold 10 (a manifest's rows are scored by train_collection, not train)
        p = predict(load_run(run_dir)[0], c, rows, data.metadata_scaler, config)
        results.append(masked_macro_auc(c.y[rows], p))
    assert abs(results[0] - results[1]) <= 0.002, results


@pytest.mark.slow
def test_forgetting_scores_the_model_and_its_source_on_ptbxl_fold10(source, ptbxl_root):
    """The source itself, its outputs in reversed class order, 'forgot' nothing: the same AUC and a zero
    paired difference on fold 10's 2,163 superdiagnostic records (the classes are matched by name)."""
    from ecgnet.training.forgetting import forgetting, forgetting_lines

    class Reversed(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args, **kwargs):
            return self.model(*args, **kwargs).flip(-1)

    classes = list(reversed(source.classes))
    f = forgetting(Reversed(source.model).eval(), source.config, source.metadata_scaler, classes, source,
                   ptbxl_root, n_boot=20)
    assert f["records"] == 2163 and sorted(f["classes"]) == sorted(source.classes)
    assert f["macro_auc"]["fine_tuned"]["value"] == pytest.approx(f["macro_auc"]["source"]["value"], abs=1e-9)
    assert f["macro_auc"]["source"]["value"] == pytest.approx(0.9355, abs=5e-5)  # long_time's own fold-10 figure
    assert f["fine_tuned_minus_source"]["diff"] == pytest.approx(0, abs=1e-9)
    assert "2,163 records" in forgetting_lines(f)[0]


def test_forgetting_usage_errors(source, tmp_path):
    from ecgnet.training.collection import train_collection
    from ecgnet.training.forgetting import forgetting

    result = CliRunner().invoke(app, ["train", "--config", "configs/fast_time.yaml", "--forgetting", "--no-progress"])
    assert result.exit_code == 2 and "--forgetting compares a fine-tuned model" in result.output
    manifest_source = type(source)(source.name, source.path, source.model, source.config, {**source.info, "task": None})
    with pytest.raises(ECGNetError, match="was not trained on a PTB-XL task"):
        forgetting(source.model, source.config, source.metadata_scaler, source.classes, manifest_source)
    with pytest.raises(ECGNetError, match="not trained on a PTB-XL task"):  # before anything is trained
        train_collection(None, finetune_config(source, None, []), tmp_path, manifest_source, forgetting=True)
    assert not any(tmp_path.iterdir())


def test_the_summary_of_a_small_split_warns_that_its_auc_rests_on_few_cases():
    """A 39-record manifest trained without --folds printed 'val: macro AUC 1.000 [1.000, 1.000]' from 4 records
    (1 positive per class) without a word, and its thresholds came from them (found in a wheel audit)."""
    from ecgnet.training.collection_command import format_summary

    auc = {"value": 1.0, "low": 1.0, "high": 1.0}
    small = {"macro_auc": auc, "n_records": 4, "per_class": {"NORM": {"auc": 1.0, "n_positive": 1},
                                                             "MI": {"auc": None, "n_positive": 0}}}
    large = {"macro_auc": auc, "n_records": 400, "per_class": {"NORM": {"auc": 0.9, "n_positive": 120}}}
    text = format_summary({"records": 39, "skipped": 0, "run": "runs/x", "scores": {"val": small, "test": large}})
    warnings = [line for line in text.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: val: fewer than 10 positives or negatives for "
                                                         "NORM (1 positive, 3 negative)")
    assert "thresholds were chosen on these records" in warnings[0] and "--folds K" in warnings[0]
    assert "MI" not in warnings[0]  # not scored: nothing to distrust


def test_a_manifest_training_does_not_replace_a_finished_ptbxl_run_of_that_name(untrained_run, tmp_path, monkeypatch):
    """docs/own_data.md's `train --config configs/baseline_time.yaml --manifest my.csv` replaced the committed
    PTB-XL run runs/baseline_time (a note only): a finished run of other data is refused, untouched."""
    import shutil

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 24)
    runs = tmp_path / "runs"
    name = yaml.safe_load((untrained_run / "config.yaml").read_text())["name"]
    run = Path(shutil.copytree(untrained_run, runs / name))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = CliRunner().invoke(app, ["train", "--config", str(run / "config.yaml"), "--manifest", str(manifest),
                                      "--runs-dir", str(runs), "--set", "training.epochs=1", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "is a finished run trained on PTB-XL; this training is on the manifest" in " ".join(result.output.split())
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_fine_tuning_with_a_config_of_another_model_says_the_model_is_the_sources(tmp_path):
    """`train --from long_time -c frequency.yaml` trained long_time's network without a word."""
    config = tmp_path / "frequency.yaml"
    config.write_text("name: f\nmodel: {name: frequency_transformer}\n")
    result = CliRunner().invoke(app, ["train", "--manifest", str(tmp_path / "none.csv"), "--from", "long_time",
                                      "-c", str(config), "--runs-dir", str(tmp_path)])
    printed = " ".join(result.output.split())
    assert "note: fine-tuning keeps long_time's model (time_resnet1d); the model section of" in printed
    assert "(frequency_transformer) is not used" in printed


def test_a_cross_validation_cut_off_says_how_to_resume(tmp_path, monkeypatch):
    """Killed during its folds, a cross-validation left RUN/ holding only cv/, which predict called 'not an
    ECGNet run directory' (found in a wheel audit): RUN/INCOMPLETE is written before the first fold."""
    from ecgnet.training import collection as training

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 12)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "cross_validate", killed)
    args = ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "2", "--runs-dir",
            str(tmp_path / "runs"), "--set", "name=cut", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 130
    assert (tmp_path / "runs" / "cut" / "INCOMPLETE").is_file()
    refused = CliRunner().invoke(app, ["predict", str(tmp_path / "s0.hea"), "--checkpoint",
                                       str(tmp_path / "runs" / "cut")])
    assert refused.exit_code == 2 and "training did not finish" in refused.output and "--resume" in refused.output


def test_a_plain_fine_tune_says_where_its_thresholds_come_from_and_what_it_trained(tmp_path, monkeypatch):
    """After a fine-tune without --folds, predict said 'chosen on fold 9' (PTB-XL's) for thresholds chosen on a
    few of the user's records, the report showed no fine-tuning and 'task None', and a class-name typo switched
    to a new output layer with one line (found in a wheel audit)."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 40)
    table = pd.read_csv(manifest).rename(columns={"X": "NORM", "Y": "STCC"})  # STCC: a typo of the run's STTC
    table.to_csv(manifest, index=False)
    trained = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--runs-dir",
                                       str(tmp_path / "runs"), "--set", "name=plain", "--set", "training.epochs=1",
                                       "--set", "training.threads=1", "--n-boot", "20", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    said = " ".join(trained.output.split())
    assert "class 'STCC': did you mean the run's 'STTC'?" in said
    assert "fine-tuning long_time: --mode head, the encoder frozen, the output layer trained (the default for new " \
           "classes); a new output layer replaces the run's" in said
    run = tmp_path / "runs" / "plain"
    assert json.loads((run / "val" / "metrics.json").read_text())["thresholds_from"].startswith("validation rows")
    report = (run / "report.md").read_text()
    assert "fine-tuned from" in report and "fine-tuning: mode" in report and "| task |" not in report
    shown = CliRunner().invoke(app, ["predict", str(tmp_path / "s0.hea"), "--checkpoint", str(run), "--no-progress"])
    assert "chosen on the collection's validation rows" in " ".join(shown.output.split()), shown.output
    scored = CliRunner().invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--n-boot", "20",
                                      "--out", str(tmp_path / "ev"), "--no-progress"])
    assert scored.exit_code == 0 and "these figures are in-sample" in " ".join(scored.output.split())
    trained_on = (run / "trained_on.txt").read_text().splitlines()  # training + validation rows, not the test's
    assert 30 <= len(trained_on) < 40 and all(Path(k.split("\t")[0]).is_absolute() for k in trained_on)
    assert all(int(k.split("\t")[1]) > 0 and len(k.split("\t")[2]) == 64 for k in trained_on)  # size, fingerprint
    moved = tmp_path / "moved"  # the same files in another folder (data mounted elsewhere): known by their bytes
    moved.mkdir()
    for f in tmp_path.glob("s*.*"):
        (moved / f.name).write_bytes(f.read_bytes())
    (moved / "m.csv").write_text(manifest.read_text())
    elsewhere = CliRunner().invoke(app, ["evaluate", str(run), "--manifest", str(moved / "m.csv"), "--n-boot", "20",
                                         "--out", str(tmp_path / "ev_moved"), "--no-progress"])
    assert f"the run was trained on {len(trained_on)} of the 40 records of this manifest" in \
        " ".join(elsewhere.output.split()), elsewhere.output
    copy = tmp_path / "copy.csv"  # the same records under another manifest's name: in-sample all the same
    copy.write_text(manifest.read_text())
    copied = CliRunner().invoke(app, ["evaluate", str(run), "--manifest", str(copy), "--n-boot", "20",
                                      "--out", str(tmp_path / "ev_copy"), "--no-progress"])
    assert copied.exit_code == 0 and f"the run was trained on {len(trained_on)} of the 40 records of this " \
        "manifest: these figures are in-sample" in " ".join(copied.output.split()), copied.output
    with open(manifest, "a") as fh:  # a bad row, left out with --skip-bad: listed, and counted
        fh.write("missing.hea,p99,site0,1,0\n")
    skipped = CliRunner().invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--skip-bad", "--n-boot",
                                       "20", "--out", str(tmp_path / "ev2"), "--no-progress"])
    said = " ".join(skipped.output.split())
    assert skipped.exit_code == 0 and "40 of 40 records scored (1 manifest rows skipped)" in said
    assert "skipped line 42 (missing.hea): column record" in said
    no_ptbxl = CliRunner().invoke(app, ["evaluate", str(run), "--no-progress"], env={"ECGNET_DATA": ""})
    assert no_ptbxl.exit_code == 2 and "or score this run on a labelled manifest: --manifest M.csv (it was trained " \
        "on" in " ".join(no_ptbxl.output.split())
    calibrated = CliRunner().invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "here",
                                          "--skip-bad", "--folds", "2", "--n-boot", "20", "--no-progress"])
    assert calibrated.exit_code == 0, calibrated.output  # in-sample, and said so (found in a protocol review)
    assert "its probabilities on them are in-sample" in " ".join(calibrated.output.split())
    (tmp_path / "broken.hea").write_text("broken 12 100 not-a-number\n")  # a record its reader refuses
    with open(manifest, "a") as fh:
        fh.write("broken.hea,p98,site0,1,0\n")
    retrained = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--skip-bad",
                                         "--runs-dir", str(tmp_path / "runs"), "--set", "name=skipping", "--set",
                                         "training.epochs=1", "--set", "training.threads=1", "--n-boot", "20",
                                         "--no-progress"])
    assert retrained.exit_code == 0, retrained.output  # the bad row listed once, not again after reading signals
    assert " ".join(retrained.output.split()).count("skipped line 42 (missing.hea)") == 1, retrained.output
    broken = [line for line in retrained.output.splitlines() if "broken" in line]  # the unreadable record: its
    assert broken[0].startswith(f"skipped {manifest.name} line 43 (record 'broken.hea'): "), broken  # line, and
    assert broken[0].count("broken.hea") <= 2, broken  # its path (was: its path, the line and record, the path again)


def test_a_refused_cross_validation_leaves_a_finished_run_usable(tmp_path, monkeypatch):
    """The cut-off marker was written before the folds' checks, so a refused retraining (here finetune_alpha
    with new classes) left a finished run marked unfinished, its config overwritten (found in review)."""
    import shutil

    from ecgnet.runs.bundled import resolve_checkpoint

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 12)
    run = tmp_path / "runs" / "done"
    shutil.copytree(resolve_checkpoint("long_time"), run, ignore=shutil.ignore_patterns("profiles"))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "collection": {"name": "m", "manifest": str(manifest)}}))
    config = (run / "config.yaml").read_text()
    refused = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "2",
                                       "--runs-dir", str(tmp_path / "runs"), "--set", "name=done", "--set",
                                       "training.finetune_alpha=0.5", "--no-progress"])
    assert refused.exit_code == 2, refused.output
    assert not (run / "INCOMPLETE").exists() and (run / "config.yaml").read_text() == config
    shown = CliRunner().invoke(app, ["predict", str(tmp_path / "s0.hea"), "--checkpoint", str(run), "--no-progress"])
    assert shown.exit_code == 0, shown.output


def test_a_fold_that_trains_without_a_positive_is_warned_about(tmp_path, monkeypatch):
    """Leave-one-source-out where one source holds every positive of a class: that fold's model cannot learn
    the class, yet its records were scored and pooled without a word (found in a protocol review)."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 24)
    table = pd.read_csv(manifest)
    table["X"] = (table["source"] == "site0").astype(int)  # every X positive in site0
    table["patient"] = [f"p{i}" for i in range(len(table))]  # one record each (a patient in one source)
    table.to_csv(manifest, index=False)
    out = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--leave-out",
                                   "source", "--runs-dir", str(tmp_path / "runs"), "--set", "name=loso", "--set",
                                   "training.epochs=1", "--set", "training.threads=1", "--n-boot", "20",
                                   "--no-progress"])
    assert out.exit_code == 0, out.output
    assert "warning: site0: no positive of X among its training records" in " ".join(out.output.split())


def test_cross_validating_onto_a_finished_run_of_other_data_is_refused_before_any_fold(tmp_path, monkeypatch):
    """The check ran only at the final model: every fold trained first, and cv/ was left inside the finished
    PTB-XL run (found in review)."""
    import shutil

    from ecgnet.runs.bundled import resolve_checkpoint

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 12)
    shutil.copytree(resolve_checkpoint("long_time"), tmp_path / "runs" / "done",
                    ignore=shutil.ignore_patterns("profiles"))
    refused = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--folds", "2",
                                       "--runs-dir", str(tmp_path / "runs"), "--set", "name=done", "--no-progress"])
    assert refused.exit_code == 2 and "is a finished run trained on PTB-XL" in " ".join(refused.output.split())
    assert not (tmp_path / "runs" / "done" / "cv").exists()


def test_the_runs_classes_but_for_a_typo_are_refused_unless_a_mode_is_given(tmp_path, monkeypatch):
    """A site's manifest with NORM, MI, STCC, CD, HYP (STCC: a typo of STTC) trained a new output layer for all five
    classes with --mode head, after one warning, and ended at macro AUC 0.400; evaluate and calibrate scored four
    classes without a hint (found in a site audit)."""
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 12)
    table = pd.read_csv(manifest)
    for c, source in (("NORM", "X"), ("MI", "Y"), ("STCC", "X"), ("CD", "Y"), ("HYP", "X")):
        table[c] = table[source]
    table.drop(columns=["X", "Y"]).to_csv(manifest, index=False)
    args = ["train", "--manifest", str(manifest), "--from", "long_time", "--runs-dir", str(tmp_path / "runs"),
            "--set", "name=typo", "--no-progress"]
    refused = CliRunner().invoke(app, args)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "class(es) 'STCC' (the run's 'STTC'?) are not the run's" in said, said
    assert "give --mode head or --mode full" in said and not (tmp_path / "runs" / "typo").exists()
    scored = CliRunner().invoke(app, ["evaluate", "long_time", "--manifest", str(manifest), "--n-boot", "20",
                                      "--out", str(tmp_path / "ev"), "--no-progress"])
    assert scored.exit_code == 0, scored.output
    assert "did you mean the run's 'STTC'" in " ".join(scored.output.split())


def test_fine_tuning_on_the_runs_own_classes_keeps_their_descriptions(tmp_path, monkeypatch):
    """A manifest's own classes have no description — but fine-tuned on the run's own classes, its output layer
    kept, they are the run's and keep the run's descriptions (a site's MI with a new output layer gets none)."""
    from ecgnet.runs.bundled import resolve_checkpoint

    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    manifest = write_learnable(tmp_path, 24)
    pd.read_csv(manifest).rename(columns={"X": "NORM", "Y": "MI"}).to_csv(manifest, index=False)
    shipped = json.loads((resolve_checkpoint("long_time") / "run.json").read_text())["class_descriptions"]
    described = {"NORM": shipped["NORM"], "MI": shipped["MI"]}
    for mode, name in (("full", "kept"), ("head", "kept_head")):
        trained = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--mode",
                                           mode, "--runs-dir", str(tmp_path / "runs"), "--set", f"name={name}",
                                           "--set", "training.epochs=1", "--set", "training.threads=1", "--n-boot",
                                           "20", "--no-progress"])
        assert trained.exit_code == 0, trained.output
        assert json.loads((tmp_path / "runs" / name / "run.json").read_text())["class_descriptions"] == described
    pd.read_csv(manifest).rename(columns={"NORM": "AF"}).to_csv(manifest, index=False)  # a new output layer
    trained = CliRunner().invoke(app, ["train", "--manifest", str(manifest), "--from", "long_time", "--runs-dir",
                                       str(tmp_path / "runs"), "--set", "name=new", "--set", "training.epochs=1",
                                       "--set", "training.threads=1", "--n-boot", "20", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "runs" / "new" / "run.json").read_text())["class_descriptions"] == {}
