"""The viewer in a real headless browser: Debian's Chromium driven by Playwright.

The test starts ``ecgnet serve``'s app with uvicorn on a free local port, uploads a shared Challenge
record through the page, waits for the 12 leads and the 5 diagnoses, switches the attribution overlay
of the top class on and off, downloads the JSON, saves a screenshot under the test's tmp folder and
checks that the page logged no console error; the PNG and SVG downloads must hold the drawn ECG (pixel
variance and dark trace pixels; 12 lead paths). Skipped, with the reason, without Chromium or Playwright —
except in CI (``ECGNET_REQUIRE_BROWSER=1``, set by ``.ci/run``, which installs Chromium), where a missing
browser fails the test instead of hiding it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"
RECORD = SAMPLES / "georgia" / "E00001"

REQUIRED = os.environ.get("ECGNET_REQUIRE_BROWSER") == "1"  # CI: a missing browser is a failure
if REQUIRED and not (CHROMIUM.is_file() or shutil.which("chromium")):
    pytest.fail(f"ECGNET_REQUIRE_BROWSER=1 but no Chromium at {CHROMIUM}", pytrace=False)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
if not CHROMIUM.is_file() and not shutil.which("chromium"):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from ecgnet.serve import create_app

    with _serve(create_app(["baseline_time"])) as address:
        yield address


@contextlib.contextmanager
def _serve(app):
    """The app served by uvicorn on a free local port, at the address this yields."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
                              args=ARGS, headless=True)
        yield b
        b.close()


