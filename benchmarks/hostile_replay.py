"""Replay a hostile-input corpus against a running viewer and print, per case: HTTP status, time and the
server process's CPU seconds and memory (resident now, peak so far).

Starts ``ecgnet serve`` on 127.0.0.1 (a free port, its own temporary folder), uploads each case of
``tests/hostile.py`` (generated here, never committed), then: bad metadata (``age=inf``), a foreign
``Host`` header, ``/docs`` (no CDN), ``/healthz`` latency while hostile uploads are refused, the time
SIGTERM takes to stop the server (with the upload folders left), and, on a second server whose
``--max-seconds`` is raised to an hour, three concurrent 1 h uploads (time, CPU, peak memory).

    .venv/bin/python -m benchmarks.hostile_replay            # writes benchmarks/results/hostile_replay.json
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks._common import print_table, write_results
from tests import hostile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="baseline_time", help="the server's model")
    parser.add_argument("--health-probes", type=int, default=200, help="/healthz requests timed under load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = replay(Path(tmp), args.checkpoint, args.health_probes)
    write_results("hostile_replay", figures, vars(args))


def replay(tmp: Path, checkpoint: str, probes: int) -> dict:
    corpus = tmp / "corpus"
    corpus.mkdir()
    uploads = {}
    for name, (make, expected) in hostile.CASES.items():
        folder = corpus / name
        folder.mkdir()
        uploads[name] = (hostile.record_files(make(folder)), expected)
    server_tmp = tmp / "server"
    server_tmp.mkdir()
    proc, url = hostile.start_server(server_tmp, checkpoint=checkpoint)
    try:
        rows, figures = [], {"cases": {}}
        figures["started_rss_mb"] = hostile.memory_mb(proc.pid)[0]
        small = uploads["flac_1khz_10min"][0]  # warm-up: loads the model
        hostile.post(url + "/api/predict", small)
        figures["warm_rss_mb"] = hostile.memory_mb(proc.pid)[0]

        cpu = [hostile.cpu_seconds(proc.pid)]

        def record(name, status, seconds, expected, note=""):
            rss, peak = hostile.memory_mb(proc.pid)
            used, cpu[0] = hostile.cpu_seconds(proc.pid) - cpu[0], hostile.cpu_seconds(proc.pid)
            figures["cases"][name] = {"status": status, "seconds": round(seconds, 3), "cpu_seconds": round(used, 2),
                                      "rss_mb": round(rss), "peak_rss_mb": round(peak), "expected": expected,
                                      "note": note[:200]}
            rows.append([name, status, f"{seconds:.2f}", f"{used:.2f}", f"{rss:.0f}", f"{peak:.0f}", expected,
                         note[:60]])

        for name, (files, expected) in uploads.items():
            status, body, seconds = hostile.post(url + "/api/predict", files)
            note = body.get("detail", "") if isinstance(body, dict) and status != 200 else \
                f"{len(str(body)) / 1e6:.2f} MB answer; {body['signal'].get('note', '')}" if status == 200 else str(body)
            record(name, status, seconds, expected, note)

        valid = uploads["flac_1khz_10min"][0]
        status, body, seconds = hostile.post(url + "/api/predict", valid, {"age": "inf"})
        record("age=inf", status, seconds, "422", body.get("detail", "") if isinstance(body, dict) else body)
        status, body, seconds = hostile.get(url + "/healthz", host="rebind.attacker.example")
        record("Host: rebind.attacker.example", status, seconds, "400", body)
        status, body, seconds = hostile.get(url + "/docs")
        external = sorted(set(re.findall(r"(?:src|href)=['\"]?(https?://[^'\" >]+)", body)))
        record("/docs", status, seconds, "200, nothing external", f"external references: {external or 'none'}")

        figures["healthz_under_hostile_load"] = health_under_load(url, uploads, probes)
        figures["final_peak_rss_mb"] = round(hostile.memory_mb(proc.pid)[1])
    finally:
        figures["sigterm_exit_seconds"] = round(hostile.stop_server(proc), 2)
        figures["upload_folders_left"] = len(list(server_tmp.glob("ecgnet-upload-*")))
    figures["widened"] = widened(tmp, checkpoint, uploads["plain_100hz_1h"][0])
    figures["load_average"] = os.getloadavg()
    print_table(["case", "status", "s", "CPU s", "RSS MB", "peak MB", "expected", "note"], rows,
                title=f"hostile replay against ecgnet serve ({checkpoint})")
    h = figures["healthz_under_hostile_load"]
    print(f"\n/healthz while {h['hostile_uploads']} hostile uploads were refused: p50 {h['p50_ms']:.1f} ms, "
          f"p95 {h['p95_ms']:.1f} ms, max {h['max_ms']:.1f} ms ({h['probes']} probes)")
    print(f"server peak RSS {figures['final_peak_rss_mb']} MB (started at {figures['started_rss_mb']:.0f} MB); "
          f"SIGTERM → exit in {figures['sigterm_exit_seconds']} s; upload folders left: "
          f"{figures['upload_folders_left']}")
    w = figures["widened"]
    print(f"with --max-seconds 3600: 3 concurrent 1 h uploads → {w['statuses']} in {w['seconds']:.1f} s "
          f"(slowest {w['slowest_seconds']:.1f} s), server CPU {w['cpu_seconds']:.1f} s, peak RSS {w['peak_rss_mb']} MB")
    return figures


def widened(tmp: Path, checkpoint: str, long: list) -> dict:
    """Three concurrent 1 h uploads (at 100 Hz) to a server whose site raised ``--max-seconds`` to an hour:
    what the default of 10 min protects against, and what a site that widens it pays."""
    server_tmp = tmp / "server_widened"
    server_tmp.mkdir()
    proc, url = hostile.start_server(server_tmp, "--max-seconds", "3600", checkpoint=checkpoint)
    try:
        cpu = hostile.cpu_seconds(proc.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: hostile.post(url + "/api/predict", long), range(3)))
        seconds = time.perf_counter() - start
        return {"statuses": "/".join(str(a[0]) for a in answers), "seconds": round(seconds, 2),
                "slowest_seconds": round(max(a[2] for a in answers), 2),
                "cpu_seconds": round(hostile.cpu_seconds(proc.pid) - cpu, 2),
                "peak_rss_mb": round(hostile.memory_mb(proc.pid)[1])}
    finally:
        hostile.stop_server(proc)


def health_under_load(url: str, uploads: dict, probes: int) -> dict:
    """/healthz timed ``probes`` times while four threads keep uploading the refused cases."""
    hostile_cases = [files for files, expected in uploads.values() if expected == "refused"]
    stop, sent = threading.Event(), [0]

    def attack(i):
        while not stop.is_set():
            hostile.post(url + "/api/predict", hostile_cases[(sent[0] + i) % len(hostile_cases)])
            sent[0] += 1

    threads = [threading.Thread(target=attack, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    times = []
    for _ in range(probes):
        times.append(hostile.get(url + "/healthz")[2] * 1000)
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(120)
    times.sort()
    return {"probes": probes, "hostile_uploads": sent[0], "p50_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1]}


if __name__ == "__main__":
    main()
