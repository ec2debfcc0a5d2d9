"""A run fine-tuned on a site's own classes (AF, NORMAL, RBBB — not PTB-XL's) works everywhere a PTB-XL run
does: the printed report names each class once, with no PTB-XL description; the viewer's PTB-XL reference
gives no superclass labels for such a model and does not call fold 9 its threshold fold or fold 10 its test
fold, but says whether the record trained it or the run it was fine-tuned from.

The run is built the cheap way (an untrained tiny model saved with the site's classes and a run.json as
``ecgnet train --manifest … --label-map … --from long_time --folds K`` writes it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import write_wfdb

OWN = ["AF", "NORMAL", "RBBB"]
OOF = "pooled out-of-fold predictions of the cross-validation"
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def own_run(folder: Path, name: str = "site3", classes=OWN, trained_on: list[Path] = ()) -> Path:
    """A run of the site's own classes, as a fine-tune of long_time with --folds writes it: task None, each
    class described by its own name, thresholds chosen on the out-of-fold predictions."""
    import torch

    from ecgnet.config import parse_config
    from ecgnet.models import build_model
    from ecgnet.runs import save_model

    config = parse_config({"name": name, "data": {"task": "superdiagnostic"},  # as the fine-tune inherits it
                           "model": {"name": "time_resnet1d", "params": {"widths": [8]}}}, source="test")
    torch.manual_seed(0)
    run_dir = folder / name
    info = {"name": name, "task": None, "classes": list(classes), "class_descriptions": {c: c for c in classes},
            "seed": 0, "collection": {"name": "M", "manifest": str(folder / "M.csv")},
            "finetune": {"from": "long_time", "from_run": "long_time", "mode": "head"}}
    save_model(run_dir, build_model("time_resnet1d", len(classes), widths=[8]).eval(), config, info)
    (run_dir / "val").mkdir()
    thresholds = {c: 0.0 if i == 0 else 1.0 for i, c in enumerate(classes)}  # the first positive, the others not
    (run_dir / "val" / "metrics.json").write_text(json.dumps(
        {"thresholds_from": OOF, "per_class": {c: {"threshold": t} for c, t in thresholds.items()}}))
    if trained_on:
        (run_dir / "trained_on.txt").write_text("".join(f"{Path(p).resolve()}\t\t\n" for p in trained_on))
    return run_dir


def printed_report(run: Path, folder: Path, out: Path) -> str:
    """`ecgnet report` of a WFDB record written in ``folder`` by ``run``, to the PDF ``out``: its text, laid out."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    header, _ = write_wfdb(folder / "records", out.stem)
    res = CliRunner().invoke(app, ["report", str(header), "--pdf", str(out), "--checkpoint", str(run)])
    assert res.exit_code == 0, res.output
    return subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout


@needs_poppler
def test_the_printed_report_names_an_own_class_once_without_a_ptbxl_description(tmp_path):
    """`ecgnet report` with an own-classes run: each class by its name, once ("AF  AF" was printed: the run's
    description of a class without one is its name), and no PTB-XL superclass description anywhere."""
    out = tmp_path / "r1.pdf"
    text = printed_report(own_run(tmp_path), tmp_path, out)
    for c in OWN:  # the name once, then its probability
        assert re.search(rf"\b{c} +\d\.\d{{3}}", text) and not re.search(rf"\b{c} +{c}\b", text), text
    flowing = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "(chosen on pooled out-of-fold" in flowing  # where its thresholds come from: not "fold 9"
    for ptbxl_words in ("myocardial", "infarction", "normal ECG", "Conduction", "Hypertrophy", "fold 9"):
        assert ptbxl_words.lower() not in text.lower(), ptbxl_words


