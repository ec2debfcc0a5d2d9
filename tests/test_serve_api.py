"""The viewer's JSON API (ecgnet.serve) through FastAPI's test client: real records in, the library's
own answers out; every bad upload refused with a one-line 4xx; 20 simultaneous predictions unmixed."""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="fastapi is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from ecgnet.runs.bundled import DEFAULT_MODEL  # noqa: E402
from ecgnet.inference.predictor import Predictor  # noqa: E402
from ecgnet.serve import create_app  # noqa: E402
from ecgnet.serve.uploads import UploadLimits  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared Challenge samples not found at {SAMPLES}")
FUSION = "intermediate_concat_weighted_bce"  # bundled, like the default baseline_time
RUNS = Path(__file__).resolve().parents[1] / "runs"  # the committed runs
LOCAL = "http://localhost"  # the viewer answers loopback Host names only (ecgnet.serve.hosts)


@pytest.fixture(scope="module")
def app():
    return create_app(["baseline_time"], data_root=os.environ.get("ECGNET_DATA") or None)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def predictors():
    return {name: Predictor(name) for name in ("baseline_time", FUSION)}


def files_of(record: Path, *suffixes: str, names: dict | None = None) -> list:
    names = names or {}
    return [("files", (names.get(s, record.name + s), (record.parent / (record.name + s)).read_bytes()))
            for s in suffixes]


