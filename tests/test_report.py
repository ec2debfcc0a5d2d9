"""The clinical PDF report (ecgnet.report): one A4 landscape page whose trace is drawn at 25 mm/s and
10 mm/mV on a true millimetre grid — measured on the page rendered by poppler's pdftoppm at 254 dpi
(10 pixels per mm) — and which carries the patient fields, ECGNet's calls, the device's statements, the
quality flags, the model's identity and the over-read notice (read back with pdftotext)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecgnet.data.records import LEADS, ECGRecord
from ecgnet.report import layout as L
from ecgnet.report.pdf import DISCLAIMER, render

PX_PER_MM = 10  # pdftoppm -r 254
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="needs poppler-utils (pdftoppm, pdftotext): apt-get install poppler-utils")
RESULT = {"diagnoses": [
    {"class": "MI", "probability": 0.81, "description": "myocardial infarction", "threshold": 0.36, "positive": True},
    {"class": "NORM", "probability": 0.12, "description": "normal ECG", "threshold": 0.75, "positive": False}],
    "positives": ["MI"], "warnings": ["an example warning"]}
MODEL = {"name": "long_time", "weights_sha256": "ce8f158a1ef7fb1d" + "0" * 48}


def pulses(rate: float = 500.0, seconds: float = 10.0) -> np.ndarray:
    """12 leads at ``rate``: zero, except 1 mV square pulses of 0.2 s starting at 0.5 s, 1.5 s, … in lead II
    (so its median, the trace's baseline, is 0 mV) and a 1 mV 10 Hz sine in V6 (no other use)."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros((12, t.size), np.float32)
    x[LEADS.index("II")] = ((t - 0.5) % 1.0 < 0.2) * 1.0
    x[LEADS.index("V6")] = 0.5 * np.sin(2 * np.pi * 10 * t)
    return x


def rendered(tmp_path: Path, record: ECGRecord, result=RESULT) -> tuple[Path, np.ndarray]:
    from PIL import Image

    pdf = render(record, result, MODEL, tmp_path / "report.pdf")
    subprocess.run(["pdftoppm", "-r", "254", "-png", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
    return pdf, np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).astype(int)


def clusters(indices: np.ndarray) -> list[float]:
    """Runs of consecutive indices → their centres."""
    if not indices.size:
        return []
    groups = np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1)
    return [float(g.mean()) for g in groups]


@needs_poppler
def test_the_trace_is_25_mm_per_s_and_10_mm_per_mv_on_an_a4_page(tmp_path):
    record = ECGRecord(Path("pulses.hea"), pulses(), 500.0, 500.0)
    _, img = rendered(tmp_path, record)
    assert abs(img.shape[0] - 2100) <= 1 and abs(img.shape[1] - 2970) <= 1  # A4 landscape: 297 × 210 mm at 10 px/mm
    dark = img.max(-1) < 90  # the black trace; the grid is pink, the page white
    # the rhythm strip (lead II, 10 s) occupies the lowest row of the grid
    top_mm = L.PAGE_MM[1] - (L.GRID_Y + L.ROW_MM)
    band = dark[int(top_mm * PX_PER_MM):int((L.PAGE_MM[1] - L.GRID_Y) * PX_PER_MM)]
    x0 = int((L.GRID_X + L.CALIBRATION_MM) * PX_PER_MM)  # where the record's t = 0 is drawn
    strip = band[:, x0:]
    # the pulses' vertical edges: columns with a tall dark run
    edges = clusters(np.flatnonzero(strip.sum(0) > 80))
    rising, falling = np.array(edges[0::2]), np.array(edges[1::2])
    assert len(rising) == 10
    assert np.allclose(np.diff(rising), 25 * PX_PER_MM, atol=1.5)  # 1 s apart = 25 mm
    assert np.allclose(falling - rising, 0.2 * 25 * PX_PER_MM, atol=1.5)  # 0.2 s = 5 mm
    assert abs(rising[0] - 0.5 * 25 * PX_PER_MM) < 2  # the first pulse starts 0.5 s = 12.5 mm after t = 0
    # the pulses' height: from the baseline row to the pulse-top row, measured across the strip
    rows = strip.sum(1)
    baseline, tops = np.argmax(rows), None
    others = [r for r in clusters(np.flatnonzero(rows > 200)) if abs(r - baseline) > 20]
    tops = others[0]
    assert abs((baseline - tops) - 1.0 * 10 * PX_PER_MM) < 1.5  # 1 mV = 10 mm
    # the calibration pulse before the strip: 10 mm high and 5 mm wide as well
    cal = band[:, int(L.GRID_X * PX_PER_MM):x0]
    cal_edges = clusters(np.flatnonzero(cal.sum(0) > 80))
    assert len(cal_edges) == 2 and abs(cal_edges[1] - cal_edges[0] - 5 * PX_PER_MM) < 1.5
    cal_rows = clusters(np.flatnonzero(cal.sum(1) > 30))
    assert abs(cal_rows[-1] - cal_rows[0] - 10 * PX_PER_MM) < 1.5


@needs_poppler
def test_the_grid_has_1_mm_and_5_mm_lines(tmp_path):
    record = ECGRecord(Path("pulses.hea"), np.zeros((12, 5000), np.float32), 500.0, 500.0)
    _, img = rendered(tmp_path, record)
    # one pixel row inside the grid between two traces (just below the grid's top edge)
    y = int((L.PAGE_MM[1] - (L.GRID_Y + L.GRID_H) + 2.5) * PX_PER_MM)
    row = img[y, int(L.GRID_X * PX_PER_MM):int((L.GRID_X + L.GRID_W) * PX_PER_MM)]
    reddish = (row[:, 0] > 150) & (row[:, 1] < 235)  # grid ink: red stays high, green drops
    major = (row[:, 0] > 150) & (row[:, 1] < 175)  # the darker 5 mm lines
    assert np.allclose(np.diff(clusters(np.flatnonzero(major))), 5 * PX_PER_MM, atol=1.5)
    minor = clusters(np.flatnonzero(reddish))
    assert np.allclose(np.diff(minor), PX_PER_MM, atol=1.5)
    assert len(minor) >= L.GRID_W  # one line per millimetre


@needs_poppler
def test_the_page_carries_patient_calls_statements_quality_model_and_notice(tmp_path):
    t = np.arange(5000) / 500
    x = np.stack([(0.3 + 0.1 * i) * np.sin(2 * np.pi * t + i) for i in range(12)]).astype(np.float32)
    x[LEADS.index("V3")] = 0.0  # a disconnected lead; the others are clean
    record = ECGRecord(Path("ecg.xml"), x, 500.0, 500.0, format="muse-xml", derived_leads=["III", "AVR"],
                       statements=["Sinus bradycardia", ">>> Acute MI <<<"],
                       patient={"id": "P-0042", "acquired": "2011-12-01 07:27:34"}, age=61, sex="female")
    pdf, _ = rendered(tmp_path, record)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for expected in ("P-0042", "2011-12-01 07:27:34", "61 years, female", "muse-xml", "Derived (not recorded): III, aVR",
                     "Sinus bradycardia", ">>> Acute MI <<<", "long_time", "ce8f158a1ef7fb1d", "0.81", "0.36",
                     "POSITIVE", "Positive: MI", "disconnected (lead off): V3 (", "an example warning", "25 mm/s",
                     "10 mm/mV", DISCLAIMER):
        assert expected in text, expected
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Pages:\s+1\n", info) and "841.89 x 595.276 pts" in info  # one A4 landscape page


@needs_poppler
def test_dollar_signs_from_a_file_are_printed_as_written(tmp_path):
    """A device statement 'ST $\\foo$ elevation' went to matplotlib's TeX parser: the viewer's report answered
    500, and other '$…$' text was typeset as math (found in a serve audit)."""
    x = pulses()
    record = ECGRecord(Path("ecg.xml"), x, 500.0, 500.0, format="muse-xml",
                       statements=[r"ST $\foo$ elevation", "cost $5 and $6"], patient={"id": "$x^2$"})
    pdf, _ = rendered(tmp_path, record)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for expected in (r"ST $\foo$ elevation", "cost $5 and $6", "$x^2$"):
        assert expected in text, expected


def test_reports_rendered_at_once_draw_dollars_as_written_without_touching_matplotlibs_settings():
    """The first fix switched matplotlib's math parser off process-wide for a render: the viewer's two report
    threads raced, one failed on 'ST $\\foo$' again and the setting was left off (found in review)."""
    from concurrent.futures import ThreadPoolExecutor

    import matplotlib

    from ecgnet.report.pdf import pdf_bytes

    record = ECGRecord(Path("ecg.xml"), pulses(), 500.0, 500.0, format="muse-xml", statements=[r"ST $\foo$ up"])
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: pdf_bytes(record, RESULT, MODEL), range(8)))
    assert all(p.startswith(b"%PDF-") for p in pages) and matplotlib.rcParams["text.parse_math"] is True