def test_a_described_class_keeps_its_description_on_the_page():
    """A real description (a PTB-XL run's) is printed beside its class; a class without one ("", as predict gives
    it) by its name alone."""
    from matplotlib.figure import Figure

    from ecgnet.report.pdf import _calls

    fig = Figure()
    ax = fig.add_axes((0, 0, 1, 1))
    result = {"diagnoses": [{"class": "MI", "probability": 0.8, "description": "Myocardial Infarction",
                             "threshold": 0.3, "positive": True},
                            {"class": "AF", "probability": 0.1, "description": "", "threshold": 0.3,
                             "positive": False}], "positives": ["MI"]}
    _calls(ax, 104, 190, 140, result, {"name": "m", "weights_sha256": "0" * 64, "calls": "probability ≥ x"})
    texts = [t.get_text() for t in ax.texts]
    assert "MI  Myocardial Infarction" in texts and "AF" in texts and "AF  AF" not in texts


def test_the_reference_task_of_own_classes_is_none():
    """Which PTB-XL task labels a model's classes: its run's; the superclasses for a run without a task whose
    classes are some of them; none for a run of its own classes (it defaulted to the superclasses)."""
    from ecgnet.serve.reference import header_reference, reference_task

    def predictor(task, classes):
        return SimpleNamespace(info={"task": task}, classes=classes)

    assert reference_task(predictor("superdiagnostic", ["CD", "HYP", "MI", "NORM", "STTC"])) == "superdiagnostic"
    assert reference_task(predictor("rhythm", ["AFIB", "SR"])) == "rhythm"
    assert reference_task(predictor(None, ["MI", "NORM"])) == "superdiagnostic"
    assert reference_task(predictor(None, OWN)) is None
    record = SimpleNamespace(comments=["Dx: 164889003"])  # AF's SNOMED CT code: no superclass label for AF
    assert header_reference(record, predictor(None, OWN)) is None


def test_an_uploaded_records_dx_codes_go_through_the_runs_label_map(tmp_path):
    """A Challenge upload got a #Dx reference for a PTB-XL run but none for a run of its own classes, whose
    label map run.json records (an own-classes audit): the codes mapped as the manifest's were, while the map is
    the one it was trained with."""
    from ecgnet.checksum import sha256_file
    from ecgnet.serve.reference import header_reference

    label_map = tmp_path / "map.yaml"
    label_map.write_text("'164889003': AF\n'713427006': RBBB\n'426783006': NORMAL\n'*': null\n")

    def predictor(sha):
        collection = {"manifest": "M.csv", "label_map": {"path": str(label_map), "sha256": sha}}
        return SimpleNamespace(info={"task": None, "collection": collection}, classes=OWN)

    record = SimpleNamespace(comments=["Dx: 164889003,713427006,59118001"])
    got = header_reference(record, predictor(sha256_file(label_map)))
    assert got["labels"] == ["AF", "RBBB"] and got["unmapped"] == [] and "map.yaml" in got["source"]
    assert header_reference(record, predictor("0" * 64)) is None  # the map changed since training: no reference
    none = header_reference(SimpleNamespace(comments=["Dx: 59118001"]), predictor(sha256_file(label_map)))
    assert none["labels"] == [] and none["unmapped"] == []  # '*': null — negative for every class, as training read it
    label_map.write_text("'164890007': '164889003'\n'270492004': '270492004'\n")  # codes that are classes (review)
    [both] = [header_reference(SimpleNamespace(comments=["Dx: 164889003,270492004"]),
                               SimpleNamespace(info=predictor(sha256_file(label_map)).info,
                                               classes=["164889003", "270492004"]))]
    assert both["labels"] == ["164889003", "270492004"]
    label_map.write_text("'426783006': MI\n'*': null\n")  # superclass names, the site's meaning: its map wins
    mi = SimpleNamespace(info=predictor(sha256_file(label_map)).info, classes=["MI", "NORM"])
    assert header_reference(SimpleNamespace(comments=["Dx: 426783006"]), mi)["labels"] == ["MI"]


