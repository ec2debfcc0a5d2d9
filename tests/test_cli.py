"""The `ecgnet` command: help, exit statuses, one-line errors naming the file, and predict end to end."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.data.signals import LEADS

CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]
VALID_CONFIG = """\
name: cli_tiny
model:
  name: time_resnet1d
  params: {widths: [16, 32]}
training:
  epochs: 1
"""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Invoke the app in tmp_path (nothing lands in the repository), returning the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(app, [str(a) for a in args], env=env)

    return invoke


def assert_user_error(result, *fragments, status: int = 2):
    """Exit 2 (1 for a record predict could not read), no traceback, one 'error:' line on stderr
    containing every fragment."""
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    message = result.stderr.strip()
    assert message.startswith("error:"), message
    assert "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert str(fragment) in message, f"{fragment!r} not in {message!r}"
    return message


# --- help ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["data"], ["data", "download"], ["data", "verify"], ["data", "info"],
                                     ["train"], ["evaluate"], ["predict"]], ids=lambda c: " ".join(c) or "app")
def test_help(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


def test_help_shows_no_value_beside_a_flag(cli):
    """typer's rich help printed '--json <bool>', '--help <bool>' as if a flag took a value ('--json true')."""
    import typer.main

    from ecgnet.cli import app

    root = typer.main.get_command(app)
    commands = [[]] + [[name] for name in root.commands if name != "data"] + [["data", name] for name in
                                                                              root.commands["data"].commands]
    assert len(commands) > 15
    for command in commands:
        out = cli(*command, "--help").output
        assert "--help" in out and "<bool>" not in out, (command, out)
    assert "<int range>" in cli("predict", "--help").output  # options that take values keep their types
    # the listing's line of a command is its docstring's first paragraph, flowing (it kept the line breaks)
    listing = root.commands["evaluate"].short_help
    assert listing.startswith("Evaluate a trained run on PTB-XL's test fold") and "\n" not in listing
    assert "table on the terminal" in listing


def test_help_lists_every_command(cli):
    out = cli("--help").output
    for name in ("data", "train", "evaluate", "predict"):
        assert name in out
    out = cli("data", "--help").output
    for name in ("download", "verify", "info"):
        assert name in out


# --- train: input errors (nothing is trained) -----------------------------------------------------

def test_train_without_data_folder(cli, tmp_path):
    (tmp_path / "ok.yaml").write_text(VALID_CONFIG)
    result = cli("train", "--config", tmp_path / "ok.yaml", "--runs-dir", tmp_path / "runs",
                 env={"ECGNET_DATA": None})
    assert_user_error(result, "ECGNET_DATA")
    assert not (tmp_path / "runs").exists()


def test_train_with_bogus_data_folder(cli, tmp_path):
    (tmp_path / "ok.yaml").write_text(VALID_CONFIG)
    bogus = tmp_path / "no-such-ptbxl"
    result = cli("train", "--config", tmp_path / "ok.yaml", "--data", bogus, "--runs-dir", tmp_path / "runs")
    assert_user_error(result, bogus, "ptbxl_database.csv")
    assert not (tmp_path / "runs").exists()


def test_train_with_unknown_config_key(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(VALID_CONFIG + "optimizer: sgd\n")
    result = cli("train", "--config", path, "--data", tmp_path / "whatever", "--runs-dir", tmp_path / "runs")
    assert_user_error(result, path, "optimizer")


def test_train_with_missing_config(cli, tmp_path):
    assert_user_error(cli("train", "--config", tmp_path / "absent.yaml"), tmp_path / "absent.yaml")


# --- predict: input errors (untrained run, no data needed) ---------------------------------------
# A record that cannot be read is named on stderr and makes the exit status 1; usage errors give 2.

def _corrupt(write_record):
    path, _ = write_record("corrupt")
    dat = path.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:1001])
    return path


PREDICT_ERRORS = {
    "corrupt_dat": (_corrupt, "cannot be read"),
    "missing_lead": (lambda w: w("leads11", leads=(*LEADS[:11], "X"))[0], "missing: V6"),
    "500hz": (lambda w: w("hz500", fs=500)[0], "500 Hz"),  # with --no-resample (resampling is the default)
    "nan": (lambda w: w("nan", nan=True)[0], "NaN"),
    "too_short": (lambda w: w("short", samples=200)[0], "at least 2.5 s"),
}


