"""`ecgnet evaluate RUN --manifest` and `ecgnet calibrate`: classes matched by name (missing ones listed and
skipped, unknown labels masked), AUCs that sklearn recomputes from predictions.csv, the masked bootstrap
equal to the benchmark's when nothing is unknown, unreadable records counted; site profiles stored in the
run and read back, clear errors for bad or unknown site names and for a bundled model, and predict's
calls and probabilities following the profile."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ecgnet.data.collections import read_manifest
from ecgnet.errors import ECGNetError
from ecgnet.evaluation import metrics as M
from ecgnet.evaluation.calibrate_site import DEFAULT_SHRINKAGE, calibrate_site, default_shrinkage, prepare_run_dir
from ecgnet.evaluation.manifest_evaluation import evaluate_collection
from ecgnet.evaluation.recalibration import logit, sigmoid
from ecgnet.inference.predictor import Predictor
from ecgnet.runs import profiles
from ecgnet.runs.bundled import resolve_checkpoint
from test_records import write_challenge

RUN_CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]
THRESHOLDS = {"CD": 0.5, "HYP": 0.45, "MI": 0.5, "NORM": 0.55, "STTC": 0.5}


@pytest.fixture
def run(untrained_run, tmp_path) -> Path:
    """The untrained tiny run with fold-9 thresholds (val/metrics.json), in a folder of its own."""
    run_dir = tmp_path / "runs" / "untrained"
    shutil.copytree(untrained_run, run_dir)
    (run_dir / "val").mkdir()
    (run_dir / "val" / "metrics.json").write_text(json.dumps(
        {"per_class": {c: {"threshold": t} for c, t in THRESHOLDS.items()}}))
    return run_dir


@pytest.fixture
def manifest(tmp_path) -> Path:
    """16 records from two sources, labels for CD, HYP, MI, NORM (no STTC) and a class XTRA the run does not
    know; some labels unknown; one record truncated (unreadable)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        source = "site_a" if i < 8 else "site_b"
        path, _ = write_challenge(tmp_path / "data" / source, name=f"R{i:02d}", seed=i, comments=("Dx: 426783006",))
        labels = {c: str(int(v)) for c, v in zip(["CD", "HYP", "MI", "NORM", "XTRA"], rng.random(5) < 0.5)}
        labels["CD"] = str(i % 2)  # both labels in each source
        if i in (3, 11):
            labels["HYP"] = ""  # unknown
        rows.append({"record": f"data/{source}/R{i:02d}.hea", "patient": f"p{i // 2}", "source": source, **labels})
    rows[0]["HYP"], rows[1]["HYP"] = "1", "0"
    broken = tmp_path / "data" / "site_b" / "R15.mat"
    broken.write_bytes(broken.read_bytes()[:3000])
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_evaluate_matches_classes_by_name_and_sklearn(run, manifest, tmp_path):
    out = tmp_path / "out"
    result = evaluate_collection(Predictor(run), read_manifest(manifest), out, n_boot=50, progress=False)
    assert result["classes_matched"] == ["CD", "HYP", "MI", "NORM"]
    assert result["classes_missing"] == ["STTC"] and result["classes_ignored"] == ["XTRA"]
    assert result["made_by"]["weights_sha256"] == Predictor(run).run.weights_sha256  # which weights were scored
    assert (result["n_records"], result["n_scored"]) == (16, 15)
    assert result["macro_auc"]["resampled"] == "patients"  # two records per patient: patients are resampled
    assert "bootstrap over patients" in (out / "evaluation.md").read_text()
    assert [r["record"] for r in result["unreadable"]] == ["data/site_b/R15.hea"]
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""])
    scored = table[table["error"].isna()]
    for c in result["classes_scored"]:
        known = scored[f"y_{c}"].notna()
        assert result["per_class"][c]["n"] == known.sum()
        assert result["per_class"][c]["auc"] == pytest.approx(roc_auc_score(scored.loc[known, f"y_{c}"],
                                                                            scored.loc[known, f"p_{c}"]), abs=1e-4)
        e = result["per_class"][c]
        assert e["threshold"] == THRESHOLDS[c] and e["balanced_accuracy"] == pytest.approx(
            (e["sensitivity"] + e["specificity"]) / 2)
    assert result["per_class"]["HYP"]["n"] == 13  # two unknown, one unreadable
    assert result["macro_auc"]["value"] == pytest.approx(
        np.mean([result["per_class"][c]["auc"] for c in result["classes_scored"]]))
    assert set(result["per_source"]) == {"site_a", "site_b"}
    checked = 0
    for source, rows in scored.groupby("source"):  # each source scored on its own records, as sklearn scores them
        for c, e in result["per_source"][source]["per_class"].items():
            known = rows[f"y_{c}"].notna()
            if e["auc"] is not None:
                assert e["auc"] == pytest.approx(roc_auc_score(rows.loc[known, f"y_{c}"], rows.loc[known, f"p_{c}"]),
                                                 abs=1e-4), (source, c)
                checked += 1
    assert checked >= 4
    assert json.loads((out / "metrics.json").read_text())["classes_missing"] == ["STTC"]
    report = (out / "evaluation.md").read_text()
    assert "STTC" in report and (out / "figures" / "roc.png").is_file() and (out / "evaluation.html").is_file()


def test_a_manifest_of_later_classes_is_scored_on_their_own_probabilities(run, manifest, tmp_path):
    """A site labelling MI and NORM only (not the run's first classes, CD and HYP): each is scored on the run's
    probability of that class by name, not on the first columns (found by a mutation the suite missed)."""
    from ecgnet.data.readers import read_ecg_any

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    only = manifest.with_name("mi_norm.csv")
    table[["record", "patient", "source", "NORM", "MI"]].to_csv(only, index=False)
    predictor = Predictor(run)
    out = tmp_path / "mi_norm"
    result = evaluate_collection(predictor, read_manifest(only), out, n_boot=20, progress=False)
    assert sorted(result["classes_matched"]) == ["MI", "NORM"]
    rows = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""])
    rows = rows[rows["error"].isna()]
    first = rows.iloc[0]
    direct = predictor.predict_record(read_ecg_any(manifest.parent / first["record"], predictor.rate, resample=True))
    by_class = {d["class"]: d["probability"] for d in direct["diagnoses"]}
    assert first["p_MI"] == pytest.approx(by_class["MI"], abs=1e-5)
    assert first["p_NORM"] == pytest.approx(by_class["NORM"], abs=1e-5)
    for c in ("NORM", "MI"):
        assert result["per_class"][c]["auc"] == pytest.approx(roc_auc_score(rows[f"y_{c}"], rows[f"p_{c}"]), abs=1e-4)