def test_the_viewer_gives_a_ptbxl_record_no_superclass_labels_for_own_classes(tmp_path, ptbxl_root, ptbxl_tables):
    """GET /api/records/{ecg_id} with an own-classes run: the record's statements, but no labels (they were
    PTB-XL's superclasses, 'NORM' beside the model's NORMAL, the ref. column '–' for every class), and its fold
    said as it is for this run: not 'fold 10: the held-out test fold' nor 'fold 9: used to choose the
    thresholds'; a record of folds 1–8 trained long_time, which this run was fine-tuned from; a record its
    trained_on.txt lists trained it."""
    pytest.importorskip("fastapi", reason="fastapi is not installed")
    from fastapi.testclient import TestClient

    from ecgnet.serve import create_app

    db, _ = ptbxl_tables
    by_fold = {f: int(db.index[db["strat_fold"] == f][0]) for f in (1, 9, 10)}
    trained = db.loc[by_fold[1]]["filename_lr"]
    other = int(db.index[db["strat_fold"] == 2][1])
    run = own_run(tmp_path, trained_on=[ptbxl_root / f"{trained}.hea"])
    with TestClient(create_app([str(run)], data_root=ptbxl_root), base_url="http://localhost") as client:
        answers = {f: client.get(f"/api/records/{i}") for f, i in by_fold.items()}
        answers[2] = client.get(f"/api/records/{other}")
    for fold, res in answers.items():
        assert res.status_code == 200, res.text
        body = res.json()
        ref = body["reference"]
        assert [d["class"] for d in body["prediction"]["diagnoses"]] and \
            {d["class"] for d in body["prediction"]["diagnoses"]} == set(OWN)
        assert ref["task"] is None and ref["labels"] is None, ref
        assert "AF, NORMAL, RBBB" in ref["labels_note"] and ref["statements"], ref
        assert "held-out test fold" not in ref["note"] and "used to choose the thresholds" not in ref["note"], ref
        assert ref["note"].startswith(f"fold {fold}"), ref["note"]
    assert answers[1].json()["reference"]["in_training"] and "trained_on.txt" in answers[1].json()["reference"]["note"]
    fine_tuned = answers[2].json()["reference"]  # folds 1–8 trained long_time, this run's start
    assert fine_tuned["in_training"] and "long_time" in fine_tuned["note"], fine_tuned
    for fold in (9, 10):
        ref = answers[fold].json()["reference"]
        assert not ref["in_training"] and "not among this run's training records (this run was trained on M.csv" \
            in ref["note"], ref


def test_a_ptbxl_run_keeps_its_reference(tmp_path, ptbxl_root):
    """The bundled PTB-XL run's reference is unchanged: superclass labels and its fold-9/10 notes."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.serve.reference import PTBXLRecords

    _, _, ref = PTBXLRecords(ptbxl_root).read(9, Predictor("baseline_time"))
    assert ref["labels"] == ["NORM"] and ref["task"] == "superdiagnostic" and ref["labels_note"] is None
    assert ref["note"] == "fold 10: the held-out test fold" and not ref["in_training"]


def test_the_viewer_page_shows_own_classes_without_ptbxl_labels(tmp_path, ptbxl_root):
    """The page in Chromium with an own-classes run: each class named once (no description that repeats it),
    and a PTB-XL record's reference without a 'ref.' column or superclass tags — the server's labels_note."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if chromium is None:
        pytest.skip("no Chromium: apt-get install chromium")
    import socket
    import threading
    import time

    from ecgnet.serve import create_app

    run = own_run(tmp_path)
    header, _ = write_wfdb(tmp_path / "records", "r1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app([str(run)], data_root=ptbxl_root), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#model option", state="attached")
            page.set_input_files("#files", [str(header), str(header.with_suffix(".dat"))])
            page.wait_for_selector("tr.dx-row")
            assert sorted(page.locator("tr.dx-row .code").all_inner_texts()) == OWN
            assert page.locator("tr.dx-row .desc").all_inner_texts() == ["", "", ""]  # a name, once
            assert OOF in page.locator("#thresholds-hint").inner_text()
            page.fill("#ecg-id", "9")
            page.click("#open-record")
            page.wait_for_selector("#record-name:text-is('records100/00000/00009_lr.hea')", timeout=60_000)
            page.wait_for_selector("#reference-card:not([hidden])")
            reference = page.locator("#reference").inner_text()
            assert "not a PTB-XL task" in reference and "superdiagnostic" not in reference, reference
            assert page.locator("#reference .tag").count() == 0 and page.locator("#ref-head").is_hidden()
            assert "normal ECG" in reference  # PTB-XL's statements stay: they are the record's, not the classes'
            assert errors == [], errors
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)


