"""How long the PTB-XL signal cache takes to build, to open and to read into memory.

1. build: ``build_cache`` over the first N records (by ecg_id) of the PTB-XL folder, written into a
   temporary directory that is deleted afterwards (your real cache is never touched);
2. open: ``load_signals`` on the existing cache in $ECGNET_CACHE (index JSON + memory map), median
   over repeats;
3. read: copy the whole memory-mapped array into RAM (``np.array``), median over repeats.

The read figure depends on whether the file is already in the OS page cache (a recently used cache
usually is); this script does not drop caches, so it reports what a training run would see.

    python -m benchmarks.bench_cache --records 2000
    python -m benchmarks.bench_cache            # all 21,837 records, about 70 s on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import median_seconds, print_table, write_results

from ecgnet.data import ptbxl, signals
from ecgnet.errors import ECGNetError


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", help="PTB-XL folder (default: $ECGNET_DATA)")
    p.add_argument("--records", type=int, default=None,
                   help="build the cache for only the first N records (default: all)")
    p.add_argument("--sampling-rate", type=int, choices=(100, 500), default=100)
    p.add_argument("--repeats", type=int, default=3, help="repeats of the open and read timings (default 3)")
    p.add_argument("--skip-build", action="store_true", help="only time opening and reading the existing cache")
    p.add_argument("--tmp-dir", help="where the temporary cache is built (default: system temp dir)")
    p.add_argument("--output", help="JSON path (default: benchmarks/results/bench_cache.json)")
    args = p.parse_args(argv)

    root = ptbxl.data_root(args.data)
    db = ptbxl.read_database(root)
    column = "filename_lr" if args.sampling_rate == 100 else "filename_hr"
    filenames = db[column].to_dict()
    figures: dict = {"records_in_database": len(filenames)}
    rows = []

    if not args.skip_build:
        ids = sorted(filenames)[:args.records] if args.records else sorted(filenames)
        subset = {i: filenames[i] for i in ids}
        with tempfile.TemporaryDirectory(prefix="ecgnet-bench-cache-", dir=args.tmp_dir) as tmp:
            array_path, index_path = Path(tmp) / "signals.npy", Path(tmp) / "signals.json"
            start = time.perf_counter()
            signals.build_cache(root, subset, args.sampling_rate, array_path, index_path)
            seconds = time.perf_counter() - start
            size = array_path.stat().st_size
        figures["build"] = {"records": len(ids), "seconds": round(seconds, 2),
                            "records_per_s": round(len(ids) / seconds, 1), "bytes": size}
        rows.append([f"build cache ({len(ids):,} records)", f"{seconds:.2f} s",
                     f"{len(ids) / seconds:,.0f}", f"{size / 2**20:,.0f} MiB"])

    cache = signals.cache_dir()
    key = signals.cache_key(root, args.sampling_rate)
    if (cache / f"{key}.npy").is_file() and (cache / f"{key}.json").is_file():
        opened = {}

        def open_cache():
            opened["ids"], opened["signals"] = signals.load_signals(root, filenames, args.sampling_rate, cache)

        t_open, _ = median_seconds(open_cache, args.repeats, warmup=0)
        n, arr = len(opened["ids"]), opened["signals"]
        t_read, _ = median_seconds(lambda: np.array(arr), args.repeats, warmup=0)
        figures["open"] = {"records": n, "seconds_median": round(t_open, 6), "records_per_s": round(n / t_open)}
        figures["read_into_memory"] = {"records": n, "bytes": int(arr.nbytes), "seconds_median": round(t_read, 3),
                                       "records_per_s": round(n / t_read),
                                       "gib_per_s": round(arr.nbytes / 2**30 / t_read, 2)}
        rows.append([f"open existing cache (memmap, {n:,} records)", f"{t_open * 1e3:.1f} ms",
                     f"{n / t_open:,.0f}", ""])
        rows.append(["read whole array into memory", f"{t_read:.2f} s", f"{n / t_read:,.0f}",
                     f"{arr.nbytes / 2**30 / t_read:.2f} GiB/s"])
        build_info = json.loads((cache / f"{key}.json").read_text()).get("build_seconds")
        figures["existing_cache"] = {"path": str(cache / f"{key}.npy"), "build_seconds_recorded": build_info}
    else:
        print(f"no existing cache for {root} in {cache} — open/read not timed "
              "(it is built on the first `ecgnet train`, or set ECGNET_CACHE)")

    print_table(["step", "time", "records/s", "size / rate"], rows,
                title=f"PTB-XL signal cache, {args.sampling_rate} Hz (median of {args.repeats} for open/read)")
    write_results("bench_cache", figures, vars(args), args.output)
    return figures


if __name__ == "__main__":
    try:
        main()
    except ECGNetError as e:
        sys.exit(f"error: {e}")
