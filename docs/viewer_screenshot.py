"""Redraw docs/viewer.png, the README's picture of the viewer: a fold-10 PTB-XL record (default ecg_id
1950, an inferolateral MI) diagnosed by the best model, with the MI attribution over its 10 s.

    ECGNET_DATA=... .venv/bin/python docs/viewer_screenshot.py [--ecg-id 1950] [--out docs/viewer.png]

Needs Debian's Chromium (/usr/bin/chromium) and Playwright, like tests/test_serve_browser.py.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn
from PIL import Image
from playwright.sync_api import sync_playwright

from ecgnet.serve import create_app

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ecg-id", type=int, default=1950)
    parser.add_argument("--model", default="intermediate_concat_weighted_bce")
    parser.add_argument("--target", default="MI")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "viewer.png")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app([args.model], data_root=os.environ["ECGNET_DATA"]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1560, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#model option", state="attached")
            page.fill("#ecg-id", str(args.ecg_id))
            page.click("#open-record")
            page.wait_for_selector("tr.dx-row")
            page.select_option("#scope", "segment")
            page.locator(f"tr.dx-row[data-class='{args.target}'] .explain-btn").click()
            page.wait_for_selector("svg#ecg-svg rect.attr", state="attached", timeout=120_000)
            page.wait_for_selector(".modality-row")
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
    image = Image.open(args.out).convert("RGB")  # 256 colours: a third of the size, no visible loss
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