def test_predict_a_mistyped_path_fails_before_any_model_loads(cli, untrained_run, tmp_path, monkeypatch):
    from ecgnet.runs import directory

    monkeypatch.setattr(directory, "load_run", lambda *a: pytest.fail("a model was loaded"))
    result = cli("predict", tmp_path / "does_not_exist.hea", "--checkpoint", untrained_run)
    assert_user_error(result, tmp_path / "does_not_exist.hea", "no such record or file", status=2)


@pytest.mark.parametrize("case", PREDICT_ERRORS)
def test_predict_input_errors(cli, untrained_run, write_record, tmp_path, case):
    make, fragment = PREDICT_ERRORS[case]
    path = make(write_record)
    path = path if path.is_absolute() else tmp_path / path
    result = cli("predict", path, "--checkpoint", untrained_run, *(["--no-resample"] if case == "500hz" else []))
    assert_user_error(result, path, fragment, status=1)
    assert result.stdout == ""


def test_predict_resample(cli, untrained_run, write_record):
    path, _ = write_record("hz500", fs=500)
    result = cli("predict", path, "--checkpoint", untrained_run, "--resample", "--json")
    assert result.exit_code == 0, result.output
    [res] = json.loads(result.stdout)
    assert res["record"] == str(path) and len(res["diagnoses"]) == 5
    assert all(d["positive"] is None for d in res["diagnoses"])  # an untrained run has no thresholds
    assert res["notes"] == ["resampled: 500 Hz → 100 Hz"] and res["warnings"] == [] and res["positives"] == []


def test_predict_bad_sex(cli, untrained_run, write_record):
    path, _ = write_record()
    assert_user_error(cli("predict", path, "--checkpoint", untrained_run, "--sex", "robot"), "--sex")
    assert_user_error(cli("predict", path, "--checkpoint", untrained_run, "--sex", "1"), "--sex", "write male/female")


def test_predict_a_folder_without_ecgs_names_what_it_looked_for(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("not an ECG")
    assert_user_error(cli("predict", tmp_path), "no ECG records found", "format ecgnet reads")


def test_predict_checkpoint_not_a_run(cli, tmp_path, write_record):
    path, _ = write_record()
    assert_user_error(cli("predict", path, "--checkpoint", tmp_path), tmp_path, "not an ECGNet run")


@pytest.mark.parametrize("damage", [
    "truncated_weights",
    "corrupt_run_json",
    "wrong_classes",
    "missing_weights",
])
def test_predict_with_a_broken_run(cli, untrained_run, write_record, tmp_path, damage):
    run = tmp_path / "broken_run"
    shutil.copytree(untrained_run, run)
    weights, info = run / "model.safetensors", run / "run.json"
    if damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:100])
        culprit = weights
    elif damage == "corrupt_run_json":
        info.write_text("{not json")
        culprit = info
    elif damage == "wrong_classes":
        info.write_text(json.dumps({"name": "untrained", "classes": ["A", "B", "C"]}))
        culprit = weights
    else:
        weights.unlink()
        culprit = weights
    path, _ = write_record()
    assert_user_error(cli("predict", path, "--checkpoint", run), culprit)


