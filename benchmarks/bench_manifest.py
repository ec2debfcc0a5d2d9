"""Own-data scale: building a manifest's signal cache and reading training epochs from it, for
synthetic collections of growing size, with the peak memory of each.

Each size runs in a fresh process (so its peak RSS is its own): it writes N synthetic 12-lead WFDB
records (500 Hz, 10 s, format 16) and a manifest into a temporary folder, then measures

1. build: the cache at 100 Hz (records resampled 500 → 100 Hz) in a pool of processes, records/s;
2. epoch: one pass of the training DataLoader (random 2.5 s crops, batch 128, shuffled) over the
   memory-mapped cache, records/s — reading only, no model (the model's own speed is bench_model.py);
3. peak RSS of the process (the builder's workers are separate processes: their own peak is given too),
   and its resident memory at the end split into private memory and file pages (the memory-mapped
   cache, shared and reclaimable: what grows with the collection is that, not private memory).

Writing the synthetic records is not timed. 100k records need ~100k × 120 kB = 12 GB of WFDB files
and ~4.5 GB of cache: pass --sizes 100000 on a machine with the disk for it.

    python -m benchmarks.bench_manifest                      # 1,000 and 10,000 records
    python -m benchmarks.bench_manifest --sizes 1000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import print_table, write_results


def one(n: int, workers: int | None) -> dict:
    from torch.utils.data import DataLoader

    from ecgnet.data.collections import CollectionData, read_manifest
    from ecgnet.data.dataset import CropDataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lines = ["record,source,A,B"] + [f"r{i}.hea,s{i % 5},{i % 2},{(i // 2) % 2}" for i in range(n)]
        _write_records(tmp, n)
        (tmp / "m.csv").write_text("\n".join(lines) + "\n")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        c = read_manifest(tmp / "m.csv")
        parsed = time.perf_counter() - start
        start = time.perf_counter()
        c = c.load_signals(100, cache_dir=tmp / "cache", workers=workers, progress=False)
        build = time.perf_counter() - start
        data = CollectionData(c, {"train": np.arange(n), "val": np.arange(min(n, 10))})
        loader = DataLoader(CropDataset(data.split("train"), 250), batch_size=128, shuffle=True)
        start = time.perf_counter()
        seen = sum(len(b["y"]) for b in loader)
        epoch = time.perf_counter() - start
        return {"records": n, "manifest_seconds": round(parsed, 2), "build_seconds": round(build, 1),
                "build_records_per_s": round(n / build, 1), "epoch_seconds": round(epoch, 2),
                "epoch_records_per_s": round(seen / epoch, 1),
                "cache_mb": round(sum(p.stat().st_size for p in (tmp / "cache").glob("*.npy")) / 2**20, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                **_rss_now(),
                "rss_before_build_mb": round(rss_before, 1),
                "workers_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def _write_records(folder: Path, n: int) -> None:
    """N records r0 … r{N-1}: one random 10 s, 12-lead, 500 Hz signal, rolled by 7·i samples for record i.
    Record 0 is written by wfdb; the others copy its header (name and each lead's initial value changed —
    a roll keeps the checksum) and write the same format-16 samples with numpy, ~50× faster than wfdb
    per record, which is what makes 100k records affordable. A few are read back with wfdb and compared."""
    import wfdb

    from ecgnet.data.signals import LEADS

    base = np.round(np.random.default_rng(0).normal(0, 0.3, (5000, 12)), 3)
    wfdb.wrsamp("r0", fs=500, units=["mV"] * 12, sig_name=list(LEADS), p_signal=base, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
    header = (folder / "r0.hea").read_text().splitlines()
    digital = np.round(base * 1000).astype("<i2")
    for i in range(1, n):
        rolled = np.roll(digital, i * 7, axis=0)
        rolled.tofile(folder / f"r{i}.dat")
        head = [f"r{i} " + header[0].split(" ", 1)[1]]
        for lead, line in enumerate(header[1:13]):
            f = line.split(" ")
            f[0], f[5] = f"r{i}.dat", str(int(rolled[0, lead]))
            head.append(" ".join(f))
        (folder / f"r{i}.hea").write_text("\n".join(head + header[13:]) + "\n")
    for i in sorted({0, 1, n // 2, n - 1}):
        rec = wfdb.rdrecord(str(folder / f"r{i}"))
        assert np.allclose(rec.p_signal, np.roll(base, i * 7, axis=0)), f"synthetic record r{i} does not read back"


def _rss_now() -> dict:
    """Resident memory at the end, split as Linux counts it: private (anonymous) memory, and file pages —
    mostly the memory-mapped cache, shared with every process reading it and reclaimable by the OS."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return {f"{k.lower()}_mb": round(int(fields[k].split()[0]) / 1024, 1) for k in ("RssAnon", "RssFile")}
    except (OSError, KeyError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--workers", type=int, default=None, help="cache-building processes (default: the library's)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.workers)))
        return {}
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, "-m", "benchmarks.bench_manifest", "--one", str(n)] + \
            (["--workers", str(args.workers)] if args.workers else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_table(["records", "build rec/s", "epoch rec/s", "cache MB", "peak RSS MB", "RSS private MB",
                 "RSS file pages MB", "workers' peak RSS MB"],
                [[r["records"], r["build_records_per_s"], r["epoch_records_per_s"], r["cache_mb"], r["peak_rss_mb"],
                  r.get("rssanon_mb"), r.get("rssfile_mb"), r["workers_peak_rss_mb"]] for r in rows],
                "Manifest cache and training epochs")
    figures = {str(r["records"]): r for r in rows}
    write_results("bench_manifest", figures, {"sizes": args.sizes, "workers": args.workers})
    return figures


if __name__ == "__main__":
    main()
