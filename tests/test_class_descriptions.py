"""A class's description is the one its collection gives: PTB-XL's for PTB-XL (and a manifest `ecgnet manifest`
wrote from PTB-XL), none for a site's own class — even one named MI, which was described as PTB-XL's myocardial
infarction. Predict's table and JSON, the printed report and the viewer's API show a class without one by its name
alone (JSON ``description`` ""); a PTB-XL run keeps its descriptions; a run written before (its own classes stored
with their names as descriptions) reads as undescribed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_wfdb
from test_own_classes_everywhere import own_run, printed_report

SITE = ["MI", "NORM", "AF"]  # the site's own classes, two named like PTB-XL's superclasses
PTBXL_WORDS = ("myocardial", "infarction", "normal ECG")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def site_manifest(folder: Path, source: str = "site_a") -> Path:
    """Four 10 s records labelled with the site's classes (no description: the manifest has no place for one)."""
    rows = []
    for i in range(4):
        header, _ = write_wfdb(folder, f"r{i}", seed=i)
        rows.append({"record": header.name, "patient": f"p{i}", "source": source, "MI": i % 2, "NORM": 1 - i % 2,
                     "AF": int(i == 3)})
    pd.DataFrame(rows).to_csv(folder / "site.csv", index=False)
    return folder / "site.csv"


def site_descriptions(folder: Path, source: str = "site_a") -> dict:
    """What training stores as run.json's ``class_descriptions`` for the site's manifest."""
    from ecgnet.data.collections import CollectionData, read_manifest

    loaded = read_manifest(site_manifest(folder, source)).load_signals(100, folder / "cache", workers=1,
                                                                      progress=False)
    return CollectionData(loaded, {"train": [0, 1], "val": [2, 3]}).descriptions


def site_run(folder: Path) -> Path:
    """A run of the site's classes whose run.json describes them as training on its manifest does."""
    run = own_run(folder, "site", classes=SITE)
    info = json.loads((run / "run.json").read_text())
    info["class_descriptions"] = site_descriptions(folder)
    (run / "run.json").write_text(json.dumps(info))
    return run


@pytest.mark.parametrize("source", ["site_a", "ptbxl"])  # 'ptbxl' written by hand: its records are not PTB-XL's
def test_a_manifests_own_classes_have_no_description(tmp_path, source):
    assert site_descriptions(tmp_path, source) == {}


def test_a_ptbxl_manifest_keeps_ptbxls_descriptions(tmp_path, ptbxl_root, ptbxl_tables):
    """`ecgnet manifest PTB-XL` (every row's source ptbxl, the records in PTB-XL's records100/): its classes are
    PTB-XL's and keep their descriptions, superclasses and statements; the same rows (four superclasses of the
    five) under another source, or read through a label map, are a site's classes."""
    from ecgnet.data import ptbxl
    from ecgnet.data.collections import read_manifest
    from ecgnet.data.collections.make import ptbxl_manifest

    _, statements = ptbxl_tables
    out = tmp_path / "manifests" / "ptbxl.csv"
    ptbxl_manifest(ptbxl_root, out, max_records=40)
    collection = read_manifest(out)
    assert collection.descriptions == ptbxl.describe_classes(collection.classes, statements)
    assert collection.descriptions["MI"] == "myocardial infarction"
    ptbxl_manifest(ptbxl_root, tmp_path / "manifests" / "rhythm.csv", task="rhythm", max_records=40)
    rhythm = read_manifest(tmp_path / "manifests" / "rhythm.csv")
    assert rhythm.descriptions and rhythm.descriptions == ptbxl.describe_classes(rhythm.classes, statements)
    table = pd.read_csv(out).drop(columns="HYP")  # four of the five: all five are the superclass task, described
    table["source"] = "site_b"
    table.to_csv(tmp_path / "manifests" / "relabelled.csv", index=False)
    assert read_manifest(tmp_path / "manifests" / "relabelled.csv").descriptions == {}
    (tmp_path / "map.yaml").write_text("".join(f"{c}: {'null' if c == 'HYP' else c}\n" for c in collection.classes))
    assert read_manifest(out, tmp_path / "map.yaml").descriptions == {}


