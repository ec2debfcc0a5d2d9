"""Cold start of the ``ecgnet`` command: how long a user waits for ``ecgnet --help``, ``ecgnet models``,
a mistyped path and ``ecgnet predict`` of one 10 s record, each a fresh process (imports, model load,
reading, scoring, printing), median of ``--repeats`` runs after one untimed warm-up (the page cache warm,
as on a second call). Beside the wall time, the CPU seconds the command used (user + system): on a shared
machine the wall time includes waiting for the cores, the CPU time does not.

Also lists which heavy libraries each command imports (``python -X importtime``): ``predict`` should not
load Lightning, captum, matplotlib, FastAPI or scikit-learn.

    python -m benchmarks.bench_cold_start [--repeats 5] [--checkpoint long_time] [--threads 2]

Writes ``benchmarks/results/cold_start.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import median_seconds, print_table, write_results

HEAVY = ("lightning", "captum", "matplotlib", "fastapi", "sklearn", "scipy", "pandas", "onnxruntime", "torch")


def write_record(directory: Path) -> Path:
    """A synthetic 12-lead 10 s WFDB record at 500 Hz (so predict also resamples)."""
    import numpy as np
    import wfdb

    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    signal = np.random.default_rng(0).normal(0, 0.2, (5000, 12))
    wfdb.wrsamp("cold", fs=500, units=["mV"] * 12, sig_name=leads, p_signal=signal, fmt=["16"] * 12,
                write_dir=str(directory))
    return directory / "cold.hea"


def ecgnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecgnet.cli", *args]


def imported(command: list[str], env: dict) -> list[str]:
    """The heavy top-level packages a command imports (python -X importtime)."""
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env)
    names = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    return [h for h in HEAVY if h in names]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--checkpoint", default="long_time")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the commands (the machine's 2 cores)")
    args = p.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "COLUMNS": "120"}
    with tempfile.TemporaryDirectory() as tmp:
        record = write_record(Path(tmp))
        commands = {
            "ecgnet --help": ecgnet("--help"),
            "ecgnet models": ecgnet("models"),
            "ecgnet predict (mistyped path)": ecgnet("predict", str(Path(tmp) / "no_such.hea")),
            f"ecgnet predict 1 record ({args.checkpoint}, 500 Hz → resampled)":
                ecgnet("predict", str(record), "--resample", "--checkpoint", args.checkpoint),
        }
        rows, figures = [], {}
        for name, command in commands.items():
            cpu = []

            def call():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(command, capture_output=True, env=env)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            median, times = median_seconds(call, args.repeats, warmup=1)
            cpu_median = statistics.median(cpu[1:])  # the warm-up's left out
            heavy = imported(command, env)
            figures[name] = {"median_s": round(median, 3), "runs_s": [round(t, 3) for t in times],
                             "median_cpu_s": round(cpu_median, 3), "imports": heavy}
            rows.append((name, f"{median:.2f}", f"{min(times):.2f}", f"{max(times):.2f}", f"{cpu_median:.2f}",
                         ", ".join(heavy) or "–"))
    print_table(["command", "median s", "min s", "max s", "median CPU s", "heavy imports"], rows,
                title=f"Cold start, {args.repeats} runs each, OMP_NUM_THREADS={args.threads}")
    write_results("cold_start", figures, vars(args))


if __name__ == "__main__":
    main()