def test_predict_exit_status_from_the_installed_command(untrained_run, tmp_path):
    """The real entry point: status 1 for an unreadable record, 2 for a path that does not exist (a usage
    error, before any model loads); one line on stderr each, no traceback."""
    exe = Path(sys.executable).with_name("ecgnet")
    if not exe.is_file():
        pytest.skip(f"{exe} is not installed")
    (tmp_path / "bad.hea").write_text("bad 12 100 1000\nnot a signal line\n")
    for name, status in (("bad.hea", 1), ("gone.hea", 2)):
        proc = subprocess.run([str(exe), "predict", str(tmp_path / name), "--checkpoint", str(untrained_run)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env={**os.environ, "COLUMNS": "300"})
        assert proc.returncode == status, proc.stderr
        assert proc.stderr.strip().startswith("error:") and "\n" not in proc.stderr.strip()
        assert str(tmp_path / name) in proc.stderr and "Traceback" not in proc.stderr


# --- predict with the tiny trained run (real data) -----------------------------------------------

@pytest.fixture(scope="module")
def fold10_record(ptbxl_root, tiny_run, ptbxl_tables):
    """A fold-10 record: (header path, its saved test probabilities from the run's evaluation)."""
    saved = pd.read_csv(tiny_run.run_dir / "test" / "predictions.csv").set_index("ecg_id")
    db, _ = ptbxl_tables
    ecg_id = int(saved.index[0])
    assert db.at[ecg_id, "strat_fold"] == 10
    return ptbxl_root / (db.at[ecg_id, "filename_lr"] + ".hea"), saved.loc[ecg_id, CLASSES].to_numpy(float)


def test_predict_prints_the_classes(cli, tiny_run, fold10_record):
    path, _ = fold10_record
    result = cli("predict", path, "--checkpoint", tiny_run.run_dir, "--top", "5")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert sorted(line[0] for line in lines) == CLASSES
    probs = [float(line[1]) for line in lines]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert "myocardial infarction" in result.stdout  # the class descriptions from the run
    top2 = cli("predict", path, "--checkpoint", tiny_run.run_dir, "--top", "2")
    assert len([line for line in top2.stdout.splitlines() if line.startswith("  ")]) == 2


def test_predict_json_matches_the_evaluation(cli, tiny_run, fold10_record):
    path, saved = fold10_record
    result = cli("predict", path, path, "--checkpoint", tiny_run.run_dir, "--json", "--age", "300",
                 "--sex", "female")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out) == 1  # a record named twice is diagnosed once
    res = out[0]
    assert set(res) == {"record", "model", "engine", "weights_sha256", "site", "calls", "seconds", "source_rate",
                        "coverage", "metadata", "warnings", "notes",
                        "amplitude_trusted", "quality", "format", "leads", "derived_leads", "statements",
                        "diagnoses", "positives"}
    assert (res["format"], res["derived_leads"], res["statements"]) == ("wfdb", [], [])
    assert res["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert res["record"] == str(path) and res["model"] == "tiny_time" and res["warnings"] == []
    assert res["engine"] == "torch" and res["weights_sha256"] == hashlib.sha256(
        (tiny_run.run_dir / "model.safetensors").read_bytes()).hexdigest()  # saved results say what computed them
    assert res["metadata"] == {}  # a time-only model uses no metadata
    assert res["calls"] == "probability ≥ the class's threshold (chosen on fold 9)"  # where they come from
    assert sorted(d["class"] for d in res["diagnoses"]) == CLASSES
    assert res["positives"] == [d["class"] for d in res["diagnoses"] if d["positive"]]
    for d in res["diagnoses"]:
        assert set(d) == {"class", "probability", "description", "threshold", "positive"}
        assert 0 <= d["probability"] <= 1 and isinstance(d["positive"], bool)
    probs = [d["probability"] for d in res["diagnoses"]]
    assert probs == sorted(probs, reverse=True)
    # the same record through `predict` and through the fold-10 evaluation: the same probabilities
    by_class = {d["class"]: d["probability"] for d in res["diagnoses"]}
    np.testing.assert_allclose([by_class[c] for c in CLASSES], saved, atol=1e-4)
    # positives follow the fold-9 thresholds
    val = json.loads((tiny_run.run_dir / "val" / "metrics.json").read_text())
    for d in res["diagnoses"]:
        thr = val["per_class"][d["class"]]["threshold"]
        if abs(saved[CLASSES.index(d["class"])] - thr) > 1e-4:
            assert d["positive"] == (saved[CLASSES.index(d["class"])] >= thr)


# --- evaluate -----------------------------------------------------------------------------------

def test_evaluate_not_a_run(cli, tmp_path):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    assert_user_error(cli("evaluate", "--checkpoint", folder, "--data", tmp_path), folder, "config.yaml")
    assert not (tmp_path / "outputs").exists()


def test_evaluate_bad_split(cli, untrained_run):
    assert_user_error(cli("evaluate", "--checkpoint", untrained_run, "--split", "train"), "--split")


def test_evaluate_without_data(cli, untrained_run):
    assert_user_error(cli("evaluate", "--checkpoint", untrained_run, env={"ECGNET_DATA": None}), "ECGNET_DATA")


@pytest.mark.parametrize("name", ["run[old]", "a[/]b"])
def test_error_message_keeps_brackets(cli, tmp_path, name):
    folder = tmp_path / name
    folder.mkdir(parents=True)  # "a[/]b" is the folder "]b" inside "a["
    assert_user_error(cli("evaluate", "--checkpoint", folder), folder)


def test_evaluate_tiny_run(cli, tiny_run, ptbxl_root, tmp_path):
    """Re-evaluation of a saved run gives its metrics again (on fold 9 only: half the work of fold 10)."""
    out = tmp_path / "eval"
    result = cli("evaluate", "--checkpoint", tiny_run.run_dir, "--data", ptbxl_root, "--out", out,
                 "--split", "val", "--n-boot", "20", "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("val/metrics.json", "val/predictions.csv", "report.html"):
        assert (out / name).is_file(), name
    assert not (out / "test").exists()
    assert not (tmp_path / "outputs").exists()
    again = json.loads((out / "val" / "metrics.json").read_text())
    original = json.loads((tiny_run.run_dir / "val" / "metrics.json").read_text())
    assert again["macro_auc"]["value"] == pytest.approx(original["macro_auc"]["value"], abs=1e-6)
    assert again["per_class"]["MI"]["threshold"] == pytest.approx(original["per_class"]["MI"]["threshold"])


# --- data -----------------------------------------------------------------------------------------

@pytest.fixture
def release(tmp_path):
    """A tiny release folder with its SHA256SUMS.txt."""
    root = tmp_path / "release"
    files = {"ptbxl_database.csv": b"ecg_id\n1\n", "records100/00000/00001_lr.dat": bytes(range(256)) * 4,
             "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "SHA256SUMS.txt").write_text("".join(f"{hashlib.sha256(d).hexdigest()} {r}\n" for r, d in files.items()))
    return root


def test_data_verify_good_folder(cli, release):
    result = cli("data", "verify", release, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "3 files OK" in result.output


def test_data_verify_corrupt_folder(cli, release):
    dat = release / "records100/00000/00001_lr.dat"
    dat.write_bytes(dat.read_bytes()[:-1] + b"\x00")
    result = cli("data", "verify", release, "--no-progress")
    assert result.exit_code == 1, result.output
    assert "1 corrupt" in result.output and "records100/00000/00001_lr.dat" in result.output


def test_data_verify_folder_without_checksums(cli, tmp_path):
    assert_user_error(cli("data", "verify", tmp_path, "--no-progress"), "SHA256SUMS.txt")


def test_data_info(cli, ptbxl_root):
    result = cli("data", "info", "--data", ptbxl_root)
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.strip().startswith("│")
            and len(line.split()) > 2}
    assert "21430" in rows["superdiagnostic"] and "2163" in rows["superdiagnostic"]
    assert "8988" in rows["form"] and "21837" in rows["all"]


def test_data_info_without_data(cli):
    assert_user_error(cli("data", "info", env={"ECGNET_DATA": None}), "ECGNET_DATA")


def test_a_metadata_model_says_which_patient_fields_it_did_not_have(write_record):
    from ecgnet.inference.predictor import Predictor

    path, _ = write_record("nometa")  # a header without #Age/#Sex
    predictor = Predictor("intermediate_concat_weighted_bce")  # bundled; reads age, sex, height, weight
    bare = predictor.predict_file(path)
    assert any("unknown here: age, sex, height, weight" in n for n in bare["notes"]), bare["notes"]
    given = predictor.predict_file(path, age=55, sex="male", height=175, weight=70)
    assert not any("unknown here" in n for n in given["notes"])
    assert not any("unknown here" in n for n in Predictor("long_time").predict_file(path)["notes"])  # time only


@pytest.mark.parametrize("args, message", [(["--max-seconds", "-5"], "--max-seconds -5.0: a limit is a positive number"),
                                           (["--max-seconds", "nan"], "--max-seconds nan: a limit is a positive number"),
                                           (["--max-values", "0"], "--max-values 0: a limit is a positive number"),
                                           (["--top", "-1"], "--top")])
def test_option_values_that_make_no_sense_are_usage_errors(cli, untrained_run, write_record, args, message):
    """--max-seconds -5 refused every record (status 1), nan disabled the limit, --top -1 was taken."""
    result = cli("predict", write_record("r")[0], "--checkpoint", untrained_run, *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_data_verify_defaults_to_ecgnet_data(cli, release, monkeypatch):
    """`data info` read $ECGNET_DATA, `data verify` asked for a folder."""
    result = cli("data", "verify", "--no-progress", env={"ECGNET_DATA": str(release)})
    assert result.exit_code == 0 and "3 files OK" in result.output, result.output
    refused = cli("data", "verify", "--no-progress", env={"ECGNET_DATA": ""})
    assert refused.exit_code == 2 and "or set ECGNET_DATA" in refused.output
