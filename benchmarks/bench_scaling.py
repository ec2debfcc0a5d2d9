"""How building the signal cache and a training epoch scale with the number of records.

1. build: ``build_cache`` over the first N records (by ecg_id) of the PTB-XL folder with 1 and with 2
   worker processes, each into a temporary directory deleted afterwards (your cache is never touched);
   the source files are read once beforehand, so every build finds them in the page cache. Whether the
   parallel array is byte-identical to the serial one is checked (SHA-256 from the index).
2. epoch: one training epoch of the config's model (default ``configs/baseline_time.yaml``: 2.5 s
   crops, batch 128, Lightning, no validation) over N records of folds 1–8 (``all``: every training
   record), with the split read from the memory-mapped cache (``mmap``, the ``SignalRows`` view) and
   copied into memory (``memory``, ``data.in_memory: true``). Each runs in a fresh process, so its peak
   RSS (``getrusage``) is its own; the peak of its anonymous memory (``RssAnon``: what the process
   owns, as opposed to file pages of the cache shared through the page cache) is sampled every 20 ms.
   The existing cache in $ECGNET_CACHE is read once first, so both modes start from a warm page cache.

    python -m benchmarks.bench_scaling                         # N = 1000, 5000, all: ~7 min on 2 cores
    python -m benchmarks.bench_scaling --records 1000 --skip-build
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import REPO_ROOT, print_table, write_results

from ecgnet.errors import ECGNetError

MODES = ("mmap", "memory")


def _records(value: str) -> int | None:
    return None if value == "all" else int(value)


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _pressure() -> dict | None:
    """Linux CPU pressure (PSI): % of the last 10 / 60 s in which a runnable task waited for a CPU."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(f.split("=") for f in line.split()[1:])
    return {"avg10": float(fields["avg10"]), "avg60": float(fields["avg60"])}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended (pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _read_all(paths) -> tuple[int, float]:
    """Read files once (into the page cache); (bytes, seconds)."""
    start, total = time.perf_counter(), 0
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                total += len(block)
    return total, time.perf_counter() - start


# --- 1. the cache build --------------------------------------------------------------------------

def bench_builds(root: Path, sizes: list[int | None], workers: list[int], tmp_dir: str | None) -> list[dict]:
    from ecgnet.data import ptbxl, signals

    filenames = ptbxl.read_database(root)["filename_lr"].to_dict()
    ids = sorted(filenames)
    largest = ids[:max(len(ids) if n is None else n for n in sizes)]
    size, seconds = _read_all(p for e in largest for p in (root / f"{filenames[e]}.hea", root / f"{filenames[e]}.dat"))
    print(f"page cache: read {size / 2**20:,.0f} MiB of {len(largest):,} records in {seconds:.1f} s")
    results = []
    for n in sizes:
        subset = {e: filenames[e] for e in ids[:n]}
        serial_sha = None
        for w in workers:
            with tempfile.TemporaryDirectory(prefix="ecgnet-bench-scaling-", dir=tmp_dir) as tmp:
                array_path, index_path = Path(tmp) / "signals.npy", Path(tmp) / "signals.json"
                start, cpu = time.perf_counter(), _cpu_seconds()
                signals.build_cache(root, subset, 100, array_path, index_path, workers=w)
                wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
                sha = json.loads(index_path.read_text())["integrity"]["sha256"]
                nbytes = array_path.stat().st_size
            serial_sha = serial_sha or (sha if w == 1 else None)
            results.append({"records": len(subset), "workers": w, "seconds": round(wall, 2),
                            "records_per_s": round(len(subset) / wall, 1), "cpu_seconds": round(cpu, 2),
                            "bytes": nbytes,
                            "identical_to_serial": None if serial_sha is None else sha == serial_sha,
                            "load_average_after": _load(), "cpu_pressure_after": _pressure()})
            print(f"build {len(subset):>6,} records, {w} worker(s): {wall:6.1f} s ({cpu:.1f} CPU s); "
                  f"CPU pressure after {results[-1]['cpu_pressure_after']}")
    return results


# --- 2. one epoch, in a fresh process per (N, mode) ---------------------------------------------------

class _AnonPeak:
    """Peak RssAnon of this process, sampled every ``interval`` s in a thread."""

    def __init__(self, interval: float = 0.02):
        self.peak, self.interval, self._stop = 0, interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.status("RssAnon"))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.status("RssAnon"))