def test_masked_bootstrap_draws_the_benchmarks_resamples_when_nothing_is_unknown():
    rng = np.random.default_rng(1)
    y = (rng.random((40, 3)) < 0.3).astype(float)
    y[:2], y[2:4] = 1, 0
    unmasked = M.bootstrap_indices(40, 30, 4, y)
    assert np.array_equal(M.bootstrap_indices(40, 30, 4, y.astype(int)), unmasked)  # labels as 0/1 ints too
    y[5, 1] = np.nan
    idx = M.bootstrap_indices(40, 30, 4, y)
    for i in idx:  # every class keeps a known positive and a known negative
        assert all(0 < np.nansum(y[i, k]) < (~np.isnan(y[i, k])).sum() for k in range(3))


def test_site_names_and_unknown_sites_are_clear_errors(run):
    with pytest.raises(ECGNetError, match="no site profile 'nowhere'.*it has none"):
        profiles.load_profile(run, "nowhere", RUN_CLASSES)
    # a shipped model is read-only: the advice calibrates a copy (calibrate refuses it without --copy-to)
    with pytest.raises(ECGNetError, match=r"--site nowhere --copy-to runs/long_time`, then use --checkpoint "
                                          r"runs/long_time"):
        profiles.load_profile(resolve_checkpoint("long_time"), "nowhere", ["CD", "HYP", "MI", "NORM", "STTC"])
    for bad in ("../x", "a/b", ".hidden", "", "x" * 65):
        with pytest.raises(ECGNetError, match="site name"):
            profiles.load_profile(run, bad, RUN_CLASSES)


def _profile(site: str, thresholds: dict, temperature: float = 1.0) -> dict:
    return {"site": site, "run": "untrained", "classes": RUN_CLASSES, "thresholds": thresholds,
            "calibrators": {c: {"kind": "temperature", "temperature": temperature} for c in RUN_CLASSES}}


def test_profile_round_trip_and_validation(run):
    path = profiles.save_profile(run, _profile("clinic-1", dict(THRESHOLDS), temperature=2.0))
    assert path == run / "profiles" / "clinic-1.json"
    loaded = profiles.load_profile(run, "clinic-1", RUN_CLASSES)
    assert loaded.thresholds == THRESHOLDS
    p = np.array([[0.1, 0.5, 0.9, 0.99, 0.3]])
    assert np.allclose(loaded.calibrate(p), sigmoid(logit(p) / 2.0))
    profiles.save_profile(run, _profile("clinic-2", dict(THRESHOLDS)))
    with pytest.raises(ECGNetError, match="its profiles: clinic-1, clinic-2"):
        profiles.load_profile(run, "clinic-3", RUN_CLASSES)
    with pytest.raises(ECGNetError, match="fitted for classes"):
        profiles.load_profile(run, "clinic-1", ["A", "B"])
    with pytest.raises(ECGNetError, match="threshold of MI"):
        profiles.save_profile(run, _profile("bad", {**THRESHOLDS, "MI": float("nan")}))
    assert not (run / "profiles" / "bad.json").exists()
    (run / "profiles" / "broken.json").write_text("{not json")
    with pytest.raises(ECGNetError, match="broken.json: not a readable site profile"):
        profiles.load_profile(run, "broken", RUN_CLASSES)


def test_calibrate_stores_a_profile_with_a_cross_fitted_report(run, manifest):
    result = calibrate_site(Predictor(run), read_manifest(manifest), "clinic", method="youden",
                            calibration="isotonic", folds=3, n_boot=30, progress=False)
    profile = profiles.load_profile(run, "clinic", RUN_CLASSES)
    assert profile.data["method"] == "youden" and profile.data["calibration"] == "isotonic"
    assert profile.data["shrinkage"] == DEFAULT_SHRINKAGE == 40  # the value chosen in reports/own_data/calibration
    assert default_shrinkage("f1") == 40 and default_shrinkage("sensitivity") == 0 == default_shrinkage("run")
    assert profile.data["fitted"]["STTC"] == "not labelled in the manifest"
    assert profile.thresholds["STTC"] == THRESHOLDS["STTC"] and profile.calibrators["STTC"] == {"kind": "none"}
    assert profile.data["manifest"]["records_used"] == 15 and len(profile.data["manifest"]["sha256"]) == 64
    assert profile.data["evaluation"]["folds"] == 3 and "held-out" in profile.data["evaluation"]["protocol"]
    assert profile.data["evaluation"]["resampled"] == "patients"
    report = Path(result["report"])
    assert report.parent == run / "profiles" / "clinic" and "cross-fitted" in (report.parent / "report.md").read_text()
    assert "youden, shrunk toward the run's by 40" in (report.parent / "report.md").read_text()
    held = pd.read_csv(report.parent / "predictions.csv")
    assert set(held["fold"].dropna()) == {1, 2, 3}
    with pytest.raises(ECGNetError, match="no record of source 'site_c'"):
        calibrate_site(Predictor(run), read_manifest(manifest), "c", source="site_c", progress=False)


def test_a_bundled_model_is_calibrated_in_a_copy(tmp_path):
    from ecgnet.runs.bundled import resolve_checkpoint

    bundled = resolve_checkpoint("long_time")
    with pytest.raises(ECGNetError, match="bundled model.*--copy-to"):
        prepare_run_dir(bundled, None)
    copy = prepare_run_dir(bundled, tmp_path / "runs" / "long_time")
    assert (copy / "model.safetensors").is_file() and prepare_run_dir(bundled, copy) == copy