def test_predict_shows_an_own_mi_by_its_name_alone(tmp_path):
    """The table prints no description beside MI, and the JSON keeps the field, empty."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    run = site_run(tmp_path)
    header, _ = write_wfdb(tmp_path / "records", "rec")
    runner = CliRunner()
    table = runner.invoke(app, ["predict", str(header), "--checkpoint", str(run), "--no-progress"])
    assert table.exit_code == 0, table.output
    rows = {words[0]: words for words in map(str.split, table.stdout.splitlines()) if words[:1] in ([c] for c in SITE)}
    assert set(rows) == set(SITE) and all(row[-1] in ("positive", "negative") for row in rows.values()), table.stdout
    as_json = runner.invoke(app, ["predict", str(header), "--checkpoint", str(run), "--no-progress", "--json"])
    assert as_json.exit_code == 0, as_json.output
    [result] = json.loads(as_json.stdout)
    assert {d["class"]: d["description"] for d in result["diagnoses"]} == {c: "" for c in SITE}
    for words in PTBXL_WORDS:
        assert words not in table.stdout and words not in as_json.stdout


@needs_poppler
def test_the_printed_report_shows_an_own_mi_by_its_name_alone(tmp_path):
    text = printed_report(site_run(tmp_path), tmp_path, tmp_path / "rec.pdf")
    for c in SITE:  # the name, then its probability
        assert re.search(rf"\b{c} +\d\.\d{{3}}", text), text
    for words in PTBXL_WORDS:
        assert words.lower() not in text.lower(), words


def test_the_viewers_api_gives_an_own_mi_no_description(tmp_path):
    pytest.importorskip("fastapi", reason="fastapi is not installed")
    from fastapi.testclient import TestClient

    from ecgnet.serve import create_app

    run = site_run(tmp_path)
    header, _ = write_wfdb(tmp_path / "records", "rec")
    files = [("files", (p.name, p.read_bytes())) for p in (header, header.with_suffix(".dat"))]
    with TestClient(create_app([str(run)]), base_url="http://localhost") as client:
        res = client.post("/api/predict", files=files)
    assert res.status_code == 200, res.text
    diagnoses = res.json()["prediction"]["diagnoses"]
    assert {d["class"]: d["description"] for d in diagnoses} == {c: "" for c in SITE}
    assert not any(words in res.text for words in PTBXL_WORDS)


def test_a_run_written_before_reads_its_class_names_as_no_description(tmp_path):
    """Earlier versions stored an own class's name as its description ({"AF": "AF"}): read as none."""
    from ecgnet.runs import Run

    run = Run.open(own_run(tmp_path, classes=SITE))
    assert json.loads((run.dir / "run.json").read_text())["class_descriptions"] == {c: c for c in SITE}
    assert run.descriptions == {}


def test_a_ptbxl_run_keeps_its_descriptions(tmp_path):
    """A bundled PTB-XL run: every class described as its run.json says, in predict's result and the report."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.report.pdf import _calls
    from matplotlib.figure import Figure

    predictor = Predictor("baseline_time")
    header, _ = write_wfdb(tmp_path, "rec")
    result = predictor.predict_file(header)
    stored = predictor.info["class_descriptions"]
    assert {d["class"]: d["description"] for d in result["diagnoses"]} == stored
    assert stored["MI"] == "myocardial infarction" and set(stored) == set(predictor.classes)
    ax = Figure().add_axes((0, 0, 1, 1))
    _calls(ax, 104, 190, 140, result, {"name": "baseline_time", "weights_sha256": "0" * 64, "calls": "x"})
    assert "MI  myocardial infarction" in [t.get_text() for t in ax.texts]


def test_a_manifest_of_exactly_ptbxls_five_superclasses_is_their_task_and_described(tmp_path):
    """A Challenge folder's manifest (`ecgnet manifest` maps SNOMED codes onto NORM, MI, STTC, CD, HYP) is PTB-XL's
    superclass task — run.json's task says so, evaluate-external and the viewer read it so —: described as PTB-XL
    describes them, with or without a label map; some of them beside a class of the site's are not."""
    from ecgnet.data.collections import CollectionData, read_manifest
    from ecgnet.data.ptbxl import SUPERCLASS_DESCRIPTIONS

    five = ["NORM", "MI", "STTC", "CD", "HYP"]
    rows = []
    for i in range(5):
        header, _ = write_wfdb(tmp_path, f"r{i}", seed=i)
        rows.append({"record": header.name, "patient": f"p{i}", **{c: int(k == i) for k, c in enumerate(five)}})
    pd.DataFrame(rows).to_csv(tmp_path / "five.csv", index=False)
    loaded = read_manifest(tmp_path / "five.csv").load_signals(100, tmp_path / "cache", workers=1, progress=False)
    assert CollectionData(loaded, {"train": [0, 1, 2], "val": [3, 4]}).descriptions == SUPERCLASS_DESCRIPTIONS
    (tmp_path / "map.yaml").write_text("".join(f"site_{c.lower()}: {c}\n" for c in five))
    coded = pd.DataFrame(rows).rename(columns={c: f"site_{c.lower()}" for c in five})
    coded.to_csv(tmp_path / "coded.csv", index=False)
    assert read_manifest(tmp_path / "coded.csv", label_map=tmp_path / "map.yaml").descriptions == \
        SUPERCLASS_DESCRIPTIONS
    assert site_descriptions(tmp_path / "site") == {}  # MI and NORM beside AF: the site's own
