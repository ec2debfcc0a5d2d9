"""The viewer's upload takes single-file ECGs (XML, DICOM, SCP-ECG, EDF) with the upload's safety rules kept:
bare names, allowed suffixes, one record per request, a one-line 4xx for anything refused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from ecgnet.serve.app import create_app  # noqa: E402

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"
REAL = {"muse_xml/ml4h_muse_ecg_deidentified_1.xml": ("muse-xml", "LEFT AXIS DEVIATION"),
        "philips_xml/129DYPRG.XML": ("philips-xml", ">>> Acute MI <<<"),
        "dicom/marcodebe_anonymous_ecg.dcm": ("dicom", "RITMO SINUSALE"),
        "scp_ecg/ecgtoolkit_Example.scp": ("scp-ecg", None)}
LOCAL = "http://localhost"
needs_formats = pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(["baseline_time"]), base_url=LOCAL) as c:
        yield c


def refused(response, status) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "ecgnet-upload-" not in detail
    return detail


@needs_formats
@pytest.mark.parametrize("name", sorted(REAL))
def test_single_file_upload_is_diagnosed_with_the_device_statements(client, upload_dir, name):
    fmt, statement = REAL[name]
    path = FORMATS_DIR / name
    response = client.post("/api/predict", files=[("files", (path.name, path.read_bytes()))])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"]["record"] == path.name  # the user's name, not the server's folder
    assert len(body["signal"]["mv"]) == 12
    if "format" in body["prediction"]:  # predict's JSON fields (ecgnet.inference.predictor)
        assert body["prediction"]["format"] == fmt
        if statement:
            assert statement in body["prediction"]["statements"]
    assert list(upload_dir.iterdir()) == []


@needs_formats
def test_single_file_upload_rules(client, upload_dir):
    dcm = (FORMATS_DIR / "dicom/marcodebe_anonymous_ecg.dcm").read_bytes()
    two = [("files", ("a.dcm", dcm)), ("files", ("b.hea", b"b 12 500 5000\n"))]
    assert "uploaded alone" in refused(client.post("/api/predict", files=two), 400)
    assert "not an ECG file" in refused(client.post("/api/predict", files=[("files", ("a.png", dcm))]), 415)
    svg = b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>"
    assert "root element <svg>" in refused(client.post("/api/predict", files=[("files", ("a.xml", svg))]), 400)
    assert "truncated" in refused(client.post("/api/predict", files=[("files", ("cut.dcm", dcm[:100_000]))]), 400)
    assert list(upload_dir.iterdir()) == []
