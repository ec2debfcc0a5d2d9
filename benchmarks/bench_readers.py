"""The clinical-format readers (``ecgnet.data.readers``) on the real device files: median milliseconds to
detect and read each file at its source rate (``read_source``) and to read it at the model's 100 Hz
(``read_ecg_any``, resampled), and the peak Python memory of one read (tracemalloc).

    python -m benchmarks.bench_readers
    python -m benchmarks.bench_readers --folder ../shared/external/formats --repeats 20
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

from benchmarks._common import median_seconds, print_table, write_results
from ecgnet.data.readers import detect, read_ecg_any, read_source

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="device files (searched recursively)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and p.name != "README.md")
    rows, figures = [], {}
    for path in files:
        fmt = detect(path)
        source_s, _ = median_seconds(lambda: read_source(path), args.repeats, warmup=1)
        model_s, _ = median_seconds(lambda: read_ecg_any(path, 100, resample=True), args.repeats, warmup=1)
        tracemalloc.start()
        rec = read_ecg_any(path, 100, resample=True)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        name = str(path.relative_to(args.folder))
        figures[name] = {"format": fmt, "bytes": path.stat().st_size, "source_rate": rec.source_rate,
                         "read_source_ms": source_s * 1000, "read_at_100hz_ms": model_s * 1000,
                         "peak_python_mib": peak / 2**20}
        rows.append([name, fmt, f"{path.stat().st_size / 1000:.0f} kB", f"{rec.source_rate:g}",
                     f"{source_s * 1000:.1f}", f"{model_s * 1000:.1f}", f"{peak / 2**20:.1f}"])
    print_table(["file", "format", "size", "Hz", "read ms", "read+100 Hz ms", "peak MiB"], rows,
                title=f"readers, median of {args.repeats}")
    write_results("bench_readers", figures, vars(args) | {"folder": str(args.folder)}, args.output)


if __name__ == "__main__":
    main()
