"""The viewer under hostile input: the generated corpus (``tests/hostile.py``) against a real server on
127.0.0.1 (its process's peak memory read from /proc), bad metadata, foreign Host headers, the local
API page, the display signal, the gate, strict JSON and prompt shutdown without leftovers. Each test
that starts a server stops it."""

from __future__ import annotations

import math
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi is not installed")
from fastapi.testclient import TestClient  # noqa: E402

import hostile  # noqa: E402
from ecgnet.data.limits import ReadLimits  # noqa: E402
from ecgnet.data.patient import PatientError, check_patient  # noqa: E402
from ecgnet.errors import ECGNetError  # noqa: E402
from ecgnet.serve import create_app  # noqa: E402
from ecgnet.serve.limits import Gate, ServeLimits  # noqa: E402
from ecgnet.serve.uploads import UploadError  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sends signals")
LOCAL = "http://localhost"
PEAK_MB = 1024


@pytest.fixture(scope="module")
def app():
    return create_app(["baseline_time"], serve_limits=ServeLimits(display_seconds=60, display_points=3000))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def server():
    """A real ``ecgnet serve`` on 127.0.0.1; stopped (and checked to leave no upload folder) at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = hostile.start_server(Path(tmp))
        try:
            yield proc, url
        finally:
            hostile.stop_server(proc)
        assert not list(Path(tmp).glob("ecgnet-upload-*"))


def _upload(case: str, folder: Path) -> list:
    return hostile.record_files(hostile.CASES[case][0](folder))


# --- the corpus against a real server ----------------------------------------------------------------

REFUSED = [name for name, (_, expected) in hostile.CASES.items() if expected == "refused"]


@pytest.mark.slow  # starts a real server (10–20 s on a loaded machine); the readers' own tests are fast
@pytest.mark.parametrize("case", REFUSED)
def test_hostile_upload_is_refused_with_a_one_line_4xx(server, tmp_path, case):
    proc, url = server
    status, body, seconds = hostile.post(url + "/api/predict", _upload(case, tmp_path))
    rss, peak = hostile.memory_mb(proc.pid)
    print(f"{case}: {status} in {seconds:.2f} s; server RSS {rss:.0f} MB, peak {peak:.0f} MB")
    assert status == 400, body
    assert "\n" not in body["detail"] and len(body["detail"]) < 400 and tmp_path.name not in body["detail"]
    assert peak <= PEAK_MB
    assert seconds < 30  # generous; the figures: benchmarks/hostile_replay.py


@pytest.mark.slow
def test_the_largest_budgeted_upload_is_served_with_a_bounded_display(server, tmp_path):
    proc, url = server
    status, body, seconds = hostile.post(url + "/api/predict", _upload("flac_1khz_10min", tmp_path))
    rss, peak = hostile.memory_mb(proc.pid)
    print(f"10 min at 1 kHz: {status} in {seconds:.2f} s; server RSS {rss:.0f} MB, peak {peak:.0f} MB")
    assert status == 200, body
    shown = body["signal"]
    assert shown["samples"] <= 6000 and shown["model_samples"] == 60_000 and "the model saw the whole" in shown["note"]
    assert peak <= PEAK_MB


# --- metadata, hosts, docs, JSON -------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("age", "inf"), ("age", "nan"), ("age", "-1"), ("age", "1e9"),
                                          ("height", "inf"), ("weight", "-inf"), ("weight", "1e9"),
                                          ("height", "nan")])
def test_non_finite_or_absurd_metadata_is_a_422(client, tmp_path, field, value):
    files = [("files", (n, b)) for n, b in hostile.record_files(hostile.plain_record(tmp_path, "r"))]
    response = client.post("/api/predict", files=files, data={field: value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field)


def test_patient_fields_in_range_pass_and_others_do_not():
    assert check_patient(age=74, sex="Female", height=170.5, weight=80)["age"] == 74
    assert [check_patient(sex=s)["sex"] for s in ("M", "f", "male", " FEMALE ")] == ["male", "female", "male", "female"]
    for number in ("0", "1", " 2 ", 1):  # PTB-XL's 1 is female, many sites' 1 male: refused, never guessed
        with pytest.raises(PatientError, match="is a number, which sites write either way"):
            check_patient(sex=number)
    assert check_patient(age=300)["age"] == 300  # PTB-XL's code for over 89
    for bad in ({"age": math.inf}, {"age": float("nan")}, {"age": -1}, {"age": 131}, {"height": 1e9},
                {"weight": 0}, {"sex": "x"}, {"age": "old"}):
        with pytest.raises(ECGNetError):
            check_patient(**bad)


def test_answers_are_strict_json():
    from ecgnet.serve.errors import StrictJSONResponse
    from ecgnet.strictjson import dumps

    assert StrictJSONResponse({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float64("-inf")}).body == \
        b'{"a":null,"b":[1.0,null],"c":null}'
    assert dumps({"x": [float("nan")]}) == '{"x": [null]}'


def test_foreign_host_headers_are_refused():
    app = create_app(["baseline_time"])  # its own: a TestClient's exit shuts its app's uploads down
    with TestClient(app, base_url="http://rebind.attacker.example") as c:
        answer = c.get("/healthz")
        assert answer.status_code == 400 and "--allowed-host" in answer.json()["detail"]  # JSON, as every error
        assert "'rebind.attacker.example' is not served here" in answer.json()["detail"]
        assert c.get("/api/models").status_code == 400 and c.post("/api/predict").status_code == 400
    for base in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/healthz").status_code == 200, base
    configured = create_app(["baseline_time"], allowed_hosts=["ecg.example.org"])
    with TestClient(configured, base_url="http://ecg.example.org") as c:
        assert c.get("/healthz").status_code == 200
    wildcard = create_app(["baseline_time"], allowed_hosts=["*.example.org"])
    for base, status in (("http://a.example.org", 200), ("http://example.org.evil", 400)):
        with TestClient(wildcard, base_url=base) as c:
            assert c.get("/healthz").status_code == status, base


def test_only_the_viewers_own_pages_may_post():
    """A page of another origin (even localhost on another port) could post uploads and 64-step explanations
    to the viewer with a no-cors request; answers were unreadable to it, the work was done (found in a serve
    audit). Browsers send Origin; clients that are not browsers send none and are unaffected."""
    app = create_app(["baseline_time"])
    with TestClient(app, base_url="http://localhost:8000") as c:
        for origin in ("http://localhost:9999", "http://evil.example", "null", "http://localhost"):
            answer = c.post("/api/predict", headers={"Origin": origin})
            assert answer.status_code == 403 and "only the viewer's own pages may post" in answer.json()["detail"]
        for headers in ({"Origin": "http://localhost:8000"}, {}):  # the page itself, or curl: on to the route
            assert c.post("/api/predict", headers=headers).status_code in (400, 415, 422), headers
        assert c.get("/healthz", headers={"Origin": "http://evil.example"}).status_code == 200  # reads need CORS
    # behind a reverse proxy the server sees Host 127.0.0.1:8000 and the page's public origin: --allowed-host
    proxied = create_app(["baseline_time"], allowed_hosts=["ecg.example.org"])
    with TestClient(proxied, base_url="http://127.0.0.1:8000") as c:
        assert c.post("/api/predict", headers={"Origin": "https://ecg.example.org:8443"}).status_code in (400, 415, 422)
        assert c.post("/api/predict", headers={"Origin": "https://evil.example"}).status_code == 403


def test_every_answer_carries_the_security_headers_and_head_is_answered():
    """No Content-Security-Policy, nosniff or framing protection was sent, and HEAD (curl -I, uptime checks)
    was answered 405 (found in a serve audit)."""
    from ecgnet.serve.headers import CSP

    app = create_app(["baseline_time"])
    with TestClient(app, base_url=LOCAL) as c:
        for answer in (c.get("/"), c.get("/static/app.js"), c.get("/api/models"), c.post("/api/predict"),
                       c.get("/docs")):
            assert answer.headers["content-security-policy"] == CSP and answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        for path in ("/", "/healthz", "/api/models"):
            assert c.head(path).status_code == 200, path
    with TestClient(app, base_url="http://rebind.attacker.example") as c:
        assert c.get("/").headers["x-frame-options"] == "DENY"  # refusals too


def test_an_unexpected_fault_is_one_line_of_json(monkeypatch):
    """A fault of the server's own was a text/plain 'Internal Server Error' (found in a serve audit)."""
    from ecgnet.serve import models

    app = create_app(["baseline_time"])
    monkeypatch.setattr(models.ModelStore, "describe", lambda self: 1 / 0)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        answer = c.get("/api/models")
        schema = c.get("/openapi.json").json()
    assert answer.status_code == 500 and answer.json() == {
        "detail": "internal error (ZeroDivisionError); the server's log has the details"}
    assert answer.headers["x-frame-options"] == "DENY" and "content-security-policy" in answer.headers  # a 500 too
    assert all("head" not in methods for methods in schema["paths"].values())  # HEAD: answered, not in the schema


