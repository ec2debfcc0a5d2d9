"""`ecgnet evaluate-external`: every record counted (scored, unreadable or unlabeled), labels from the Dx codes,
AUCs that sklearn recomputes from predictions.csv, per-source results, a report, clear errors for runs of
another task or empty folders — and the committed baseline's transfer to the real Challenge samples."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.config import parse_config
from ecgnet.evaluation.external import evaluate_external
from ecgnet.models import build_model
from ecgnet.runs import save_model
from test_records import write_challenge

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"
CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]
SR, SB, MI, LVH, CRBBB = "426783006", "426177001", "164865005", "164873001", "713427006"
STC, AF = "55930002", "164889003"  # ST changes (STTC), atrial fibrillation (no superclass)
# (source, name, Dx codes, expected superclasses): every class has >= 2 positives and >= 2 negatives
RECORDS = [("hosp_a", "A01", [SR], {"NORM"}), ("hosp_a", "A02", [MI, CRBBB], {"MI", "CD"}),
           ("hosp_a", "A03", [LVH, STC], {"HYP", "STTC"}), ("hosp_a", "A04", [SR, MI], {"MI"}),
           ("hosp_b", "B01", [SB], {"NORM"}), ("hosp_b", "B02", [CRBBB, LVH], {"CD", "HYP"}),
           ("hosp_b", "B03", [STC], {"STTC"}), ("hosp_b", "B04", [MI], {"MI"})]


def recomputed_macro_auc(out: Path, classes: list[str]) -> float:
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""])
    scored = table[table["error"].isna() & table["labeled"]]
    return roc_auc_score(scored[[f"y_{c}" for c in classes]], scored[[f"p_{c}" for c in classes]], average="macro")


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "external"
    for i, (source, name, codes, _) in enumerate(RECORDS):
        write_challenge(root / source, name=name, fs=500 if i % 2 else 1000, seed=i,
                        comments=(f"Dx: {','.join(codes)}",))
    write_challenge(root / "hosp_b", name="B05", seed=20, comments=(f"Dx: {AF}",))  # no superclass
    broken, _ = write_challenge(root / "hosp_b", name="B06", seed=21, comments=(f"Dx: {SR}",))
    broken.with_suffix(".mat").write_bytes(broken.with_suffix(".mat").read_bytes()[:5000])
    return root


def test_synthetic_dataset_through_the_cli(dataset, untrained_run, tmp_path):
    out = tmp_path / "out"
    args = ["evaluate-external", str(dataset), "--checkpoint", str(untrained_run), "--out", str(out),
            "--no-progress", "--n-boot", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # as evaluate --manifest and predict: a record was unreadable
    printed = " ".join(result.stdout.split())  # rich wraps long lines
    assert "8 of 10 records scored (1 unreadable, 1 without a superclass)" in printed
    said = " ".join(result.stderr.split())
    assert "error: 1 of 9 records of" in said and "the other 8 were scored" in said and "--skip-bad" in said
    assert "B06" in printed  # named
    assert CliRunner().invoke(app, [*args, "--skip-bad"]).exit_code == 0
    assert "macro AUC 0." in printed

    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_records"], metrics["n_scored"]) == (10, 8)
    assert [Path(r["record"]).name for r in metrics["unreadable"]] == ["B06.hea"]
    assert [Path(r).name for r in metrics["unlabeled"]] == ["B05.hea"]
    assert metrics["classes_scored"] == CLASSES and metrics["macro_auc"]["n_boot"] == 50
    assert {c: e["n_positive"] for c, e in metrics["per_class"].items()} == \
        {c: sum(c in labels for *_, labels in RECORDS) for c in CLASSES}
    assert set(metrics["per_source"]) == {"hosp_a", "hosp_b"}
    assert {s: e["n"] for s, e in metrics["per_source"].items()} == {"hosp_a": 4, "hosp_b": 4}

    table = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""]).set_index("record")
    assert len(table) == 10 and {f"{k}_{c}" for k in "yp" for c in CLASSES} <= set(table.columns)
    for source, name, _, labels in RECORDS:
        row = table.loc[f"{source}/{name}.hea"]  # paths relative to the dataset folder
        assert row["source"] == source and row["labeled"]
        assert {c for c in CLASSES if row[f"y_{c}"]} == labels and row[[f"p_{c}" for c in CLASSES]].notna().all()
    assert table.loc["hosp_b/B06.hea", [f"p_{c}" for c in CLASSES]].isna().all()
    assert metrics["macro_auc"]["value"] == pytest.approx(recomputed_macro_auc(out, CLASSES), abs=1e-4)
    assert (out / "external.html").is_file() and (out / "external.md").is_file()
    # the report stands alone: the weights scored and the command and code that scored them
    made = metrics["made_by"]
    assert made["weights_sha256"] == hashlib.sha256((untrained_run / "model.safetensors").read_bytes()).hexdigest()
    assert made["engine"] == "torch" and made["command"] and "date" in made
    assert f"weights {made['weights_sha256'][:12]} (torch)" in (out / "external.md").read_text()


def test_a_run_of_another_task_is_refused(tmp_path, untrained_run):
    config = parse_config({"name": "diag", "data": {"task": "diagnostic"},
                           "model": {"name": "time_resnet1d", "params": {"widths": [8]}}}, source="test")
    run_dir = tmp_path / "diag"
    save_model(run_dir, build_model("time_resnet1d", 3, widths=[8]).eval(), config,
               {"name": "diag", "task": "diagnostic", "classes": ["AMI", "IMI", "LVH"], "seed": 0})
    folder = tmp_path / "data"
    write_challenge(folder, comments=(f"Dx: {SR}",))
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate-external", str(folder), "--checkpoint", str(run_dir), "--no-progress",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "predicts 3 classes of the 'diagnostic' task" in result.stderr
    assert not (tmp_path / "out").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["evaluate-external", str(empty), "--checkpoint", str(untrained_run), "--no-progress",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{empty}: no WFDB records" in result.stderr, result.output


@pytest.mark.slow
def test_baseline_transfer_to_the_real_challenge_samples(tmp_path):
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared Challenge samples are not at {SAMPLES}")
    result = evaluate_external(REPO / "runs" / "baseline_time", SAMPLES, tmp_path, n_boot=200, progress=False)
    assert (result["n_records"], result["n_scored"], len(result["unreadable"]), len(result["unlabeled"])) == \
        (122, 92, 0, 30)
    assert {c: e["n_positive"] for c, e in result["per_class"].items()} == \
        {"NORM": 18, "MI": 21, "STTC": 35, "CD": 29, "HYP": 14}
    assert result["classes_scored"] == CLASSES
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["macro_auc"]["value"] == pytest.approx(recomputed_macro_auc(tmp_path, CLASSES), abs=1e-4)
    assert round(metrics["macro_auc"]["value"], 3) == 0.790
    low, high = metrics["macro_auc"]["low"], metrics["macro_auc"]["high"]
    assert low < 0.790 < high
