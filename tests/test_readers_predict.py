"""`ecgnet predict` of any format: the real device files (a folder of them, found by content), the JSON fields
per record (format, leads, derived_leads, statements), the device's statements in the text beside ECGNet's
diagnosis, and one line for a file of no ECG format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecgnet.cli import app

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"
LEADS12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
pytestmark = pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_predict_json_of_a_folder_of_device_files(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(FORMATS_DIR, folder)
    (folder / "notes.txt").write_text("not an ECG")  # passed over in a folder, like any other file
    result = invoke("predict", folder, "--resample", "--json")
    assert result.exit_code == 0, result.output
    records = {Path(r["record"]).name: r for r in json.loads(result.stdout)}
    assert len(records) == 6
    formats = {name: r["format"] for name, r in records.items()}
    assert formats == {"marcodebe_anonymous_ecg.dcm": "dicom", "hl7_2003-12_Example_aECG.xml": "hl7-aecg",
                       "ml4h_muse_ecg_deidentified_1.xml": "muse-xml", "129DYPRG.XML": "philips-xml",
                       "3191723_ZZDEMOPTONLY_1-04_orig.xml": "philips-xml", "ecgtoolkit_Example.scp": "scp-ecg"}
    for r in records.values():
        assert r["leads"] == LEADS12 and isinstance(r["statements"], list) and "diagnoses" in r
    assert records["ml4h_muse_ecg_deidentified_1.xml"]["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert records["129DYPRG.XML"]["derived_leads"] == []
    assert ">>> Acute MI <<<" in records["129DYPRG.XML"]["statements"]
    assert records["ecgtoolkit_Example.scp"]["statements"] == []


def test_predict_text_shows_the_device_statements():
    result = invoke("predict", FORMATS_DIR / "dicom" / "marcodebe_anonymous_ecg.dcm", "--resample")
    assert result.exit_code == 0, result.output
    assert "device (dicom) says: RITMO SINUSALE · ECG NORMALE" in " ".join(result.output.split())


def test_predict_of_an_unsupported_file_is_one_line(tmp_path):
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(200))
    result = invoke("predict", pdf)
    assert result.exit_code != 0
    assert "scan.pdf: a PDF document, not an ECG file ECGNet reads" in " ".join(result.output.split())
    missing = invoke("predict", tmp_path / "ecg.xml")  # named as itself, not as ecg.hea
    assert missing.exit_code != 0 and "ecg.xml: no such record or file" in " ".join(missing.output.split())