def epoch_child(records: int | None, mode: str, config_path: str) -> dict:
    """Runs in its own process: load the split, fit the frontends, one epoch; figures as a dict."""
    import resource

    import lightning as L
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from ecgnet.config import load_config
    from ecgnet.data.dataset import PTBXL, CropDataset
    from ecgnet.data.ptbxl import data_root
    from ecgnet.models import build_model
    from ecgnet.quiet import quiet_dependencies
    from ecgnet.training.fit import fit_frontends
    from ecgnet.training.losses import make_loss
    from ecgnet.training.module import ClassifierModule

    config = load_config(Path(config_path), [f"data.in_memory={str(mode == 'memory').lower()}"])
    t, crop = config.training, config.data.window
    out: dict = {"records_requested": records or "all", "mode": mode, "torch_threads": torch.get_num_threads()}
    with _AnonPeak() as anon:
        start = time.perf_counter()
        data = PTBXL(data_root(None), config.data.task, config.data.sampling_rate, in_memory=config.data.in_memory)
        out["open_seconds"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        train = data.split("train", records, config.seed)
        out["split_seconds"] = round(time.perf_counter() - start, 2)
        out["records"], out["signal_type"] = len(train.ecg_ids), type(train.signal).__name__
        out["anon_after_split_mib"] = round(anon.status("RssAnon") / 2**20)
        L.seed_everything(config.seed, workers=True, verbose=False)
        model = build_model(config.model.name, len(data.classes), **config.model.params)
        start = time.perf_counter()
        fit_frontends(model, train.signal)
        out["fit_frontends_seconds"] = round(time.perf_counter() - start, 2)

        def loader():
            return DataLoader(CropDataset(train, crop), batch_size=t.batch_size, shuffle=True,
                              drop_last=len(train.ecg_ids) > t.batch_size, num_workers=t.num_workers)

        start, cpu = time.perf_counter(), time.process_time()
        for _ in loader():  # the data alone: every crop of an epoch, batched, no model
            pass
        out["data_only_epoch_seconds"] = round(time.perf_counter() - start, 2)
        out["data_only_epoch_cpu_seconds"] = round(time.process_time() - cpu, 2)

        class Timer(L.Callback):
            def on_train_epoch_start(self, *_):
                self.start, self.cpu = time.perf_counter(), time.process_time()

            def on_train_epoch_end(self, *_):
                out["epoch_seconds"] = round(time.perf_counter() - self.start, 2)
                out["epoch_cpu_seconds"] = round(time.process_time() - self.cpu, 2)  # all threads

        module = ClassifierModule(model, config, make_loss(t.loss, train.y, t.focal_gamma))
        quiet_dependencies()
        trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                            num_sanity_val_steps=0, callbacks=[Timer()])
        trainer.fit(module, loader())
        out["loss_is_finite"] = bool(np.isfinite(float(trainer.callback_metrics["train_loss"])))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
    out["peak_anon_mib"] = round(anon.peak / 2**20)
    out["rss_file_end_mib"] = round(_AnonPeak.status("RssFile") / 2**20)
    return out


