"""The viewer's "Print report" button and signal-quality line in Chromium (the server and browser fixtures,
and their skips without Chromium or Playwright, are those of test_serve_browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_serve_browser import browser, server  # noqa: F401  (fixtures)


@pytest.mark.slow
def test_print_report_downloads_the_pdf_page_and_quality_is_shown(server, browser, ptbxl_root):  # noqa: F811
    record = ptbxl_root / "records100" / "00000" / "00001_lr"
    page = browser.new_page(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    page.set_input_files("#files", [str(record.with_suffix(".hea")), str(record.with_suffix(".dat"))])
    page.wait_for_selector("tr.dx-row")
    facts = page.locator("#record-facts").inner_text()
    assert "signal quality" in facts and "no lead flagged" in facts
    with page.expect_download(timeout=60_000) as download:
        page.locator("#download-pdf").click()
    assert download.value.suggested_filename == "00001_lr_report.pdf"
    assert Path(download.value.path()).read_bytes()[:5] == b"%PDF-"
    assert errors == [], errors
    page.close()