def test_a_limit_refusal_names_the_servers_option_once():
    """Refusals read 'the server's the server's --max-seconds widens it': the rewording ran twice."""
    from ecgnet.serve.uploads import public_message

    with pytest.raises(ECGNetError) as e:
        ReadLimits(max_seconds=5).check_samples(10_000, 12, 500, "r.hea")
    once = public_message(e.value, None)
    assert "the server's --max-seconds widens it" in once and public_message(ECGNetError(once), None) == once


def test_serve_refuses_what_cannot_serve_and_warns_when_exposed(monkeypatch, tmp_path):
    """--checkpoint of any folder started a server whose every request failed naming server paths;
    --max-concurrent 0 was a traceback; --host 0.0.0.0 printed a URL the server refused, and no warning."""
    import socket

    from typer.testing import CliRunner

    from ecgnet.cli import app as cli
    from ecgnet.serve import process

    monkeypatch.setattr(process, "run", lambda web, sock: sock.close())
    env = {"ECGNET_DATA": ""}
    empty = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--runs-dir", "none"], env=env)
    assert empty.exit_code == 2 and "is not an ECGNet run directory" in empty.stderr and "viewer on" not in empty.stdout
    zero = CliRunner().invoke(cli, ["serve", "--max-concurrent", "0", "--runs-dir", "none"], env=env)
    assert zero.exit_code == 2 and "Traceback" not in zero.output and "max-concurrent" in zero.output

    def local(host, port):  # a test listens on 127.0.0.1 only: the wildcard's socket is a loopback one
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return sock

    monkeypatch.setattr(process, "listen", local)
    exposed = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0", "--runs-dir", "none"], env=env)
    assert exposed.exit_code == 0, exposed.output
    assert "http://127.0.0.1:" in exposed.stdout and "http://0.0.0.0" not in exposed.stdout
    assert "every network interface" in exposed.stderr and "--allowed-host" in exposed.stderr