def bench_epochs(sizes: list[int | None], modes: list[str], config: str, timeout: float) -> list[dict]:
    from ecgnet.data import signals
    from ecgnet.data.ptbxl import data_root

    cache = signals.cache_dir() / f"{signals.cache_key(data_root(None), 100)}.npy"
    if not cache.is_file():
        raise ECGNetError(f"no signal cache at {cache}: train once (or open PTBXL) to build it first")
    size, seconds = _read_all([cache])
    print(f"page cache: read the signal cache ({size / 2**20:,.0f} MiB) in {seconds:.1f} s")
    results = []
    for n in sizes:
        for mode in modes:
            cmd = [sys.executable, "-m", "benchmarks.bench_scaling", "--epoch-child", "all" if n is None else str(n), mode, "--config", config]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
            if done.returncode:
                raise ECGNetError(f"epoch run {n} {mode} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["load_average_after"], result["cpu_pressure_after"] = _load(), _pressure()
            results.append(result)
            print(f"epoch {result['records']:>6,} records, {mode:6}: {result['epoch_seconds']:6.1f} s "
                  f"({result['epoch_cpu_seconds']:.1f} CPU s), "
                  f"peak RSS {result['peak_rss_mib']:,} MiB, peak anonymous {result['peak_anon_mib']:,} MiB; "
                  f"CPU pressure after {result['cpu_pressure_after']}")
    return results


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--records", nargs="+", default=["1000", "5000", "all"],
                   help="record counts to measure; 'all' = every record (default: 1000 5000 all)")
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="build worker counts (default: 1 2)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--config", default=str(REPO_ROOT / "configs" / "baseline_time.yaml"))
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--skip-epoch", action="store_true")
    p.add_argument("--child-timeout", type=float, default=900, help="seconds before an epoch run is killed")
    p.add_argument("--tmp-dir", help="where the temporary caches are built (default: system temp dir)")
    p.add_argument("--output", help="JSON path (default: benchmarks/results/scaling.json)")
    p.add_argument("--epoch-child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.epoch_child:
        print(json.dumps(epoch_child(_records(args.epoch_child[0]), args.epoch_child[1], args.config)))
        return {}

    import torch

    from ecgnet.data.ptbxl import data_root

    sizes = [_records(r) for r in args.records]
    figures: dict = {"load_average_at_start": _load(), "cpu_pressure_at_start": _pressure(), "cpu_count": os.cpu_count(),
                     "torch_threads": torch.get_num_threads()}
    print(f"load average at start: {figures['load_average_at_start']} on {os.cpu_count()} CPUs; "
          f"CPU pressure: {figures['cpu_pressure_at_start']}")
    start = time.perf_counter()
    if not args.skip_build:
        figures["build"] = bench_builds(data_root(None), sizes, args.workers, args.tmp_dir)
        rows = [[f"{b['records']:,}", b["workers"], f"{b['seconds']:.1f}", f"{b['records_per_s']:,.0f}",
                 f"{b['cpu_seconds']:.1f}", f"{b['bytes'] / 2**20:,.0f}", {None: "—", True: "yes", False: "NO"}[b["identical_to_serial"]]]
                for b in figures["build"]]
        print_table(["records", "workers", "seconds", "records/s", "CPU s", "MiB", "= serial"], rows,
                    title="Signal cache build (source files in the page cache)")
    if not args.skip_epoch:
        figures["epoch"] = bench_epochs(sizes, args.modes, args.config, args.child_timeout)
        rows = [[f"{e['records']:,}", e["mode"], f"{e['split_seconds']:.2f}", f"{e['fit_frontends_seconds']:.2f}",
                 f"{e['data_only_epoch_seconds']:.2f}", f"{e['epoch_seconds']:.1f}", f"{e['epoch_cpu_seconds']:.1f}",
                 f"{e['peak_rss_mib']:,}", f"{e['peak_anon_mib']:,}"] for e in figures["epoch"]]
        print_table(["train records", "signals", "split s", "fit s", "data-only s", "epoch s", "epoch CPU s",
                     "peak RSS MiB", "peak anon MiB"], rows, title="One training epoch (baseline, 2.5 s crops, batch 128)")
    figures["total_seconds"] = round(time.perf_counter() - start, 1)
    write_results("scaling", figures, {k: v for k, v in vars(args).items() if k != "epoch_child"},
                  Path(args.output) if args.output else None)
    return figures


if __name__ == "__main__":
    try:
        main()
    except ECGNetError as e:
        sys.exit(f"error: {e}")