def test_cli_calibrate_then_evaluate_with_the_site(run, manifest, tmp_path):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "clinic",
                                 "--method", "f1", "--calibration", "none", "--folds", "3", "--n-boot", "20",
                                 "--no-progress"])
    assert result.exit_code == 1, result.output  # R15 is unreadable: fitted without it, and said so, as evaluate
    assert "error: 1 of 16 records of " in result.stderr and "the other 15 fitted the profile" in result.stderr
    assert "Site profile clinic" in result.stdout and (run / "profiles" / "clinic.json").is_file()
    assert "f1 thresholds (shrinkage 40)" in result.stdout
    said = " ".join(result.stdout.split())  # an unreadable record was left out without a word (a user-workflow audit)
    assert "(1 unreadable, left out)" in said and "unreadable: " in said and "R15.hea" in said
    assert "Unreadable records (left out of the profile)" in (run / "profiles" / "clinic" / "report.md").read_text()
    assert "replaced" not in said
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--site", "clinic", "--out",
                                 str(out), "--n-boot", "20", "--no-progress"])
    assert result.exit_code == 1, result.output  # R15 is unreadable: scored without it, and said so
    metrics = json.loads((out / "metrics.json").read_text())
    stored = json.loads((run / "profiles" / "clinic.json").read_text())["thresholds"]
    assert metrics["site"] == "clinic" and metrics["per_class"]["CD"]["threshold"] == pytest.approx(stored["CD"])
    assert "not labelled in the manifest (skipped): STTC" in result.stdout
    # with temperature scaling, both thresholds are printed on the calibrated scale (the run's raw one beside):
    # 'HYP threshold 0.035 → 0.266' compared a raw with a calibrated threshold (found in a wheel audit)
    result = runner.invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "warm", "--folds", "3",
                                 "--n-boot", "20", "--skip-bad", "--no-progress"])
    assert result.exit_code == 0, result.output  # --skip-bad: R15 left out as asked
    assert "(1 unreadable, left out with --skip-bad)" in " ".join(result.stdout.split())
    again = runner.invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "warm", "--folds", "3",
                                "--n-boot", "20", "--skip-bad", "--no-progress"])  # a profile replaced silently
    assert again.exit_code == 0 and "replaced the earlier profile 'warm' (fitted on 15 records, " in again.stdout
    assert "| replaces | the profile fitted on 15 records (" in (run / "profiles" / "warm" / "report.md").read_text()
    profile = json.loads((run / "profiles" / "warm.json").read_text())
    from ecgnet.evaluation.recalibration import carry_threshold

    for c in profile["classes"]:
        carried = carry_threshold(profile["run_thresholds"][c], profile["calibrators"][c])
        assert f"{c:<5} threshold: run {carried:.3f} → site {profile['thresholds'][c]:.3f}" in result.stdout, c
    # evaluate --site wrote the run's raw p_ beside calibrated thresholds: rescoring its CSV gave other balanced
    # accuracies than its metrics.json (found in a user-workflow audit); q_ holds what the figures score
    out = tmp_path / "eval_warm"
    assert runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--site", "warm", "--out",
                               str(out), "--n-boot", "20", "--no-progress", "--skip-bad"]).exit_code == 0
    from sklearn.metrics import balanced_accuracy_score

    table, metrics = pd.read_csv(out / "predictions.csv"), json.loads((out / "metrics.json").read_text())
    assert ",1.000000," not in (out / "predictions.csv").read_text()  # labels as 1 / 0 / empty, as cv/ writes them
    assert (table[[f"q_{c}" for c in profile["classes"]]].to_numpy() != table[[f"p_{c}" for c in
                                                                                profile["classes"]]].to_numpy()).any()
    for c, e in metrics["per_class"].items():
        known = table[table[f"q_{c}"].notna() & table[f"y_{c}"].notna()]  # scored: readable, labelled
        called = (known[f"q_{c}"] >= profile["thresholds"][c]).astype(int)
        assert balanced_accuracy_score(known[f"y_{c}"], called) == pytest.approx(e["balanced_accuracy"], abs=1e-9), c

    result = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--split", "val", "--no-progress",
                                 "--out", str(tmp_path / "never")])  # was ignored (a user-workflow audit)
    assert result.exit_code == 2 and "--split val chooses one of PTB-XL's folds" in result.stderr
    result = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--site", "elsewhere",
                                 "--no-progress", "--out", str(tmp_path / "never")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "no site profile 'elsewhere'" in result.stderr and "its profiles: clinic" in result.stderr
    assert not (tmp_path / "never").exists()
    result = runner.invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "../up", "--no-progress"])
    assert result.exit_code == 2 and "site name" in result.stderr
    for option, value, message in (("--method", "roc", "--method must be one of youden, f1, sensitivity, run"),
                                   ("--calibration", "platt", "--calibration must be one of"),
                                   ("--target-sensitivity", "1.5", "--target-sensitivity must be in (0, 1]"),
                                   ("--shrinkage", "-1", "--shrinkage must be a number >= 0")):
        result = runner.invoke(app, ["calibrate", "long_time", "--copy-to", str(tmp_path / "copy"), "--manifest",
                                     str(manifest), "--site", "s", option, value, "--no-progress"])
        assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.output
        assert not (tmp_path / "copy").exists()  # refused before copying anything


def test_a_run_without_a_threshold_for_some_class_predicts_and_evaluates(run, manifest, tmp_path):
    """A run fine-tuned on a collection where MI had no positive has no MI threshold: MI gets a probability
    and no call (said in a warning), the other classes their calls; evaluation scores MI without one."""
    (run / "val" / "metrics.json").write_text(json.dumps(
        {"per_class": {c: ({"threshold": t} if c != "MI" else {}) for c, t in THRESHOLDS.items()}}))
    record, _ = write_challenge(tmp_path / "records", name="P2", seed=4)
    got = Predictor(run).predict_file(record, resample=True)
    by_class = {d["class"]: d for d in got["diagnoses"]}
    assert by_class["MI"]["threshold"] is None and by_class["MI"]["positive"] is None
    assert all(by_class[c]["positive"] is not None for c in RUN_CLASSES if c != "MI")
    assert any("no positive/negative call for MI" in w for w in got["warnings"])
    result = evaluate_collection(Predictor(run), read_manifest(manifest), tmp_path / "out", n_boot=20, progress=False)
    assert "threshold" not in result["per_class"]["MI"] and "threshold" in result["per_class"]["CD"]