@pytest.mark.skipif(not RECORD.with_suffix(".hea").is_file(), reason=f"shared Challenge samples not found at {SAMPLES}")
def test_upload_diagnose_explain_in_chromium(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")

    page.set_input_files("#files", [str(RECORD.with_suffix(".hea")), str(RECORD.with_suffix(".mat"))])
    page.wait_for_selector("tr.dx-row")
    assert page.locator("svg#ecg-svg path.lead-trace").count() == 12
    assert page.locator("svg#ecg-svg path.rhythm-trace").count() == 1
    assert page.locator("tr.dx-row").count() == 5
    assert page.locator("#thresholds-hint").inner_text().startswith("Thresholds were chosen on fold 9")  # the run's
    assert page.locator("#record-name").inner_text() == "E00001.hea"
    assert "resampled: 500 Hz" in page.locator("#warnings").inner_text()  # the reader's warnings are shown
    assert "NORM" in page.locator("#reference").inner_text()  # the header's #Dx as a reference label
    top = page.locator("tr.dx-row").first.get_attribute("data-class")

    page.locator("tr.dx-row").first.locator(".explain-btn").click()
    page.wait_for_selector("svg#ecg-svg rect.attr", state="attached", timeout=60_000)
    assert page.locator("#overlay-toggle").is_checked()
    assert page.locator("#explain-class").inner_text() == top
    assert page.locator("svg#ecg-svg rect.attr").count() > 10
    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    assert (tmp_path / "viewer.png").stat().st_size > 20_000

    page.locator("#overlay-toggle").uncheck()  # the toggle hides the overlay, and brings it back
    assert page.locator("svg#ecg-svg rect.attr").count() == 0
    page.locator("#overlay-toggle").check()
    assert page.locator("svg#ecg-svg rect.attr").count() > 10

    if page.locator("#scope").input_value() == "best":  # a 2.5 s window in 3 × 4 colours one column: said
        assert "only the leads of the window's column" in page.locator("#explain-text").inner_text()
    page.select_option("#layout", "12")  # 12 stacked strips
    assert "only the leads of the window's column" not in page.locator("#explain-text").inner_text()
    assert page.locator("svg#ecg-svg path.lead-trace").count() == 12
    width = float(page.locator("svg#ecg-svg").get_attribute("width"))
    page.click("#zoom-in")
    assert float(page.locator("svg#ecg-svg").get_attribute("width")) > 1.2 * width
    with page.expect_download() as download:
        page.locator("#download-png").click()
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_drawn_png(Path(download.value.path()))
    with page.expect_download() as download:
        page.locator("#download-svg").click()
    assert_drawn_svg(Path(download.value.path()))
    with page.expect_download() as download:
        page.locator("#download-json").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved[0]["record"] == "E00001.hea" and len(saved[0]["diagnoses"]) == 5
    from ecg_writers import ecg, write_muse  # a device file names its patient: the page shows whose ECG it is

    page.set_input_files("#files", [str(write_muse(tmp_path / "muse.xml", ecg(500)))])
    page.wait_for_selector("#record-name:text-is('muse.xml')", timeout=60_000)
    assert "Patient ID: T-1" in page.locator("#record-facts").inner_text()
    assert errors == [], errors  # a Content-Security-Policy violation is a console error too
    assert all(u.startswith((server, "data:", "blob:")) for u in requests), requests  # nothing from outside
    page.close()


def assert_drawn_png(path: Path) -> None:
    """Not a blank image: the grid and traces vary, and the traces (dark pixels) cover a visible area."""
    import numpy as np
    from PIL import Image

    image = Image.open(path)
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert image.width > 1000 and image.height > 500, image.size
    assert pixels.std() > 5, f"blank PNG (pixel std {pixels.std():.2f})"
    dark = (pixels < 80).mean()
    assert 0.001 < dark < 0.5, f"{dark:.4f} of the pixels are traces"


def assert_drawn_svg(path: Path) -> None:
    """The SVG download is the drawn ECG: 12 lead traces with long paths, a rhythm strip."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    leads = [e for e in paths if "lead-trace" in (e.get("class") or "")]
    assert len(leads) == 12 and all(len(e.get("d", "")) > 200 for e in leads)


LONG = SAMPLES / "ptb" / "S0001"  # 38.4 s at 1000 Hz: four 10 s segments, the last starting at 28.4 s


@pytest.mark.slow
@pytest.mark.skipif(not LONG.with_suffix(".hea").is_file(), reason=f"shared Challenge samples not found at {SAMPLES}")
def test_a_long_record_shows_the_segment_it_explains_and_the_png_says_what_it_is(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    page.set_input_files("#files", [str(LONG.with_suffix(".hea")), str(LONG.with_suffix(".mat"))])
    page.wait_for_selector("tr.dx-row")
    page.select_option("#scope", "segment")
    page.locator("tr.dx-row").first.locator(".explain-btn").click()
    page.wait_for_selector("svg#ecg-svg rect.attr", state="attached", timeout=120_000)
    ex = page.evaluate("currentExplanation()")
    t0 = ex["segment"]["start"] / ex["rate"]
    assert (ex["start"], ex["samples"]) == (ex["segment"]["start"], ex["segment"]["samples"])
    assert page.locator("#page-label").inner_text() == f"{t0:.1f}–{t0 + 10:.1f} s of 38.4 s"  # the page follows
    header = page.evaluate("pngHeader()")
    top = page.locator("tr.dx-row").first.get_attribute("data-class")
    assert header[0].startswith("S0001.hea — model baseline_time")
    assert header[1].startswith("25 mm/s · 10 mm/mV · 100 Hz") and f"{t0:.1f}–{t0 + 10:.1f} s" in header[1]
    assert header[2].startswith("Diagnosis: ") and f"for {top}, {t0:.1f}–{t0 + 10:.1f} s" in header[3]
    with page.expect_download() as download:
        page.locator("#download-png").click()
    assert_drawn_png(Path(download.value.path()))
    import numpy as np
    from PIL import Image

    band = np.asarray(Image.open(download.value.path()).convert("L"), dtype=float)[:4 * 40]
    assert (band < 80).mean() > 0.002  # the header's text is drawn above the paper
    assert errors == [], errors
    page.close()


@pytest.mark.skipif(not RECORD.with_suffix(".hea").is_file(), reason=f"shared Challenge samples not found at {SAMPLES}")
def test_what_the_screen_shows_is_what_why_and_print_act_on(server, browser, tmp_path):
    """After a refused upload the page showed the old record while Why? and Print report sent the refused file
    (and a model change kept failing); patient fields changed the printed report but not the screen; a bad
    ecg_id was truncated ('1e3' opened record 1). Found in a browser audit."""
    page = browser.new_page(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    posted = []
    page.on("request", lambda r: posted.append((r.url, r.post_data_buffer or b"")) if r.method == "POST" else None)
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    page.set_input_files("#files", [str(RECORD.with_suffix(".hea")), str(RECORD.with_suffix(".mat"))])
    page.wait_for_selector("tr.dx-row")

    bad = tmp_path / "notes.xml"
    bad.write_text("not an ECG\n")
    page.set_input_files("#files", [str(bad)])
    page.wait_for_selector("#error:not([hidden])")
    assert "still showing the previous record" in page.locator("#error").inner_text()
    assert page.locator("#record-name").inner_text() == "E00001.hea"
    page.locator("tr.dx-row").first.locator(".explain-btn").click()  # acts on the record shown: explained, where
    page.wait_for_selector("svg#ecg-svg rect.attr", state="attached", timeout=60_000)  # notes.xml was refused
    assert page.locator("#error").is_hidden()
    names = [b.get_attribute("aria-label") for b in page.locator(".explain-btn").all()]  # not five "Why?"
    assert len(set(names)) == 5 and any(n.startswith("Hide ") for n in names), names

    predictions = sum(url.endswith("/api/predict") for url, _ in posted)
    page.click("details.patient summary")
    page.fill("#age", "71")
    page.locator("#age").blur()  # the browser's change event: the diagnosis is redone with the new age (a
    # dispatched event would leave the real one to fire later, when Open takes the focus, and its answer clear the
    # ecg_id error below)
    page.wait_for_function("() => document.getElementById('busy').hidden")
    assert sum(url.endswith("/api/predict") for url, _ in posted) == predictions + 1
    assert page.locator("#record-name").inner_text() == "E00001.hea" and page.locator("#error").is_hidden()

    page.evaluate("document.getElementById('ptbxl-field').hidden = false")  # (this server has no PTB-XL)
    page.fill("#ecg-id", "1e3")
    page.locator("#open-record").click()
    assert "a whole number from 1" in page.locator("#error").inner_text()
    page.close()


def _tall_record(folder: Path, seconds: int = 10) -> Path:
    """A 100 Hz record with 4 mV R waves in lead I (the top row of 3 × 4) and −3 mV S waves in II (the rhythm
    strip): more than the paper's rows leave above and below them."""
    import numpy as np
    import wfdb

    signal = np.random.default_rng(0).normal(0, 0.05, (12, seconds * 100))
    signal[0, 50::100], signal[1, 60::100] = 4.0, -3.0
    wfdb.wrsamp("tall", fs=100, units=["mV"] * 12, sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3",
                                                               "V4", "V5", "V6"], p_signal=np.round(signal.T, 3),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
    return folder / "tall.hea"


def test_a_new_record_is_its_own_patient_tall_waves_are_whole_and_keyboard_focus_stays(server, browser, tmp_path):
    """Found in a viewer audit: the Patient fields typed for one record were sent with the next (another
    patient's ECG diagnosed and printed as 'age 85, female'); R waves over 2.3 mV in the top row and S waves
    under −1.5 mV in the rhythm strip were cut at the paper's edge (the printed page drew them); Enter on Why?
    rebuilt the table and dropped the keyboard focus; a 70 s record was said to be 60 s long."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    tall = _tall_record(tmp_path)
    page.set_input_files("#files", [str(tall), str(tall.with_suffix(".dat"))])
    page.wait_for_selector("tr.dx-row")
    for layout in ("3x4", "12"):
        page.select_option("#layout", layout)
        inside = page.evaluate("""() => {  // every trace point lies within the paper
            const svg = document.getElementById('ecg-svg'), box = svg.viewBox.baseVal;
            return [...svg.querySelectorAll('path.lead-trace, path.rhythm-trace')].every((p) => {
                const m = p.getCTM(), s = svg.getCTM().inverse(), n = p.getTotalLength();
                for (let d = 0; d <= n; d += 0.5) {
                    const q = p.getPointAtLength(d).matrixTransform(m).matrixTransform(s);
                    if (q.y < box.y - 1e-6 || q.y > box.y + box.height + 1e-6) return false;
                }
                return true;
            });
        }""")
        assert inside, f"a trace leaves the paper in the {layout} layout"
    page.select_option("#layout", "3x4")

    page.click("details.patient summary")
    page.fill("#age", "85")
    page.locator("#age").blur()
    page.wait_for_function("() => document.getElementById('busy').hidden")
    assert page.evaluate("state.shown.patient") == {"age": "85"}  # the record shown is rediagnosed with it
    page.set_input_files("#files", [str(RECORD.with_suffix(".hea")), str(RECORD.with_suffix(".mat"))])
    page.wait_for_selector("#record-name:text-is('E00001.hea')", timeout=60_000)
    assert page.evaluate("state.shown.patient") == {}  # not sent with another record: its patient is what its
    assert page.locator("#age").input_value() == ""  # file says

    why = page.locator("tr.dx-row").first.locator(".explain-btn")
    top = page.locator("tr.dx-row").first.get_attribute("data-class")
    why.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("svg#ecg-svg rect.attr", state="attached", timeout=60_000)
    assert page.evaluate("document.activeElement.dataset.class") == top  # the rebuilt row's button has the focus

    long = tmp_path / "long"
    long.mkdir()
    seventy = _tall_record(long, seconds=70)
    page.set_input_files("#files", [str(seventy), str(seventy.with_suffix(".dat"))])
    page.wait_for_function("() => document.getElementById('page-label').textContent.includes('record 70.0 s')")
    assert page.locator("#page-label").inner_text() == "0.0–10.0 s of the first 60.0 s (record 70.0 s)"
    page.click("#next-page")
    for _ in range(5):
        page.click("#next-page") if page.locator("#next-page").is_enabled() else None
    assert page.locator("#next-page").is_disabled()  # the last page: nothing further to show
    assert errors == [], errors
    page.close()


def test_a_control_changed_while_a_new_record_loads_applies_to_that_record(server, browser):
    """Typing an age while a new file was still loading rediagnosed the record shown with it and dropped the new
    one (found in review): the change goes to the record on its way; a refused new record gives the shown
    record's fields back. The API and drawing are stubbed so that the order of events is the test's."""
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    outcome = page.evaluate("""async () => {
        const calls = [];
        render = () => {};
        api = (method, url, body) => {
            const sent = Object.fromEntries([...body.entries()].map(([k, v]) => [k, v.name || v]));
            calls.push(sent);
            return new Promise((ok, refuse) => setTimeout(() => sent.files === "refused.hea"
                ? refuse(new Error("refused.hea: not an ECG")) : ok({prediction: {}}), 200));
        };
        const file = (name) => new File(["x"], name);
        state.shown = {source: {files: [file("old.hea")]}, model: $("model").value, patient: {age: "85"}};
        $("age").value = "85";
        const loading = diagnose({files: [file("new.hea")]}, true);  // another record: its fields start empty
        $("age").value = "40";
        const typed = diagnose();  // typed while it loads: for the new record, not the old one
        await Promise.all([loading, typed]);
        const after = {calls, shown: state.shown.source.files[0].name, patient: state.shown.patient};
        const refused = diagnose({files: [file("refused.hea")]}, true);
        const emptied = $("age").value;
        await refused;
        return {...after, emptied, age: $("age").value, still: state.shown.source.files[0].name};
    }""")
    assert [c["files"] for c in outcome["calls"][:2]] == ["new.hea", "new.hea"]
    assert "age" not in outcome["calls"][0] and outcome["calls"][1]["age"] == "40"
    assert outcome["shown"] == "new.hea" and outcome["patient"] == {"age": "40"}
    assert outcome["emptied"] == "" and outcome["still"] == "new.hea" and outcome["age"] == "40"  # refused: back
    page.close()


@pytest.mark.skipif(not RECORD.with_suffix(".hea").is_file(), reason=f"shared Challenge samples not found at {SAMPLES}")
def test_on_a_narrow_screen_the_diagnoses_come_first(server, browser):
    """At 800 px the page is one column; the diagnosis table sat below the ECG, the Why? card and the record's
    facts, about 1,300 px down (found in a viewer audit)."""
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    page.set_input_files("#files", [str(RECORD.with_suffix(".hea")), str(RECORD.with_suffix(".mat"))])
    page.wait_for_selector("tr.dx-row")
    top = page.evaluate("document.querySelector('.dx-card').getBoundingClientRect().top")
    assert top < 300 < page.evaluate("document.getElementById('paper').getBoundingClientRect().top")
    page.close()


RUNS = Path(__file__).resolve().parents[1] / "runs"  # the committed runs


def test_patient_data_only_and_low_thresholds_are_what_the_server_says(browser, tmp_path):
    """The page decided both from rules of its own (the architecture's name; a threshold under 0.05): it now shows
    the server's reads_signal in the model list and its low_thresholds note under the table."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.serve import create_app

    with _serve(create_app(["baseline_time", str(RUNS / "all_metadata"), str(RUNS / "rhythm_time")])) as address:
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(address)
        page.wait_for_selector("#model option", state="attached")
        labels = {o.get_attribute("value"): o.inner_text() for o in page.locator("#model option").all()}
        assert labels["all_metadata"].endswith("patient data only, not the ECG")
        assert not any(t.endswith("not the ECG") for name, t in labels.items() if name != "all_metadata"), labels
        page.select_option("#model", "rhythm_time")
        tall = _tall_record(tmp_path)
        page.set_input_files("#files", [str(tall), str(tall.with_suffix(".dat"))])
        page.wait_for_selector("tr.dx-row")
        note = Predictor(RUNS / "rhythm_time").low_thresholds()
        assert page.locator("#thresholds-hint").inner_text().endswith(f"threshold. {note}.")
        page.close()
