"""Shared by the benchmark scripts: machine description, git revision, a plain-text table and the
JSON file each script writes to ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict:
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads_default": torch.get_num_threads(),
            "load_average_1_5_15_min": load}


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 0) -> tuple[float, list[float]]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times; (median seconds, all timings)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print(line)
    for j, row in enumerate(cells):
        # text columns (the first) left-aligned, figures right-aligned
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            print(line)
    print(line)


def command() -> str:
    """How this script was started, as the README says to: ``python -m benchmarks.<name> [options]``
    (:func:`ecgnet.runs.origin.command`, which run.json and the reports record too)."""
    from ecgnet.runs.origin import command as started_as

    return started_as()


def write_results(name: str, figures: dict, options: dict, path: Path | None = None) -> Path:
    """Write figures + options + machine + git revision to ``benchmarks/results/<name>.json``."""
    from ecgnet.fileio import write_text
    from ecgnet.runs import provenance

    path = Path(path) if path else RESULTS_DIR / f"{name}.json"
    origin = provenance()
    doc = {"benchmark": name,
           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "git_revision": origin["git_revision"], "git_dirty_files": origin["git_dirty_files"],
           "command": command(), "machine": machine_info(), "options": options,
           "figures": figures}
    write_text(path, json.dumps(doc, indent=2, default=str) + "\n")  # atomic: temp file, then rename
    print(f"\nwrote {path}")
    return path