def test_ptbxl_commands_refuse_an_own_classes_run_pointing_to_the_manifest(tmp_path, ptbxl_root, write_record):
    """`ecgnet evaluate RUN` (no --manifest) scored PTB-XL's five superclasses against three own classes: a
    ValueError traceback; `compare` said 'evaluate the run first', which crashed; `evaluate-external` said
    'classes of the None task'; `predict` printed 'RBBB … positive  RBBB' (an own-classes audit)."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    run = own_run(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(ptbxl_root), "--no-progress",
                                 "--out", str(tmp_path / "out")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "predicts AF, NORMAL, RBBB (trained on" in said and "--manifest M.csv" in said
    result = runner.invoke(app, ["compare", str(run), "--baseline", str(run), "--no-explain", "--out",
                                 str(tmp_path / "cmp")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "not PTB-XL's folds: compare ranks runs on PTB-XL's fold 10" in said, said
    (tmp_path / "ext").mkdir()
    result = runner.invoke(app, ["evaluate-external", str(tmp_path / "ext"), "--checkpoint", str(run),
                                 "--no-progress", "--out", str(tmp_path / "x")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "predicts 3 classes of its own (AF, NORMAL, RBBB)" in said, said
    assert "None" not in said and "--label-map" in said
    header, _ = write_record("rec")
    result = runner.invoke(app, ["predict", str(header), "--checkpoint", str(run), "--no-progress"])
    assert result.exit_code == 0 and not re.search(r"positive\s+AF\b", result.stdout), result.stdout


def test_a_run_of_ptbxls_superclasses_in_another_order_is_evaluated_on_its_columns(tmp_path, ptbxl_root):
    """`ecgnet manifest CHALLENGE_DIR` writes NORM, MI, STTC, CD, HYP: a run fine-tuned on it predicts PTB-XL's
    superclasses in that order. `evaluate RUN` refused it as another task's (and before that scored its columns
    against PTB-XL's order without a word; a review): its columns are matched by name."""
    import numpy as np
    import pandas as pd

    from ecgnet.data.dataset import PTBXL
    from ecgnet.evaluation.evaluate import evaluate_run
    from ecgnet.inference.batch import predict_proba
    from ecgnet.runs import load_run

    order = ["NORM", "MI", "STTC", "CD", "HYP"]
    run = own_run(tmp_path, classes=order)
    metrics, _ = evaluate_run(run, ptbxl_root, "test", tmp_path / "out", n_boot=10, progress=False)
    data = PTBXL(ptbxl_root, "superdiagnostic", 100)
    assert list(data.classes) != order and set(metrics["per_class"]) == set(order)
    saved = pd.read_csv(tmp_path / "out" / "test" / "predictions.csv")
    model, config, _ = load_run(run)
    fold10 = data.split("test")
    own = predict_proba(model, fold10.signal[:5], fold10.metadata[:5], config.data.window, config.data.stride,
                        config.data.aggregate)
    for c in data.classes:  # each PTB-XL class's column is the run's output of that name
        np.testing.assert_allclose(saved[c].to_numpy()[:5], own[:, order.index(c)], atol=1e-5)
