"""What the report says besides the trace: the patient block's dates and times printed in ISO 8601 whatever
form the file wrote them in (DICOM DA/DT, HL7 TS, GE MUSE's MM-DD-YYYY; read back from the page with
pdftotext), and ``ecgnet report`` echoing the reader's notes and warnings on the terminal as ``ecgnet
predict`` does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecgnet.data.records import ECGRecord
from ecgnet.report.fields import iso_date
from ecgnet.report.pdf import render

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"
needs_formats = pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="needs poppler-utils (pdftotext): apt-get install poppler-utils")
RESULT = {"diagnoses": [{"class": "NORM", "probability": 0.9, "description": "normal ECG", "threshold": 0.5,
                         "positive": True}], "positives": ["NORM"], "warnings": []}
MODEL = {"name": "long_time", "weights_sha256": "ce8f158a1ef7fb1d" + "0" * 48}


def page_text(tmp_path: Path, record: ECGRecord) -> str:
    """The report page of ``record`` as pdftotext reads it back."""
    pdf = render(record, RESULT, MODEL, tmp_path / "report.pdf")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("raw, expected", [
    ("19710123", "1971-01-23"),  # DICOM DA, HL7 TS to the day
    ("197101", "1971-01"),  # DICOM DT / HL7 TS to the month
    ("2002112209", "2002-11-22 09 h"),  # HL7 TS to the hour: no made-up minutes
    ("200211220910", "2002-11-22 09:10"),  # to the minute
    ("20130125105919", "2013-01-25 10:59:19"),  # DICOM DT, HL7 TS to the second
    ("20130125105919.123456", "2013-01-25 10:59:19.123456"),  # DICOM DT's microseconds
    ("20021122091000.5-0500", "2002-11-22 09:10:00.5-05:00"),  # HL7 TS's fraction and offset
    ("20130125105919+0100", "2013-01-25 10:59:19+01:00"),
    (" 19710123 ", "1971-01-23"),  # DICOM's padding
    ("2011-12-01 07:27:34", "2011-12-01 07:27:34"),  # already ISO (SCP-ECG, Philips, EDF): as it is
    ("1953-05-08", "1953-05-08"),
])
def test_compact_dicom_and_hl7_dates_print_as_iso(raw, expected):
    assert iso_date(raw) == expected
    assert iso_date(raw, "dicom") == expected and iso_date(raw, "hl7-aecg") == expected


@pytest.mark.parametrize("raw", [
    "20131325",  # month 13
    "19710230",  # 30 February
    "20130125256000",  # 25 h, 60 min
    "20130125105919+2500",  # no such offset
    "19710123+0100",  # an offset on a date alone
    "1971",
    "unknown",
    "23.01.1971",
    "",
    "  19710123x ",  # unparseable: verbatim, padding included
])
def test_what_cannot_be_read_as_a_date_prints_as_it_is(raw):
    assert iso_date(raw) == raw
    assert iso_date(raw, "muse-xml") == raw


def test_muse_month_first_dates_only_from_muse_files():
    assert iso_date("03-21-1941", "muse-xml") == "1941-03-21"
    assert iso_date("04-22-2000 11:34:00", "muse-xml") == "2000-04-22 11:34:00"
    assert iso_date("04-22-2000 11:34", "muse-xml") == "2000-04-22 11:34"
    assert iso_date("21-03-1941", "muse-xml") == "21-03-1941"  # no month 21: as it is
    assert iso_date("03-21-1941", "philips-xml") == "03-21-1941"  # day or month first: another format's to say
    assert iso_date("03-21-1941") == "03-21-1941"


def test_a_non_string_value_prints_as_text():
    assert iso_date(19710123) == "1971-01-23"


@needs_pdftotext
def test_the_page_prints_dates_as_iso_and_leaves_out_empty_fields(tmp_path):
    record = ECGRecord(Path("x.dcm"), np.zeros((12, 5000), np.float32), 500.0, 500.0, format="dicom",
                       patient={"id": "P-7", "name": "", "birth_date": "19710123", "acquired": "20130125105919",
                                "device": None, "site": "not a date 20130125"})
    text = page_text(tmp_path, record)
    for expected in ("Patient ID: P-7", "Born: 1971-01-23", "Acquired: 2013-01-25 10:59:19",
                     "Site: not a date 20130125"):
        assert expected in text, expected
    assert "19710123" not in text and "20130125105919" not in text
    assert "Name:" not in text and "Device:" not in text and "None" not in text  # empty fields left out


@needs_pdftotext
@needs_formats
@pytest.mark.parametrize("path, born, acquired", [
    ("dicom/marcodebe_anonymous_ecg.dcm", "1971-01-23", "2013-01-25 10:59:19"),  # DA, DT
    ("hl7_aecg/hl7_2003-12_Example_aECG.xml", "1953-05-08", "2002-11-22 09:10:00"),  # TS
    ("scp_ecg/ecgtoolkit_Example.scp", "1953-05-08", "2002-11-22 09:10:00"),  # the same recording, read as ISO
    ("muse_xml/ml4h_muse_ecg_deidentified_1.xml", "1941-03-21", "2000-04-22 11:34:00"),  # MM-DD-YYYY
    ("philips_xml/3191723_ZZDEMOPTONLY_1-04_orig.xml", "1950-01-01", "2010-01-19 15:19:22"),
])
def test_real_device_files_print_their_dates_alike(tmp_path, path, born, acquired):
    """The same printed form from every format; the HL7 file and its SCP-ECG conversion print the same."""
    from ecgnet.data.readers import read_ecg_any

    record = read_ecg_any(FORMATS_DIR / path, 500.0, resample=True)
    text = page_text(tmp_path, record)
    assert f"Born: {born}" in text and f"Acquired: {acquired}" in text, text[:2000]


def test_dicom_names_and_acquisition_times_print_as_people_read_them():
    """A DICOM PN printed raw read "Ærøskøbing^Françoise^Zoë"; the acquisition fell back to StudyDate (a day)
    past AcquisitionDate/Time and ContentDate/Time (found in a report audit)."""
    from pydicom.dataset import Dataset

    from ecgnet.data.readers.dicom import _acquired, _name

    assert _name("Ærøskøbing^Françoise^Zoë") == "Ærøskøbing, Françoise Zoë"
    assert _name("Doe^John^^Dr^Jr") == "Doe Jr, Dr John" and _name("Doe") == "Doe" and _name(None) == ""
    ds = Dataset()
    ds.StudyDate, ds.StudyTime = "20130101", "0800"
    assert iso_date(_acquired(ds)) == "2013-01-01 08:00"
    ds.ContentDate, ds.ContentTime = "20130125", "105919.5"
    assert iso_date(_acquired(ds)) == "2013-01-25 10:59:19.5"
    ds.AcquisitionDate = "20130124"
    assert iso_date(_acquired(ds)) == "2013-01-24"  # the acquisition's own date, even without its time
    ds.AcquisitionDateTime = "20130124101112"
    assert iso_date(_acquired(ds)) == "2013-01-24 10:11:12"


@needs_formats
def test_the_scp_file_names_its_device_as_its_hl7_twin_does():
    from ecgnet.data.readers import read_ecg_any

    scp = read_ecg_any(FORMATS_DIR / "scp_ecg" / "ecgtoolkit_Example.scp", 500.0, resample=True)
    hl7 = read_ecg_any(FORMATS_DIR / "hl7_aecg" / "hl7_2003-12_Example_aECG.xml", 500.0, resample=True)
    assert "ELI250" in scp.patient["device"] and hl7.patient["device"] == "ELI250"


def report(tmp_path: Path, path: str):
    """``ecgnet report`` on a real device file with the bundled default model, through typer's CliRunner."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    out = tmp_path / "report.pdf"
    res = CliRunner().invoke(app, ["report", str(FORMATS_DIR / path), "--pdf", str(out), "--resample"])
    assert res.exit_code == 0, res.output
    assert out.exists()
    return res, " ".join(res.output.split())  # the terminal wraps long lines