def refused(response, status: int | tuple = (400, 413, 415, 422)) -> str:
    """The one-line message of a 4xx answer (checked to name no server path)."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    assert "ecgnet-upload-" not in detail and tempfile.gettempdir() not in detail
    return detail


def expected(predictor: Predictor, header: Path, **metadata) -> dict:
    """The library's prediction, as the viewer words it (its notes point at the page's Patient fields)."""
    from ecgnet.serve.app import viewer_notes

    result = predictor.predict_file(header, resample=True, **metadata)
    return {**result, "record": header.name, "notes": viewer_notes(result["notes"])}


# --- service ----------------------------------------------------------------------------------

def test_health_models_page_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    models = client.get("/api/models").json()
    assert models["default"] == "baseline_time"
    listed = {m["name"]: m for m in models["models"]}
    assert {"baseline_time", FUSION} <= set(listed)
    assert listed["baseline_time"]["classes"] == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert listed["baseline_time"]["thresholds_from"] == "fold 9"  # the viewer says where the thresholds come from
    page = client.get("/")
    assert page.status_code == 200 and "ECGNet viewer" in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/explain", "/api/records/{ecg_id}", "/api/models", "/healthz"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.fixture(scope="module")
def runs_client():
    """A server offering, besides the bundled models, two committed runs: all_metadata (patient data only, 58 of
    its 71 thresholds under 0.05) and rhythm_time (reads the ECG; 4 rare rhythms' thresholds under 0.05)."""
    app = create_app(["baseline_time", str(RUNS / "all_metadata"), str(RUNS / "rhythm_time")])
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def test_the_server_says_which_models_read_the_ecg(runs_client):
    """The page told a patient-data-only model by its architecture's name (metadata_mlp), a rule of its own
    beside the library's (Predictor.reads_signal): the server now says it of every model it lists, without
    loading it, and the page only shows it."""
    listed = {m["name"]: m for m in runs_client.get("/api/models").json()["models"]}
    assert listed["all_metadata"]["reads_signal"] is False and not listed["all_metadata"]["loaded"]
    assert Predictor(RUNS / "all_metadata").reads_signal is False  # what the model, once loaded, says
    for name in ("baseline_time", "rhythm_time", FUSION, "ensemble_greedy"):  # time, fusion, late-fusion ensemble
        assert listed[name]["reads_signal"] is True, name
    assert listed["all_metadata"]["architecture"] == "metadata_mlp"  # the old field stays
    paths = runs_client.get("/openapi.json").json()["paths"]  # documented on /docs
    assert "reads_signal" in paths["/api/models"]["get"]["description"]
    for path, method in (("/api/predict", "post"), ("/api/records/{ecg_id}", "get")):
        assert all(field in paths[path][method]["description"] for field in ("reads_signal", "low_thresholds"))


@pytest.mark.parametrize("name", ["all_metadata", "rhythm_time", "baseline_time"])
def test_a_diagnosis_says_whether_the_model_read_the_ecg_and_which_thresholds_are_low(runs_client, write_record,
                                                                                     upload_dir, name):
    """The page had its own copy of Predictor.low_thresholds()'s rule (a threshold under 0.05 is low): the
    server sends the classes and predict's note on them, and whether the model read the ECG."""
    header, _ = write_record("synthetic", directory=upload_dir.parent / "src")
    response = runs_client.post("/api/predict", files=files_of(header.with_suffix(""), ".hea", ".dat"),
                                data={"model": name, "age": "60"})
    assert response.status_code == 200, response.text
    body, predictor = response.json(), Predictor(RUNS / name if (RUNS / name).is_dir() else name)
    assert body["reads_signal"] is predictor.reads_signal is (name != "all_metadata")
    low = body["low_thresholds"]
    assert low["classes"] == predictor.low_threshold_classes() and low["note"] == predictor.low_thresholds()
    thresholds = {d["class"]: d["threshold"] for d in body["prediction"]["diagnoses"] if d["threshold"] is not None}
    assert set(low["classes"]) == {c for c, t in thresholds.items() if t < low["below"]}  # the thresholds shown
    if name == "baseline_time":
        assert low["classes"] == [] and low["note"] is None
    else:
        assert low["note"].startswith(f"{len(low['classes'])} classes have a threshold under {low['below']:g} (")
    listed = {m["name"]: m for m in runs_client.get("/api/models").json()["models"]}
    assert listed[name]["loaded"] and listed[name]["reads_signal"] is body["reads_signal"]  # now the predictor's
    assert list(upload_dir.iterdir()) == []


# --- real records -----------------------------------------------------------------------------

@needs_samples
def test_predict_challenge_upload_matches_the_library(client, predictors, upload_dir):
    record = SAMPLES / "georgia" / "E00001"
    response = client.post("/api/predict", files=files_of(record, ".hea", ".mat"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] == expected(predictors["baseline_time"], record.with_suffix(".hea"))
    assert "resampled: 500 Hz → 100 Hz" in body["prediction"]["notes"]
    signal = body["signal"]
    assert (signal["rate"], signal["source_rate"], signal["samples"]) == (100, 500, 1000)
    assert len(signal["mv"]) == 12 and all(len(lead) == 1000 for lead in signal["mv"])
    assert body["reference"]["labels"] == ["NORM"]  # #Dx 426783006 (sinus rhythm)
    assert list(upload_dir.iterdir()) == []  # the request's folder is gone


def test_predict_dat_record_with_patient_fields(client, predictors, write_record, upload_dir):
    header, _ = write_record("synthetic", directory=upload_dir.parent / "src")
    files = files_of(header.with_suffix(""), ".hea", ".dat")
    response = client.post("/api/predict", files=files, data={"model": FUSION, "age": "61", "sex": "female"})
    assert response.status_code == 200, response.text
    prediction = response.json()["prediction"]
    assert prediction == expected(predictors[FUSION], header, age=61, sex="female")
    assert prediction["metadata"] == {"age": 61.0, "sex": "female"}
    assert list(upload_dir.iterdir()) == []
    # the note on what the model lacks points at the page's Patient fields, not at command-line options
    note = next(n for n in response.json()["prediction"]["notes"] if n.startswith("the model reads the patient"))
    assert note.endswith("unknown here: height, weight (flagged missing, as in training; the Patient fields give them)")


def test_the_page_is_told_who_the_file_says_the_patient_is(client, tmp_path, upload_dir):
    """The file's patient identity was on the printed page only: the viewer showed a diagnosis without saying
    whose ECG it was (left from an earlier audit). The same lines as the report's, dates in ISO 8601."""
    from ecg_writers import ecg, write_muse

    path = write_muse(tmp_path / "muse.xml", ecg(500))
    body = client.post("/api/predict", files=[("files", ("muse.xml", path.read_bytes()))]).json()
    assert "Patient ID: T-1" in body["patient"] and any(line.startswith("Name: ") for line in body["patient"])
    assert not any(line.startswith(("Age", "Sex")) for line in body["patient"])  # shown apart, as metadata
    wfdb = client.get("/api/records/9").json() if client.get("/healthz").json()["ptbxl"] else {"patient": []}
    assert wfdb["patient"] == []  # a PTB-XL record names no one
    assert list(upload_dir.iterdir()) == []


def test_ptbxl_record_by_ecg_id(client, predictors, ptbxl_root):
    body = client.get("/api/records/9").json()
    header = ptbxl_root / "records100" / "00000" / "00009_lr.hea"
    assert body["prediction"] == {**predictors["baseline_time"].predict_file(header), "record": "records100/00000/00009_lr.hea"}
    reference = body["reference"]
    assert reference["labels"] == ["NORM"] and reference["fold"] == 10 and not reference["in_training"]
    assert reference["patient"]["age"] == 55.0
    fused = client.get(f"/api/records/9?model={FUSION}").json()["prediction"]
    assert fused["metadata"] == {"age": 55.0, "sex": "male", "weight": 70.0}  # PTB-XL's patient fields
    note = next(n for n in fused["notes"] if n.startswith("the model reads the patient"))  # the page's fields do not
    assert note.endswith("unknown here: height (flagged missing, as in training; PTB-XL did not record them)")
    assert refused(client.get("/api/records/99999999"), 404).startswith("ecg_id 99999999")


def test_ptbxl_records_need_a_dataset():
    with TestClient(create_app(["baseline_time"]), base_url=LOCAL) as c:
        assert "no PTB-XL dataset" in refused(c.get("/api/records/9"), 404)


@needs_samples
def test_explain_attributions_and_fusion_modalities(client, upload_dir):
    files = files_of(SAMPLES / "georgia" / "E00001", ".hea", ".mat")
    ex = client.post("/api/explain", files=files, data={"target": "NORM", "steps": "8"}).json()
    assert ex["class"] == "NORM" and ex["n_steps"] == 8 and ex["scope"] == "best"
    assert len(ex["values"]) == 12 and all(len(v) == ex["samples"] == 250 for v in ex["values"])
    assert max(abs(x) for lead in ex["values"] for x in lead) == 1.0  # scaled by max_abs
    assert [w["decisive"] for w in ex["windows"]] == [True] and ex["modalities"] is None
    segment = client.post("/api/explain", files=files,
                          data={"target": "NORM", "steps": "4", "scope": "segment", "model": FUSION}).json()
    assert (segment["start"], segment["samples"], len(segment["windows"])) == (0, 1000, 7)
    modalities = segment["modalities"]
    assert set(modalities["without"]) == {"time", "frequency", "spectrogram", "metadata"}
    assert modalities["parts"] == "modalities"  # (a late-fusion ensemble's are "members": its runs)
    assert modalities["weights"] is None  # concatenation has no gate
    assert ex["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # values' rows
    assert "window_probabilities" not in ex  # no site profile: the windows' probabilities are the prediction's kind
    for steps in ("100000", "0", "-3", "3"):  # the cost is bounded, and a value outside it refused, not clamped
        assert "steps must be between 4 and 64" in refused(
            client.post("/api/explain", files=files, data={"target": "NORM", "steps": steps}), 422)
    assert "unknown class" in refused(client.post("/api/explain", files=files, data={"target": "XYZ"}))
    assert "either" in refused(client.post("/api/explain", data={"target": "NORM"}))
    assert list(upload_dir.iterdir()) == []


@needs_samples
@pytest.mark.parametrize("scope", ["best", "segment"])
def test_a_long_record_names_the_segment_it_explains(client, scope):
    """A 38 s record is explained on one of its 10 s segments: the answer names those 10 s, which hold
    what was explained, so the page can show them (not the page the time happens to fall on)."""
    files = files_of(SAMPLES / "ptb" / "S0001", ".hea", ".mat")
    ex = client.post("/api/explain", files=files, data={"target": "MI", "steps": "4", "scope": scope}).json()
    seg = ex["segment"]
    assert seg["samples"] == 10 * ex["rate"] and 0 <= seg["start"] <= 3840 - seg["samples"]
    assert seg["start"] <= ex["start"] and ex["start"] + ex["samples"] <= seg["start"] + seg["samples"]
    if scope == "segment":
        assert (ex["start"], ex["samples"]) == (seg["start"], seg["samples"])
    # the decisive window is one the predictor scored, in the segment named (the whole record's grid was
    # searched: a window the predictor never scored was called decisive, or none was; found in an audit)
    from ecgnet.models.windows import window_starts

    assert seg["start"] in (0, 1000, 2000, 3840 - 1000)  # the predictor's segments of 38.4 s
    decisive = [w for w in ex["windows"] if w["decisive"]]
    assert len(decisive) == 1 and decisive[0]["start"] - seg["start"] in window_starts(1000, 250, 125)


# --- bad uploads --------------------------------------------------------------------------------

def _bad_uploads(samples: Path) -> dict:
    record = samples / "georgia" / "E00001"
    hea, mat = (record.with_suffix(s).read_bytes() for s in (".hea", ".mat"))
    outside = hea.replace(b"E00001.mat", b"../../etc/E00001.mat", 1)
    return {  # name → (files, expected status, a word of the message)
        "malformed header": ([("files", ("E00001.hea", b"this is not a WFDB header\n")), ("files", ("E00001.mat", mat))],
                             400, "E00001.hea"),
        "binary header": ([("files", ("E00001.hea", b"\xff\xfe\x00garbage")), ("files", ("E00001.mat", mat))], 400, "E00001.hea"),
        "truncated signal": ([("files", ("E00001.hea", hea)), ("files", ("E00001.mat", mat[:5000]))], 400, "E00001.hea"),
        "missing signal file": ([("files", ("E00001.hea", hea))], 400, "E00001.mat"),
        "wrong type": ([("files", ("E00001.hea", hea)), ("files", ("E00001.exe", mat))], 415, "E00001.exe"),
        "parent path": ([("files", ("../E00001.hea", hea)), ("files", ("E00001.mat", mat))], 400, "not paths"),
        "absolute path": ([("files", ("/etc/E00001.hea", hea)), ("files", ("E00001.mat", mat))], 400, "not paths"),
        "odd name": ([("files", ("E 00001;rm.hea", hea)), ("files", ("E00001.mat", mat))], 400, "unusable"),
        "hidden name": ([("files", (".E00001.hea", hea)), ("files", ("E00001.mat", mat))], 400, "not paths"),
        "header names a file outside": ([("files", ("E00001.hea", outside)), ("files", ("E00001.mat", mat))], 400, "not paths"),
        "two headers": ([("files", ("E00001.hea", hea)), ("files", ("E00002.hea", hea)), ("files", ("E00001.mat", mat))],
                        400, "one record"),
        "same name twice": ([("files", ("E00001.hea", hea)), ("files", ("E00001.hea", hea))], 400, "twice"),
        "no header": ([("files", ("E00001.mat", mat))], 400, "E00001.mat: no .hea header uploaded with it"),
        "no suffix, not an ECG": ([("files", ("IM0001", b"just some text\n"))], (400, 415), "IM0001"),
        "no suffix beside a header": ([("files", ("E00001.hea", hea)), ("files", ("E00001", mat))], 400, "alone"),
    }


@needs_samples
@pytest.mark.parametrize("case", list(_bad_uploads(SAMPLES)) if SAMPLES.is_dir() else [])
def test_bad_upload_is_a_one_line_4xx(client, upload_dir, case):
    files, status, word = _bad_uploads(SAMPLES)[case]
    message = refused(client.post("/api/predict", files=files), status)
    assert word in message, message
    assert list(upload_dir.iterdir()) == []  # removed even when refused
    assert client.get("/healthz").status_code == 200  # and the server is still up


def test_a_file_without_a_suffix_is_read_by_its_content(client, upload_dir):
    """A DICOM file from a PACS export is often named IM0001: the format comes from its content."""
    from pydicom.data import get_testdata_file

    dicom = Path(get_testdata_file("waveform_ecg.dcm")).read_bytes()
    response = client.post("/api/predict", files=[("files", ("IM0001", dicom))])
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["format"] == "dicom" and list(upload_dir.iterdir()) == []


@needs_samples
def test_oversized_uploads_are_refused(upload_dir):
    record = SAMPLES / "georgia" / "E00001"
    files = files_of(record, ".hea", ".mat")  # the .mat is 120 kB
    small = create_app(["baseline_time"], limits=UploadLimits(max_file_bytes=50_000, max_request_bytes=1_000_000))
    with TestClient(small, base_url=LOCAL) as c:
        assert "per file" in refused(c.post("/api/predict", files=files), 413)
        assert list(upload_dir.iterdir()) == []
        huge = [("files", ("E00001.mat", b"\0" * 1_100_000))]
        assert "request larger" in refused(c.post("/api/predict", files=huge), 413)
        def streamed():  # no Content-Length: counted while it arrives
            yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="E00001.mat"\r\n\r\n'
            yield from (b"\0" * 100_000 for _ in range(12))
            yield b"\r\n--b--\r\n"
        chunked = c.post("/api/predict", content=streamed(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert "request larger" in refused(chunked, 413)
        many = [("files", (f"E{i}.dat", b"x")) for i in range(9)]
        assert "at most 8" in refused(c.post("/api/predict", files=many), 413)


def test_other_bad_requests(client):
    assert refused(client.post("/api/predict", data={"age": "50"}), 422).startswith("files")  # a form, no files
    # not a form at all: 415 saying what to send (was 422 'files: Field required')
    assert "send multipart/form-data" in refused(client.post("/api/predict"), 415)
    for body, kind in ((b"{}", "application/json"), (b"\0", "application/octet-stream"), (b"x", "text/plain")):
        message = refused(client.post("/api/predict", content=body, headers={"content-type": kind}), 415)
        assert message.startswith("send multipart/form-data") and message.endswith(f"not {kind}")
    assert "send multipart/form-data" in refused(client.post("/api/explain", json={"target": "NORM"}), 415)
    assert "unknown model" in refused(client.post("/api/predict", files=[("files", ("a.hea", b"x"))],
                                                  data={"model": "../runs/x"}))


# --- concurrency ----------------------------------------------------------------------------------

@needs_samples
def test_twenty_simultaneous_predictions_are_correct_and_unmixed(client, predictors, upload_dir):
    records = sorted(SAMPLES.glob("*/*.hea"))
    records = [h.with_suffix("") for h in records if h.with_suffix(".mat").is_file()][:: max(1, len(records) // 10)][:10]
    jobs = [(r, model) for r in records for model in ("baseline_time", FUSION)][:20]
    assert len(jobs) == 20
    truth = {(r, m): expected(predictors[m], r.with_suffix(".hea")) for r, m in jobs}
    start = threading.Barrier(len(jobs))

    def post(job):
        record, model = job
        files = files_of(record, ".hea", ".mat")
        start.wait()
        return client.post("/api/predict", files=files, data={"model": model})

    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(post, jobs))
    for job, response in zip(jobs, responses):
        assert response.status_code == 200, response.text
        assert response.json()["prediction"] == truth[job], job
    assert list(upload_dir.iterdir()) == []


# --- the command ------------------------------------------------------------------------------------

def test_serve_command(monkeypatch):
    from typer.testing import CliRunner

    from ecgnet.cli import app as cli
    from ecgnet.serve import process

    assert "--port" in CliRunner().invoke(cli, ["serve", "--help"]).output
    bad = CliRunner().invoke(cli, ["serve", "--checkpoint", "no_such_model"])
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("error: no_such_model")
    started = {}

    def run(web, sock):
        started.update(web=web, address=sock.getsockname())
        sock.close()

    monkeypatch.setattr(process, "run", run)
    ok = CliRunner().invoke(cli, ["serve", "--port", "0", "--runs-dir", "no_such_folder", "--max-seconds", "60",
                                  "--allowed-host", "ecg.example.org"], env={"ECGNET_DATA": ""})
    assert ok.exit_code == 0, ok.output
    host, port = started["address"]
    assert host == "127.0.0.1" and port > 0  # local only unless told otherwise
    assert f"http://127.0.0.1:{port}/" in ok.output  # --port 0: the port it got, not ':0'
    assert started["web"].state.models.default == DEFAULT_MODEL
    with TestClient(started["web"], base_url="http://ecg.example.org") as c:
        assert c.get("/api/models").json()["limits"]["read"]["max_seconds"] == 60


def test_serve_refuses_a_port_it_cannot_have_in_one_line(monkeypatch):
    """A port in use, out of range, or a host that is not this machine's: one error line, status 2, and no
    banner announcing a server that never started (uvicorn printed a traceback or exited 3 after the banner)."""
    import socket

    from typer.testing import CliRunner

    from ecgnet.cli import app as cli
    from ecgnet.serve import process

    monkeypatch.setattr(process, "run", lambda web, sock: pytest.fail("the server must not start"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        cases = [(["--port", str(taken.getsockname()[1])], "another program listens there"),
                 (["--port", "70000"], "a port is a number from 1 to 65535"),
                 (["--port", "-1"], "a port is a number from 1 to 65535"),
                 (["--host", "999.1.1.1"], "--host 999.1.1.1: not an address of this machine")]
        for args, message in cases:
            result = CliRunner().invoke(cli, ["serve", *args, "--runs-dir", "no_such_folder"], env={"ECGNET_DATA": ""})
            assert result.exit_code == 2, (args, result.output)
            assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
            assert "viewer on" not in result.stdout, args
    finally:
        taken.close()


def test_an_ensembles_explanation_names_its_parts_members():
    """The viewer titled the ensemble's member runs 'Modalities' (found in a browser audit)."""
    import numpy as np

    from ecgnet.inference.predictor import Predictor
    from ecgnet.serve.explain import modality_contributions

    predictor = Predictor("ensemble_greedy")
    signal = np.random.default_rng(0).normal(0, 0.2, (12, 1000)).astype(np.float32)
    parts = modality_contributions(predictor, signal, predictor.metadata_vector(), 0)
    assert parts["parts"] == "members" and len(parts["without"]) == 8


def test_a_ptbxl_record_with_its_own_odd_metadata_is_diagnosed(ptbxl_root):
    """PTB-XL's ecg_id 9317 gives a height of 6 cm (three records do; the models saw them so in training): the
    record is diagnosed with its own facts, not refused as a user's implausible input."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.serve.reference import PTBXLRecords

    predictor = Predictor(FUSION)
    record, given, _ = PTBXLRecords(ptbxl_root).read(9317, predictor)
    assert given["height"] == 6.0
    assert predictor.predict_record(record, **given)["metadata"]["height"] == 6.0