def test_the_schema_describes_the_errors_the_api_gives(client):
    """A generated client parses errors from the schema: every API route declares its 4xx/5xx as
    {"detail": str} (FastAPI declared only 422 as a list of {loc, msg, type}), with a summary of its own
    and the patient fields' units."""
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Refusal"]["properties"]["detail"]["type"] == "string"
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            assert len(op["summary"].split()) >= 4, (path, op["summary"])  # not FastAPI's 'Ptbxl Record'
            errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
            if path.startswith("/api/") and path != "/api/models":
                assert {"400", "422", "503"} <= set(errors), (path, sorted(errors))
                assert all(r["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")
                           for r in errors.values()), path
    form = schema["components"]["schemas"]
    predict = next(v for k, v in form.items() if k.startswith("Body_predict"))["properties"]
    assert predict["age"]["description"] == "years" and predict["weight"]["description"] == "kg"
    page = client.get("/docs").text
    assert "<b>415</b> not an ECG file" in page and "Diagnose one uploaded record" in page


def test_docs_page_is_local(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/api/predict" in page.text and "age" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "cdn" not in page.text.lower()
    assert client.get("/redoc").status_code == 404


# --- the display signal and the gate --------------------------------------------------------------------

def test_long_records_are_shown_in_part_and_decimated_but_diagnosed_whole(client, tmp_path):
    from ecgnet.inference.predictor import Predictor

    header = hostile.plain_record(tmp_path, "two_min", samples=12_000)  # 120 s at 100 Hz
    files = [("files", (n, b)) for n, b in hostile.record_files(header)]
    response = client.post("/api/predict", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    shown = body["signal"]
    assert (shown["samples"], shown["rate"], shown["model_samples"]) == (3000, 50.0, 12_000)
    assert len(shown["mv"]) == 12 and all(len(lead) == 3000 for lead in shown["mv"])
    assert "first 60 s of 120 s" in shown["note"]
    whole = Predictor("baseline_time").predict_file(header)
    assert body["prediction"]["diagnoses"] == whole["diagnoses"] and "120.0 s" in body["prediction"]["coverage"]


def test_gate_answers_503_when_every_slot_is_taken():
    gate = Gate(1, queue_seconds=0.05)
    with gate():
        with pytest.raises(UploadError) as info:
            with gate():
                pass
    assert info.value.status == 503
    with gate():  # released
        pass


def test_the_read_budget_is_a_server_setting(tmp_path):
    tight = create_app(["baseline_time"], serve_limits=ServeLimits(read=ReadLimits(max_seconds=5)))
    files = [("files", (n, b)) for n, b in hostile.record_files(hostile.plain_record(tmp_path, "r"))]
    with TestClient(tight, base_url=LOCAL) as c:
        response = c.post("/api/predict", files=files)
    assert response.status_code == 400 and "(max_seconds;" in response.json()["detail"]


# --- shutdown -------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_is_prompt_and_leaves_no_upload_folder(tmp_path, sig):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = _upload("flac_1khz_10min", corpus)
    server_tmp = tmp_path / "server"
    server_tmp.mkdir()
    proc, url = hostile.start_server(server_tmp)
    try:
        threads = [threading.Thread(target=lambda: _quietly(hostile.post, url + "/api/predict", files), daemon=True)
                   for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20  # requests in progress: an upload folder stands (else nothing is tested)
        while not list(server_tmp.glob("ecgnet-upload-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        uploading = bool(list(server_tmp.glob("ecgnet-upload-*")))
    finally:
        seconds = hostile.stop_server(proc, sig, timeout=30)
    print(f"{sig.name}: exited in {seconds:.2f} s")
    assert uploading, "no upload was in progress when the server was stopped"
    assert proc.returncode is not None and seconds < 10
    assert not list(server_tmp.glob("ecgnet-upload-*"))


def _quietly(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def test_the_server_bounds_its_open_connections(monkeypatch):
    """Uploads are spooled to disk whole before waiting for a slot: 30 at once held 960 MiB of temporary files
    and every worker thread (the page took 15 s; found in a serve audit). uvicorn is told the bound."""
    import socket

    import uvicorn

    from ecgnet.serve import process

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(config=self.config))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        process.run(create_app(["baseline_time"], serve_limits=ServeLimits(max_connections=7)), sock)
    finally:
        sock.close()
    assert seen["config"].limit_concurrency == 7 and ServeLimits().max_connections == 32