@needs_formats
def test_report_echoes_the_readers_warnings_and_notes(tmp_path):
    """The MUSE file's 240 vs 250 Hz SampleBase conflict reaches the terminal, not only the page; notes
    (derived leads, resampling) print as predict prints them, before the warnings."""
    res, flat = report(tmp_path, "muse_xml/ml4h_muse_ecg_deidentified_1.xml")
    assert "Report:" in flat and "positive:" in flat
    assert ("warning: conflicting sampling rates: the rhythm waveform's SampleBase says 240 Hz, ECGSampleBase "
            "says 250 Hz; read at 240 Hz") in flat
    assert "note: derived III, aVR, aVL, aVF from I and II" in flat and "note: resampled: 240 Hz →" in flat
    lines = res.output.splitlines()
    assert lines[0].startswith("Report:")  # the PDF's name first, then the reader's notes and warnings
    starts = [next(i for i, line in enumerate(lines) if line.startswith(f"  {kind}:")) for kind in ("note", "warning")]
    assert starts[0] < starts[1]


@needs_formats
def test_report_prints_no_warning_line_for_a_clean_file(tmp_path):
    _, flat = report(tmp_path, "dicom/marcodebe_anonymous_ecg.dcm")
    assert "warning:" not in flat
    assert "note: resampled: 1000 Hz →" in flat


@needs_formats
def test_predict_prints_each_warning_on_one_line_when_redirected(tmp_path):
    """Redirected to a file, the MUSE file's 150-character rate warning was cut at 120 columns onto an
    unindented line: `grep warning:` missed its end (found in a wheel audit)."""
    import sys

    muse = FORMATS_DIR / "muse_xml" / "ml4h_muse_ecg_deidentified_1.xml"
    out = subprocess.run([sys.executable, "-c", "from ecgnet.cli import app; app()", "predict", str(muse)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    warning = next(line for line in out.stdout.splitlines() if "conflicting sampling rates" in line)
    assert warning.startswith("  warning: ") and "ventricular rate" in warning and len(warning) > 120
    assert all(line.startswith(("  ", "model ", "/")) for line in out.stdout.splitlines() if line), out.stdout


@needs_pdftotext
def test_a_name_the_fonts_cannot_draw_is_said_not_left_as_boxes(tmp_path):
    """A Chinese name printed as empty boxes, with only a matplotlib warning on stderr (found in a report audit);
    with a CJK font installed it is drawn (the page falls back glyph by glyph)."""
    from ecgnet.report.pdf import undrawable

    record = ECGRecord(Path("x.xml"), np.zeros((12, 5000), np.float32), 500.0, 500.0, format="hl7-aecg",
                       patient={"id": "P-1", "name": "Zoë 王小明"})
    text = page_text(tmp_path, record)
    cjk = not undrawable(["王小明"])
    assert ("3 character(s) not drawable" in " ".join(text.split())) != cjk
    assert "U+738B" in text or cjk
    assert undrawable(["Zoë Ærø Ñúñez"]) == []  # Latin accents: DejaVu Sans