def test_a_failed_render_leaves_no_file(tmp_path):
    record = ECGRecord(Path("x.hea"), pulses(), 500.0, 500.0)
    with pytest.raises(KeyError, match="probability"):
        render(record, {"diagnoses": [{"class": "MI"}]}, MODEL, tmp_path / "out.pdf")  # no probability
    assert list(tmp_path.iterdir()) == []


FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"


@needs_poppler
@pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")
def test_ecgnet_report_on_a_real_device_file(tmp_path):
    """The command end to end with the bundled default model: the Philips file's statements, its
    patient ID and ECGNet's calls on one page."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    out = tmp_path / "philips.pdf"
    res = CliRunner().invoke(app, ["report", str(FORMATS_DIR / "philips_xml" / "129DYPRG.XML"), "--pdf", str(out),
                                   "--resample"])
    assert res.exit_code == 0, res.output
    assert "Report:" in res.output and "positive:" in res.output
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    for expected in (">>> Acute MI <<<", "Sinus bradycardia", "1112010721168bdc", "philips-xml, 500 Hz", "threshold",
                     "weights sha256", DISCLAIMER):
        assert expected in text, expected


def test_ecgnet_report_refuses_an_unreadable_file_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    bad = tmp_path / "notes.txt"
    bad.write_text("not an ECG\n")
    out = tmp_path / "out.pdf"
    res = CliRunner().invoke(app, ["report", str(bad), "--pdf", str(out)])
    assert res.exit_code == 2
    assert "notes.txt" in res.output
    assert not out.exists()
    png = CliRunner().invoke(app, ["report", str(bad), "--pdf", str(tmp_path / "r.png")])  # a PDF named .png: no
    assert png.exit_code == 2 and "give a name ending in .pdf" in png.output and not (tmp_path / "r.png").exists()
    blocked = CliRunner().invoke(app, ["report", str(bad), "--pdf", str(bad / "out.pdf")])  # a folder that is a file
    assert blocked.exit_code == 2 and "a file stands where a folder is needed" in blocked.output, blocked.output


def test_pdf_bytes_is_the_same_single_page():
    from ecgnet.report.pdf import pdf_bytes

    data = pdf_bytes(ECGRecord(Path("x.hea"), pulses(), 500.0, 500.0), RESULT, MODEL)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/Count 1" in data  # one page …
    assert re.search(rb"/MediaBox \[ 0 0 841\.8897\d* 595\.2755\d* \]", data)  # … of 297 × 210 mm (in points)


@needs_poppler
def test_the_viewer_prints_the_report_of_an_upload(tmp_path, ptbxl_root):
    """POST /api/report with a record's files → the PDF page of that record (its name, the model's)."""
    pytest.importorskip("fastapi", reason="fastapi is not installed")
    from fastapi.testclient import TestClient

    from ecgnet.serve import create_app

    record = ptbxl_root / "records100" / "00000" / "00001_lr"
    files = [("files", (record.name + s, (record.parent / (record.name + s)).read_bytes())) for s in (".hea", ".dat")]
    with TestClient(create_app(["baseline_time"]), base_url="http://localhost") as client:
        res = client.post("/api/report", files=files, data={"model": "baseline_time"})
        assert res.status_code == 200, res.text
        assert res.headers["content-type"] == "application/pdf"
        assert 'filename="00001_lr_report.pdf"' in res.headers["content-disposition"]
        (tmp_path / "r.pdf").write_bytes(res.content)
        text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "00001_lr.hea" in text and "baseline_time" in text and DISCLAIMER in text
        refused = client.post("/api/report", data={"model": "baseline_time"})  # neither files nor ecg_id
        assert refused.status_code == 400 and "either" in refused.json()["detail"]


def ink(dark: np.ndarray, x_mm: tuple[float, float], y_mm: tuple[float, float]) -> int:
    """Dark pixels in a box of the page given in page millimetres from the bottom-left corner."""
    top, bottom = (int((L.PAGE_MM[1] - y) * PX_PER_MM) for y in (y_mm[1], y_mm[0]))
    return int(dark[top:bottom, int(x_mm[0] * PX_PER_MM):int(x_mm[1] * PX_PER_MM)].sum())


@needs_poppler
@pytest.mark.parametrize("seconds", [4.0, 30.0])
def test_short_and_long_records_fit_the_page(tmp_path, seconds):
    """A 4 s record is shared out over the four columns, a second each, so that V4–V6 are not left blank (they
    were, without a word: found in a report audit); a 30 s record shows its first 10 s."""
    record = ECGRecord(Path("x.hea"), pulses(seconds=seconds), 500.0, 500.0)
    pdf, img = rendered(tmp_path, record)
    dark = img.max(-1) < 90
    v6_x = L.GRID_X + L.CALIBRATION_MM + 3 * L.COLUMN_S * L.MM_PER_S  # V6: the last column of the third row
    v6_y = L.GRID_Y + L.row_baseline(2)
    assert ink(dark, (v6_x + 3, v6_x + 20), (v6_y - 6, v6_y + 6)) > 500  # its 0.5 mV sine is drawn
    x0 = int((L.GRID_X + L.CALIBRATION_MM) * PX_PER_MM)
    strip = dark[int((L.PAGE_MM[1] - (L.GRID_Y + L.ROW_MM)) * PX_PER_MM):int((L.PAGE_MM[1] - L.GRID_Y) * PX_PER_MM), x0:]
    edges = clusters(np.flatnonzero(strip.sum(0) > 80))
    assert len(edges) == 2 * min(10, int(seconds))  # a rising and a falling edge per pulse drawn
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert ("(first 10 s shown)" in text) == (seconds > 10)
    assert ("(each column 1 s)" in text) == (seconds < 10)


@needs_poppler
def test_a_tall_wave_runs_past_its_row_instead_of_being_cut(tmp_path):
    """An R wave of 3 mV in V4 (the top row) is drawn to its height, above the grid, as on paper; it was cut
    flat at the grid's edge, so LVH voltages could not be read (found in a report audit)."""
    x = pulses()
    t = np.arange(x.shape[1]) / 500
    x[LEADS.index("V4")] = ((t - 8.0) % 10 < 0.2) * 3.0  # one 3 mV pulse at 8.0 s, in V4's column
    _, img = rendered(tmp_path, ECGRecord(Path("x.hea"), x, 500.0, 500.0))
    dark = img.max(-1) < 90
    edge = L.GRID_X + L.CALIBRATION_MM + 8.0 * L.MM_PER_S  # where the pulse rises
    grid_top = L.GRID_Y + L.GRID_H
    top = L.GRID_Y + L.row_baseline(0) + 3.0 * L.MM_PER_MV  # 30 mm above V4's baseline, 12 mm above the grid
    assert top > grid_top + 10
    assert ink(dark, (edge - 1, edge + 1), (grid_top + 1, top - 1)) > 10 * PX_PER_MM  # the edge, above the grid
    assert ink(dark, (edge + 1, edge + 4), (top - 0.5, top + 0.5)) > 2 * PX_PER_MM  # the pulse's flat top