def test_predict_with_a_site_follows_the_profile(run, tmp_path):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    record, _ = write_challenge(tmp_path / "records", name="P1", seed=3)
    calls_all = {c: 0.0 for c in RUN_CLASSES}
    profiles.save_profile(run, _profile("everything", calls_all, temperature=2.0))
    profiles.save_profile(run, _profile("nothing", {c: 1.5 for c in RUN_CLASSES}))
    runner = CliRunner()

    def predict(*extra):
        result = runner.invoke(app, ["predict", str(record), "--checkpoint", str(run), "--resample", "--json",
                                     "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)[0]

    plain, everything, nothing = predict(), predict("--site", "everything"), predict("--site", "nothing")
    assert set(everything["positives"]) == set(RUN_CLASSES) and nothing["positives"] == []
    p = {d["class"]: d["probability"] for d in plain["diagnoses"]}
    q = {d["class"]: d["probability"] for d in everything["diagnoses"]}
    for c in RUN_CLASSES:  # calibrated after the engine: σ(logit(p) / T)
        assert q[c] == pytest.approx(float(sigmoid(logit(p[c]) / 2.0)), abs=2e-3)
    assert {d["threshold"] for d in nothing["diagnoses"]} == {1.5}
    assert plain["site"] is None and everything["site"] == "everything"  # the JSON says whose calls these are
    csv = tmp_path / "site.csv"
    assert runner.invoke(app, ["predict", str(record), "--checkpoint", str(run), "--resample", "--no-progress",
                               "--site", "everything", "--out", str(csv)]).exit_code == 0
    row = pd.read_csv(csv).iloc[0]
    assert row["site"] == "everything" and row["model"] == "untrained"
    result = runner.invoke(app, ["predict", str(record), "--checkpoint", str(run), "--resample", "--site", "nowhere"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "its profiles: everything, nothing" in result.stderr


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
def test_the_printed_report_follows_the_site_and_says_so(run, tmp_path):
    """`ecgnet report --site`: the page's calls are the profile's and the page names the profile (without
    it, where the run's thresholds were chosen); a missing profile is one clear error and no PDF."""
    import subprocess

    from typer.testing import CliRunner

    from ecgnet.cli import app

    record, _ = write_challenge(tmp_path / "records", name="P1", seed=3)
    profiles.save_profile(run, _profile("everything", {c: 0.0 for c in RUN_CLASSES}))
    runner = CliRunner()

    def page(*extra) -> str:
        out = tmp_path / f"report{len(extra)}.pdf"
        result = runner.invoke(app, ["report", str(record), "--pdf", str(out), "--checkpoint", str(run),
                                     "--resample", *extra])
        assert result.exit_code == 0, result.output
        text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                              check=True).stdout
        return " ".join(text.split())  # the line may wrap

    plain, site = page(), page("--site", "everything")
    assert "Positive: probability ≥ the class's threshold (chosen on fold 9)" in plain
    assert "site profile 'everything'" in site and "site profile" not in plain
    assert site.count("POSITIVE") == len(RUN_CLASSES) > plain.count("POSITIVE")
    missing = runner.invoke(app, ["report", str(record), "--pdf", str(tmp_path / "never.pdf"), "--checkpoint",
                                  str(run), "--resample", "--site", "nowhere"])
    assert missing.exit_code == 2 and "no site profile 'nowhere'" in missing.stderr
    assert not (tmp_path / "never.pdf").exists()


def test_serve_applies_the_site_to_its_default_model_and_refuses_a_missing_one(run):
    from ecgnet.serve.models import ModelStore

    profiles.save_profile(run, _profile("clinic", dict(THRESHOLDS), temperature=3.0))
    store = ModelStore.discover([run], bundled=False, site="clinic")
    loaded = store.get(None).predictor
    assert loaded.profile.site == "clinic" and loaded.thresholds == THRESHOLDS
    assert store.describe()[0]["site"] == "clinic"
    assert store.describe()[0]["thresholds_from"] == "site profile 'clinic'"  # not the run's own "fold 9"
    from ecgnet.data.records import ECGRecord
    from ecgnet.serve.explain import explain_record

    rng = np.random.default_rng(0)
    record = ECGRecord(Path("r.hea"), rng.normal(0, 0.2, (12, 1000)).astype(np.float32), 100.0, 100.0)
    ex = explain_record(loaded, record, RUN_CLASSES[0], {}, n_steps=4)
    assert "before site profile 'clinic' calibrates them" in ex["window_probabilities"]  # not the calibrated call
    with pytest.raises(ECGNetError, match="no site profile 'other'.*its profiles: clinic"):
        ModelStore.discover([run], bundled=False, site="other")


def test_documented_site_figures_are_the_measured_ones():
    """docs/own_data.md quotes reports/own_data/calibration/results.json, whose 'before' figures follow from
    the committed predictions and long_time's fold-9 thresholds."""
    from sklearn.metrics import balanced_accuracy_score

    from ecgnet.runs.bundled import resolve_checkpoint
    from ecgnet.runs.directory import read_thresholds

    repo = Path(__file__).resolve().parents[1]
    folder = repo / "reports" / "own_data" / "calibration"
    results = json.loads((folder / "results.json").read_text())
    pooled = results["per_site"]["none"]["pooled"]
    docs = (repo / "docs" / "own_data.md").read_text()
    mba, hyp = pooled["mean_balanced_accuracy"], pooled["per_class"]["HYP"]
    ece_t, ece_i = results["per_site"]["temperature"]["pooled"]["macro_ece"], results["per_site"]["isotonic"]["pooled"]["macro_ece"]
    assert f"({mba['before']:.3f} → {mba['after']:.3f})" in docs
    assert f"({hyp['before']['balanced_accuracy']:.2f} → {hyp['after']['balanced_accuracy']:.2f})" in docs
    assert f"({ece_t['before']:.3f} → {ece_t['after']:.3f} / {ece_i['after']:.3f})" in docs
    table = pd.read_csv(folder / "predictions.csv", keep_default_na=False, na_values=[""])
    thresholds = read_thresholds(resolve_checkpoint("long_time"), RUN_CLASSES)
    for c in RUN_CLASSES:
        assert pooled["per_class"][c]["before"]["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(table[f"y_{c}"], table[f"p_{c}"] >= thresholds[c]), abs=1e-6)


def test_a_manifest_without_any_class_of_the_run_is_one_clear_error(run, tmp_path):
    write_challenge(tmp_path / "data", name="A1", comments=("Dx: 426783006",))
    path = tmp_path / "afib.csv"
    path.write_text("record,AFIB,PVC\ndata/A1.hea,1,0\n")
    with pytest.raises(ECGNetError, match="no class in common.*--label-map"):
        evaluate_collection(Predictor(run), read_manifest(path), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    path.write_text("record,norm,MI\ndata/A1.hea,1,0\n")  # the run's NORM in another case: not silently skipped
    with pytest.raises(ECGNetError, match="afib.csv: class\\(es\\) 'norm' \\(the run's 'NORM'\\) .*would not be scored"):
        evaluate_collection(Predictor(run), read_manifest(path), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_subdiagnostic_manifest_s_sttc_is_scored_with_a_warning(run, tmp_path):
    """PTB-XL names its superclass and one subclass STTC: a superdiagnostic run scored on a subdiagnostic
    manifest matched STTC by name and scored 'every ST/T change' against 'non-specific ST/T changes' silently."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.evaluation.labelled import match_classes

    for i in range(4):
        write_challenge(tmp_path / "data", name=f"S{i}", seed=i, comments=("Dx: 426783006",))
    path = tmp_path / "sub.csv"
    path.write_text("record,IMI,LVH,NORM,STTC\n" + "".join(f"data/S{i}.hea,0,{i % 2},{(i + 1) % 2},{i // 2}\n"
                                                           for i in range(4)))
    result = CliRunner().invoke(app, ["evaluate", str(run), "--manifest", str(path), "--out", str(tmp_path / "out"),
                                      "--n-boot", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "warning: STTC means PTB-XL's superclass STTC" in " ".join(result.stderr.split())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["classes_matched"] == ["NORM", "STTC"] and len(metrics["class_warnings"]) == 1
    assert "subclass STTC (non-specific ST/T changes only) in the manifest" in (tmp_path / "out" / "evaluation.md").read_text()
    assert match_classes(RUN_CLASSES, ["NORM", "STTC", "MI"]).warnings == []  # the run's own task: as meant
    assert match_classes(RUN_CLASSES, ["NORM", "STTC"]).warnings == []  # nothing says which STTC: no guess
    assert "to the run but PTB-XL's superclass" in match_classes(["AMI", "STTC", "NORM"], RUN_CLASSES).warnings[0]


@pytest.mark.slow
def test_ptbxl_records_as_a_manifest_get_the_runs_own_fold10_probabilities(ptbxl_root, tmp_path):
    """The manifest path (files read as predict reads them) against training's evaluation (the PTB-XL cache):
    the bundled default's committed fold-10 predictions, on 24 fold-10 records."""
    from ecgnet.data.collections.make import ptbxl_manifest
    from ecgnet.runs.bundled import resolve_checkpoint

    run_dir = resolve_checkpoint("long_time")
    committed = pd.read_csv(run_dir / "test" / "predictions.csv").set_index("ecg_id")
    full = tmp_path / "all.csv"
    ptbxl_manifest(ptbxl_root, full, max_records=300, seed=1)
    table = pd.read_csv(full)
    table["ecg_id"] = table["record"].str.extract(r"(\d+)_lr$", expand=False).astype(int)
    pick = table[table["fold"] == 10].head(24)
    manifest = tmp_path / "fold10.csv"
    pick.drop(columns="ecg_id").to_csv(manifest, index=False)
    result = evaluate_collection(Predictor(run_dir), read_manifest(manifest), tmp_path / "out", n_boot=20, progress=False)
    assert result["n_scored"] == 24 and result["classes_missing"] == []
    out = pd.read_csv(tmp_path / "out" / "predictions.csv")
    ids = out["record"].str.extract(r"(\d+)_lr$", expand=False).astype(int)
    for c in RUN_CLASSES:
        assert np.abs(out[f"p_{c}"].to_numpy() - committed.loc[ids, c].to_numpy()).max() < 2e-3


def test_unreadable_records_make_evaluate_exit_1_unless_skip_bad(run, manifest, tmp_path):
    """evaluate --manifest with an unreadable record (R15, truncated) scores and writes the others, names it, and
    exits 1 with a last line counting the records it could not read — as predict exits 1 for a folder with a
    broken record; --skip-bad (which leaves bad rows and unreadable records out) exits 0. Its help says so."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    runner = CliRunner()
    args = ["evaluate", str(run), "--manifest", str(manifest), "--n-boot", "20", "--no-progress", "--out"]
    failed = runner.invoke(app, [*args, str(tmp_path / "plain")])
    assert failed.exit_code == 1, failed.output
    assert "15 of 16 records scored (1 unreadable)" in failed.stdout
    assert "unreadable: " in failed.stdout and "R15.hea" in failed.stdout  # the list
    table = pd.read_csv(tmp_path / "plain" / "predictions.csv")  # the results of the readable ones, written
    assert len(table) == 16 and table["error"].notna().sum() == 1
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["n_scored"] == 15
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 16 records of ") and "could not be read" in last and "--skip-bad" in last
    assert "the other 15 were scored" in last and "Traceback" not in failed.output

    skipped = runner.invoke(app, [*args, str(tmp_path / "skip"), "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    assert "15 of 16 records scored (1 unreadable, left out with --skip-bad)" in " ".join(skipped.stdout.split())
    assert "R15.hea" in skipped.stdout and "could not be read" not in skipped.output

    import typer.main

    shown = " ".join(typer.main.get_command(app).commands["evaluate"].help.split())  # what --help prints
    assert "Exit status: 0 when every record was scored; 1 when some record of the manifest could not be read" in shown
    assert "0 with --skip-bad" in shown and "2 for a usage error" in shown
    assert "Exit status" in runner.invoke(app, ["evaluate", "--help"]).output


def test_a_skipped_row_names_its_record_once(run, manifest, tmp_path):
    """A manifest row left out with --skip-bad is one line naming its file once: the row ('line 18
    (data/site_a/GONE.hea)') and the folder it was looked for in, not the full path again — evaluate and calibrate."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    with open(manifest, "a") as fh:
        fh.write("data/site_a/GONE.hea,p99,site_a,1,0,0,1,0\n")
    for command in (["evaluate", str(run), "--out", str(tmp_path / "ev")],
                    ["calibrate", str(run), "--site", "gone", "--folds", "2", "--calibration", "none"]):
        result = CliRunner().invoke(app, [*command, "--manifest", str(manifest), "--skip-bad", "--n-boot", "10",
                                          "--no-progress"])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
        assert lines == [f"skipped line 18 (data/site_a/GONE.hea): column record: no such file in "
                         f"{manifest.parent / 'data' / 'site_a'}"], result.stderr
        assert lines[0].count("GONE") == 1


def test_read_limits_reach_manifest_evaluation_and_the_training_cache(run, tmp_path):
    """A record longer than --max-seconds is unreadable — named on the terminal with the option that
    widens the limit — and read once the limit is widened; the training cache obeys the same limits and
    keeps apart what different limits read."""
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.data.limits import ReadLimits

    rows = []
    for i in range(4):
        write_challenge(tmp_path / "data", name=f"L{i}", fs=100, seconds=20 if i == 0 else 10, seed=i)
        rows.append({"record": f"data/L{i}.hea", "NORM": str(i % 2), "MI": str(1 - i % 2)})
    manifest = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    runner = CliRunner()
    tight = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--out", str(tmp_path / "tight"),
                                "--n-boot", "10", "--no-progress", "--max-seconds", "15"])
    assert tight.exit_code == 1, tight.output  # an unreadable record: the others scored, exit status 1
    assert "3 of 4 records scored" in tight.stdout
    assert "unreadable:" in tight.stdout and "L0.hea: declares 20 s of signal, over the limit of 15 s " \
        "(max_seconds; --max-seconds widens it)" in tight.stdout
    wide = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--out", str(tmp_path / "wide"),
                               "--n-boot", "10", "--no-progress"])
    assert wide.exit_code == 0 and "4 of 4 records scored" in wide.stdout and "unreadable" not in wide.stdout

    cache = tmp_path / "cache"
    short = read_manifest(manifest).load_signals(100, cache, workers=1, progress=False, skip_bad=True,
                                                 limits=ReadLimits(max_seconds=15))
    assert len(short) == 3 and "over the limit of 15 s" in short.skipped[0][1]
    with pytest.raises(ECGNetError, match="--max-seconds widens it"):
        read_manifest(manifest).load_signals(100, cache, workers=1, progress=False, limits=ReadLimits(max_seconds=15))
    full = read_manifest(manifest).load_signals(100, cache, workers=1, progress=False)
    assert len(full) == 4 and not full.skipped and np.abs(full.signal[0]).max() > 0


def test_long_records_option_reaches_evaluation_and_calibration_and_the_profile_keeps_it(run, tmp_path):
    """evaluate --manifest and calibrate score records over 10 s as --long-records says (the first 10 s
    give other probabilities than the segments' mean); the profile keeps the mode, and predict with that
    profile warns when a long record is scored another way."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    rows = []
    for i in range(8):
        write_challenge(tmp_path / "data", name=f"L{i}", fs=100, seconds=30, seed=i)
        rows.append({"record": f"data/L{i}.hea", "NORM": str(i % 2), "MI": str(1 - i % 2)})
    manifest = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    runner = CliRunner()
    p = {}
    for mode in ("segments", "first"):
        res = runner.invoke(app, ["evaluate", str(run), "--manifest", str(manifest), "--out", str(tmp_path / mode),
                                  "--n-boot", "10", "--no-progress", "--long-records", mode])
        assert res.exit_code == 0, res.output
        assert json.loads((tmp_path / mode / "metrics.json").read_text())["long_records"] == mode
        p[mode] = pd.read_csv(tmp_path / mode / "predictions.csv")["p_NORM"].to_numpy()
    assert not np.allclose(p["segments"], p["first"])

    res = runner.invoke(app, ["calibrate", str(run), "--manifest", str(manifest), "--site", "longsite", "--folds", "2",
                              "--n-boot", "10", "--no-progress", "--long-records", "first", "--calibration", "none"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "profiles" / "longsite.json").read_text())["long_records"] == "first"
    record = tmp_path / "data" / "L0.hea"
    mismatch = Predictor(run, site="longsite").predict_file(record)
    assert any("fitted with long records scored as 'first'" in w for w in mismatch["warnings"])
    assert not any("fitted with long" in w for w in Predictor(run, site="longsite", long_records="first")
                   .predict_file(record)["warnings"])


def trained_again(run: Path) -> None:
    """``run`` as if trained again: other weights in model.safetensors, run.json's SHA-256 agreeing."""
    from safetensors.torch import load_file, save_file

    weights = load_file(run / "model.safetensors")
    first = next(iter(weights))
    weights[first] = weights[first] + 0.01
    save_file(weights, run / "model.safetensors")
    info = json.loads((run / "run.json").read_text())
    info["weights_sha256"] = hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    (run / "run.json").write_text(json.dumps(info))


def test_a_profile_fitted_on_other_weights_is_refused(run, manifest):
    """A run trained again after its calibration keeps its profiles/ folder; the profile's thresholds
    and calibration belong to the old weights, so loading it is an error saying to calibrate again (a
    profile written before profiles recorded the weights loads as before)."""

    calibrate_site(Predictor(run), read_manifest(manifest), "clinic", folds=2, n_boot=10, progress=False)
    assert json.loads(profiles.profile_path(run, "clinic").read_text())["weights_sha256"] == \
        json.loads((run / "run.json").read_text())["weights_sha256"]
    Predictor(run, site="clinic")  # the same weights: applies

    trained_again(run)  # other weights, run.json agreeing
    with pytest.raises(ECGNetError, match=r"fitted on other weights .* run `ecgnet calibrate .* --site clinic` again"):
        Predictor(run, site="clinic")
    made = json.loads(profiles.profile_path(run, "clinic").read_text())  # made by the CLI: its command, whole
    made["command"] = "ecgnet calibrate r --manifest m.csv --site clinic --label-map map.yaml --method f1"
    profiles.profile_path(run, "clinic").write_text(json.dumps(made))
    with pytest.raises(ECGNetError) as e:  # its --label-map was dropped (a hospital audit); the run as named now
        Predictor(run, site="clinic")
    assert f"run `ecgnet calibrate {run} --manifest m.csv --site clinic --label-map map.yaml --method f1` again" \
        in str(e.value)

    old = json.loads(profiles.profile_path(run, "clinic").read_text())
    del old["weights_sha256"]
    profiles.profile_path(run, "clinic").write_text(json.dumps(old))
    assert Predictor(run, site="clinic").profile.site == "clinic"


def test_calibrate_warns_of_a_calibration_that_does_not_carry_and_of_few_cases():
    from ecgnet.evaluation.calibrate_site import fragile

    ok = {"n": 100, "n_positive": 40, "before": {}, "ece_before": 0.10, "ece_after": 0.11}
    worse = {"n": 100, "n_positive": 40, "before": {}, "ece_before": 0.22, "ece_after": 0.41}
    rare = {"n": 5, "n_positive": 1, "before": {}, "ece_before": 0.2, "ece_after": 0.2}
    unfitted = {"n": 5, "n_positive": 0}  # not scored: nothing to say about it here
    lines = fragile({"per_class": {"A": ok, "B": worse, "C": rare, "D": unfitted}})
    assert len(lines) == 2
    assert lines[0].startswith("B: held-out ECE 0.220 before calibration, 0.410 after") and "--calibration none" in lines[0]
    assert lines[1].startswith("fewer than 10 positives or negatives for C (1 positive, 4 negative)")


def test_an_unreadable_record_suggests_skip_bad_only_to_a_command_that_has_it(manifest, tmp_path):
    """train passes skip_bad (it has --skip-bad): the error suggests the option; distillation's unlabelled
    manifest passes nothing (no such option there): the same error without the suggestion."""
    with pytest.raises(ECGNetError, match=r"1 record\(s\) cannot be read \(pass --skip-bad"):
        read_manifest(manifest).load_signals(100, tmp_path / "c1", workers=1, progress=False, skip_bad=False)
    with pytest.raises(ECGNetError) as e:
        read_manifest(manifest).load_signals(100, tmp_path / "c2", workers=1, progress=False)
    assert "1 record(s) cannot be read:" in str(e.value) and "--skip-bad" not in str(e.value)


# --- calibrate --from-cv: the profile fitted on a cross-validation's out-of-fold predictions ---------------------

def _cross_validated(run: Path, n: int = 60, classes=tuple(RUN_CLASSES), seed: int = 3) -> tuple[np.ndarray, ...]:
    """Make ``run`` look cross-validated (run.json's cv protocol, cv/predictions.csv as training writes it: record,
    fold, source, patient, y_, p_): (y with NaN unknown, p, patients). Every class is labelled but STTC, whose
    y_ column is left out; HYP has unknown labels; two records per patient."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(classes))) < 0.4).astype(float)
    y[:2, :], y[2:4, :] = 1.0, 0.0
    p = np.clip(1 / (1 + np.exp(-(2.5 * (2 * y - 1) + rng.normal(0, 1.6, y.shape)))), 1e-4, 1 - 1e-4).round(6)
    y[[5, 17, 40], list(classes).index("HYP")] = np.nan
    y[:, list(classes).index("STTC")] = np.nan
    patients = np.array([f"q{i // 2}" for i in range(n)])
    table = pd.DataFrame({"record": [f"recs/r{i}.hea" for i in range(n)], "fold": [1 + (i // 2) % 3 for i in range(n)],
                          "source": ["cart_a" if i < n // 2 else "cart_b" for i in range(n)], "patient": patients})
    for k, c in enumerate(classes):
        if c != "STTC":
            table[f"y_{c}"] = pd.array([None if np.isnan(v) else int(v) for v in y[:, k]], dtype="Int64")
    for k, c in enumerate(classes):
        table[f"p_{c}"] = p[:, k]
    (run / "cv").mkdir(exist_ok=True)
    table.to_csv(run / "cv" / "predictions.csv", index=False, float_format="%.6f")
    info = json.loads((run / "run.json").read_text())
    info.update(cv={"kind": "3-fold", "folds": {"1": "fold 1", "2": "fold 2", "3": "fold 3"}, "seed": 0},
                collection={"name": "good", "manifest": "/hospital/good.csv"})
    (run / "run.json").write_text(json.dumps(info))
    (run / "cv" / "metrics.json").write_text(json.dumps({"protocol": info["cv"]}))  # as write_cv writes it
    return y, p, patients


def test_calibrate_from_cv_fits_the_out_of_fold_predictions_and_predict_applies_it(run, tmp_path):
    """The profile of --from-cv is the fit on cv/predictions.csv's arrays — temperatures as a logistic
    regression on logit(p) finds them, isotonic maps as scikit-learn's, Youden thresholds at sklearn's best
    balanced accuracy — with the report's held-out figures cross-fitted on the same arrays as calibrate does;
    the profile says it was fitted on out-of-fold predictions, and predict --site applies it."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve
    from typer.testing import CliRunner

    from ecgnet.cli import app
    from ecgnet.evaluation.calibrate_site import calibrate_from_cv, fit_and_cross_fit
    from ecgnet.evaluation.recalibration import apply_calibrator

    y, p, patients = _cross_validated(run)
    result = CliRunner().invoke(app, ["calibrate", str(run), "--site", "s1", "--from-cv", "--shrinkage", "0",
                                      "--folds", "3", "--n-boot", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "Site profile s1 for untrained: 60 records (out-of-fold predictions of 3 fold models, cv/predictions.csv)" \
        in said and "note: fitted on the cross-validation's out-of-fold predictions" in said
    assert "not labelled in cv/predictions.csv (the run's thresholds kept): STTC" in said
    profile = json.loads((run / "profiles" / "s1.json").read_text())
    fitted_on = profile["fitted_on"]
    assert fitted_on["probabilities"] == "out-of-fold" and fitted_on["fold_models"] == 3
    assert fitted_on["records"] == 60 and fitted_on["predictions"] == "cv/predictions.csv"
    assert fitted_on["predictions_sha256"] == hashlib.sha256((run / "cv" / "predictions.csv").read_bytes()).hexdigest()
    for words in ("3 fold models", "each of the 60 records scored by the fold model that did not train on it",
                  "not the final model's own probabilities", "cross-fitting approximation"):
        assert words in fitted_on["statement"], words
    assert profile["manifest"]["path"] == "/hospital/good.csv" and profile["manifest"]["records_used"] == 60
    assert profile["long_records"] == "segments" and profile["fitted"]["STTC"] == "not labelled in cv/predictions.csv"
    assert profile["calibrators"]["STTC"] == {"kind": "none"} and profile["thresholds"]["STTC"] == THRESHOLDS["STTC"]
    for k, c in enumerate(RUN_CLASSES[:4]):  # the temperature of each labelled class: 1 / the logistic slope
        known = ~np.isnan(y[:, k])
        z = np.log(p[known, k]) - np.log1p(-p[known, k])
        slope = LogisticRegression(fit_intercept=False, C=1e12, tol=1e-10, max_iter=10_000).fit(
            z[:, None], y[known, k]).coef_[0, 0]
        assert profile["calibrators"][c]["temperature"] == pytest.approx(1 / slope, rel=1e-3), c
        q = apply_calibrator(p[known, k], profile["calibrators"][c])
        fpr, tpr, _ = roc_curve(y[known, k], q)  # the threshold reaches sklearn's best balanced accuracy
        called = q >= profile["thresholds"][c]
        assert np.mean(called[y[known, k] == 1]) - np.mean(called[y[known, k] == 0]) == pytest.approx(
            np.max(tpr - fpr), abs=1e-9), c
    # the report's held-out figures: cross-fitted on the same arrays, as calibrate cross-fits its own
    fallback = [THRESHOLDS[c] for c in RUN_CLASSES]
    *_, evaluation = fit_and_cross_fit(y, p, patients, fallback, RUN_CLASSES, method="youden", target_sensitivity=0.9,
                                       calibration="temperature", folds=3, seed=0, n_boot=20, shrinkage=0.0)
    assert profile["evaluation"]["per_class"] == json.loads(json.dumps(evaluation["per_class"]))
    assert "out-of-fold ones (each record's from the fold model" in profile["evaluation"]["protocol"]
    report = (run / "profiles" / "s1" / "report.md").read_text()
    assert "out-of-fold: the cross-validation's out-of-fold predictions" in report and "cross-fitted" in report
    held = pd.read_csv(run / "profiles" / "s1" / "predictions.csv")
    assert set(held["fold"]) == {1, 2, 3} and list(held["cv_fold"]) == [1 + (i // 2) % 3 for i in range(60)]

    iso = calibrate_from_cv(Predictor(run), "iso", calibration="isotonic", folds=3, n_boot=20, source="cart_b")
    assert iso["manifest"]["records_used"] == 30 and iso["manifest"]["source"] == "cart_b"
    rows = slice(30, 60)
    for k, c in enumerate(RUN_CLASSES[:4]):
        known = ~np.isnan(y[rows, k])
        sk = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p[rows][known, k], y[rows][known, k])
        assert np.allclose(apply_calibrator(p[rows][known, k], iso["calibrators"][c]), sk.predict(p[rows][known, k]))

    record, _ = write_challenge(tmp_path / "new", name="N1", seed=7)  # predict --site: the profile's probabilities
    plain = {d["class"]: d for d in Predictor(run).predict_file(record, resample=True)["diagnoses"]}
    sited = Predictor(run, site="s1").predict_file(record, resample=True)
    assert sited["site"] == "s1"
    for d in sited["diagnoses"]:
        c = d["class"]
        assert d["probability"] == pytest.approx(float(apply_calibrator(plain[c]["probability"],
                                                                        profile["calibrators"][c])), abs=1e-6), c
        assert d["threshold"] == pytest.approx(profile["thresholds"][c]) and d["positive"] == (
            d["probability"] >= profile["thresholds"][c])


def test_calibrate_from_cv_refusals(run, manifest, tmp_path):
    """--from-cv refused, before anything is written: a run trained once (no cv/), cv/ left by an earlier
    training, predictions of other classes, --manifest beside it, options that read a manifest; calibrate
    with neither names both."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    runner = CliRunner()

    def refused(*args: str) -> str:
        result = runner.invoke(app, ["calibrate", str(run), "--site", "s1", "--no-progress", *args])
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert not (run / "profiles").exists()
        return " ".join(result.stderr.split())

    said = refused("--from-cv")
    assert "no cv/predictions.csv — the run was trained once, not cross-validated" in said
    assert "--manifest M.csv on records the run has not seen" in said and "--folds K" in said
    said = refused()
    assert "--manifest M.csv" in said and "--from-cv" in said
    _cross_validated(run)
    said = refused("--from-cv", "--manifest", str(manifest))
    assert "--from-cv fits on the run's out-of-fold predictions" in said and "give one of them" in said
    assert "--label-map: not with --from-cv" in refused("--from-cv", "--label-map", str(tmp_path / "map.yaml"))
    assert "--long-records first: not with --from-cv" in refused("--from-cv", "--long-records", "first")
    table = pd.read_csv(run / "cv" / "predictions.csv")
    table.rename(columns={"p_STTC": "p_AFIB"}).to_csv(run / "cv" / "predictions.csv", index=False)
    said = refused("--from-cv")
    assert "its probabilities are of CD, HYP, MI, NORM, AFIB, the run predicts CD, HYP, MI, NORM, STTC" in said
    table.to_csv(run / "cv" / "predictions.csv", index=False)
    info = json.loads((run / "run.json").read_text())
    del info["cv"]  # trained again, once, under the same name: cv/ is the earlier training's
    (run / "run.json").write_text(json.dumps(info))
    assert "from an earlier training of this run" in refused("--from-cv")
    info["cv"] = {"kind": "2-fold", "folds": {"1": "fold 1", "2": "fold 2"}, "seed": 0}  # retrained with --folds 2,
    (run / "run.json").write_text(json.dumps(info))  # cut off before cv/ was written (a review)
    assert "not of the run's last cross-validation" in refused("--from-cv")
    _cross_validated(run)
    said = refused("--from-cv", "--max-seconds", "1800")  # reads no records: accepted and ignored before (a review)
    assert "--max-seconds/--max-signals/--max-values: not with --from-cv" in said


def test_the_in_sample_warning_points_to_from_cv_when_the_run_was_cross_validated(run, manifest):
    """calibrate --manifest on the records a cross-validated run trained on: the warning says the figures are
    optimistic and that --from-cv fits on the out-of-fold predictions instead (not for a run trained once)."""
    info = json.loads((run / "run.json").read_text())
    info["collection"] = {"name": "m", "manifest": str(manifest.resolve())}  # trained on this manifest
    (run / "run.json").write_text(json.dumps(info))
    once = calibrate_site(Predictor(run), read_manifest(manifest), "once", folds=2, n_boot=10, progress=False)
    warning = [w for w in once["evaluation"]["warnings"] if "in-sample" in w]
    assert warning and "--from-cv" not in warning[0]
    assert once["fitted_on"]["probabilities"] == "the run's own" and "in-sample" in once["fitted_on"]["statement"]
    _cross_validated(run)
    info = json.loads((run / "run.json").read_text())
    info["collection"] = {"name": "m", "manifest": str(manifest.resolve())}
    (run / "run.json").write_text(json.dumps(info))
    again = calibrate_site(Predictor(run), read_manifest(manifest), "cv", folds=2, n_boot=10, progress=False)
    warning = [w for w in again["evaluation"]["warnings"] if "in-sample" in w][0]
    assert "the 'held-out' figures below are optimistic" in warning
    assert f"`ecgnet calibrate {run} --site cv --from-cv`" in warning


def test_a_stale_profile_names_the_run_as_it_is_named_now(run, manifest, tmp_path, monkeypatch):
    """A run calibrated as runs/site_cv, copied to runs2/ and trained again: the error replays the recorded
    command with the run as named now (runs2/site_cv), its other options kept and --copy-to dropped, and says
    the manifest path is as recorded, relative to where calibrate was run."""

    monkeypatch.chdir(tmp_path)
    calibrate_site(Predictor(run), read_manifest(manifest), "s1", folds=2, n_boot=10, progress=False)
    made = json.loads(profiles.profile_path(run, "s1").read_text())
    made["command"] = ("ecgnet calibrate runs/site_cv --manifest hosp/good.csv --site s1 --label-map map.yaml "
                       "--skip-bad --method=f1 --copy-to runs/elsewhere --no-progress")
    profiles.profile_path(run, "s1").write_text(json.dumps(made))
    shutil.copytree(run, tmp_path / "runs2" / "site_cv")
    moved = Path("runs2") / "site_cv"
    trained_again(moved)
    with pytest.raises(ECGNetError) as e:
        Predictor(moved, site="s1")
    said = str(e.value)
    assert ("run `ecgnet calibrate runs2/site_cv --manifest hosp/good.csv --site s1 --label-map map.yaml --skip-bad "
            "--method=f1 --no-progress` again (--manifest hosp/good.csv as recorded when the profile was fitted: "
            f"relative to the folder calibrate was run in; the profile records it as {manifest.resolve()})") in said
    assert "runs/site_cv" not in said.split("run `")[1] and "--copy-to" not in said

    made["command"] = "ecgnet calibrate --site s1 /old/runs/site_cv --from-cv --folds 3"  # the run after an option
    profiles.profile_path(moved, "s1").write_text(json.dumps(made))
    with pytest.raises(ECGNetError, match=r"run `ecgnet calibrate runs2/site_cv --site s1 --from-cv --folds 3` "
                                          r"again$"):
        Predictor(moved, site="s1")
    made["command"] = "ecgnet calibrate runs/site_cv --manifest '/data/site a/m.csv' --site s1 --source 'cart b'"
    profiles.profile_path(moved, "s1").write_text(json.dumps(made))  # recorded shell-quoted: words kept whole
    with pytest.raises(ECGNetError, match=r"run `ecgnet calibrate runs2/site_cv --manifest '/data/site a/m.csv' "
                                          r"--site s1 --source 'cart b'` again \(--manifest /data/site a/m.csv as "):
        Predictor(moved, site="s1")
    made["command"] = None  # made through the API: rebuilt from the profile
    profiles.profile_path(moved, "s1").write_text(json.dumps(made))
    with pytest.raises(ECGNetError, match=r"run `ecgnet calibrate runs2/site_cv --manifest \S+manifest.csv --site s1` "
                                          r"again \(--manifest \S+manifest.csv as recorded when the profile was "
                                          r"fitted\)$"):
        Predictor(moved, site="s1")


def test_the_recorded_calibrate_command_is_parsed_with_the_clis_own_flags():
    """calibrate_again reads a recorded command word by word: which options take no value must be the CLI's."""
    import typer.main

    from ecgnet.cli import app

    command = typer.main.get_command(app).commands["calibrate"]
    flags = {o for p in command.params if getattr(p, "is_flag", False) for o in (*p.opts, *p.secondary_opts)}
    assert flags - {"--help"} == set(profiles.CALIBRATE_FLAGS)


def test_an_older_profiles_space_joined_windows_command_keeps_its_backslashes():
    """Before commands were recorded with shlex.join, argv was joined with spaces: shlex.split read a Windows
    path's backslashes as escapes (C:\\runs\\a -> C:runsa). A command that does not join back is split on spaces."""
    old = r"ecgnet calibrate C:\runs\a --manifest C:\site\m.csv --site s1"
    again, note = profiles.calibrate_again("runs/a", {"command": old}, "s1")
    assert again == r"ecgnet calibrate runs/a --manifest 'C:\site\m.csv' --site s1"
    assert r"--manifest C:\site\m.csv as recorded" in note
    quoted = "ecgnet calibrate runs/a --manifest '/data/site a/m.csv' --site s1"  # as shlex.join writes today
    assert profiles.calibrate_again("runs/a", {"command": quoted}, "s1")[0] == quoted