def words(pdf: Path) -> list[tuple[str, float]]:
    """Each word of the page and how far its bottom is from the page's bottom, in mm (pdftotext -bbox)."""
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [(w, L.PAGE_MM[1] - float(y) * 25.4 / 72)
            for y, w in re.findall(r'<word xMin="[^"]+" yMin="[^"]+" xMax="[^"]+" yMax="([^"]+)">([^<]*)</word>', html)]


@needs_poppler
def test_many_calls_and_warnings_stay_above_the_grid_and_every_positive_is_named(tmp_path):
    """A 40-class run with 30 positives and a dozen warnings: the header said "+N classes below their thresholds"
    of classes that were positive, ran its verdict off the page and its warnings into the grid, cutting the one
    that says why calls were withheld (found in a report audit)."""
    diagnoses = [{"class": f"K{i:02d}", "probability": 0.9 - i / 100, "description": "", "threshold": 0.5,
                  "positive": i < 30} for i in range(40)]
    result = {"diagnoses": diagnoses, "positives": [d["class"] for d in diagnoses if d["positive"]],
              "warnings": [f"warn{i:02d} " + "a long warning line that wraps " * 3 for i in range(12)]}
    pdf = render(ECGRecord(Path("x.hea"), pulses(), 500.0, 500.0), result, MODEL, tmp_path / "r.pdf")
    found = words(pdf)
    grid_top = L.GRID_Y + L.GRID_H
    header = [(w, y) for w, y in found if re.fullmatch(r"(K\d\d,?|warn\d\d|…|\+\d+|more)", w)]
    assert header and all(y > grid_top for _, y in header), [h for h in header if h[1] <= grid_top]
    named = {w.rstrip(",") for w, _ in header if w.startswith("K")}
    assert named >= set(result["positives"])  # every positive, in the rows or the verdict
    text = " ".join(w for w, _ in found)
    rows = text.count("POSITIVE")
    note = re.search(r"\(\+(\d+) classes not listed: (\d+) positive, named below; (\d+) below their thresholds\)", text)
    assert note, text[:3000]
    hidden, hidden_positive, hidden_negative = map(int, note.groups())
    assert hidden_positive == 30 - rows and hidden == hidden_positive + hidden_negative
    assert "warn00" in text and "more lines not shown" in text


@needs_poppler
def test_a_probability_next_to_its_threshold_gets_the_digits_that_tell_them_apart(tmp_path):
    diagnoses = [{"class": "MI", "probability": 0.24312, "description": "", "threshold": 0.24318, "positive": False},
                 {"class": "CD", "probability": 0.5, "description": "", "threshold": None, "positive": None}]
    pdf = render(ECGRecord(Path("x.hea"), pulses(), 500.0, 500.0), {"diagnoses": diagnoses[:1], "positives": []},
                 MODEL, tmp_path / "r.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"MI\s+0\.2431\s+0\.2432\s+negative", text), text  # not "0.24 0.24 negative"
    pdf = render(ECGRecord(Path("x.hea"), pulses(), 500.0, 500.0), {"diagnoses": diagnoses[1:], "positives": []},
                 MODEL, tmp_path / "r.pdf")
    assert "No calls: the run has no thresholds" in " ".join(w for w, _ in words(pdf))
