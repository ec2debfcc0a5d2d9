"""PTB-XL's WFDB records → one cached array of the whole dataset for training (single records are
read by :mod:`ecgnet.data.records`).

Reading 21,837 records with wfdb takes minutes, so the first use writes one ``.npy`` file
(records × 12 × samples, float32 mV) plus a JSON index beside it, atomically, keyed by the source
folder, its database table and the sampling rate; later runs memory-map it in milliseconds.

Integrity: the index records the array's size, its SHA-256 and a SHA-256 of a sample of its chunks
(:mod:`ecgnet.checksum`). Each open checks the size and the sample (milliseconds) and rebuilds a cache
that fails, with a warning; ``ecgnet data verify --cache`` checks every byte (about 1 s per GB). An
index written before these checksums gets them on its first open (they vouch for the cache as found).
Building and opening hold a file lock (``<key>.lock`` beside the cache), so two processes asking for
the same cache at once build it once; the other waits and opens the finished cache.

The build reads records in a pool of processes (``workers``; by default up to 4, fewer for a small
build), each writing its rows straight into the temporary ``.npy`` (a shared memory map): the result is
byte for byte that of a serial build, and a record that cannot be read stops the build with one
:class:`ECGNetError` naming it, leaving no cache behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock
from rich.progress import Progress

from ecgnet.checksum import sampled_sha256, sha256_file
from ecgnet.data.records import LEADS, read_record, resample_signal  # noqa: F401  (re-exported)
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, write_json

SAMPLING_RATE = 100
SECONDS = 10
CACHE_ENV = "ECGNET_CACHE"
MAX_DEFAULT_WORKERS = 4
MIN_RECORDS_PER_WORKER = 500  # below this, starting a process costs more than it saves (~1 s each)


def window_starts(samples: int, window: int, stride: int) -> list[int]:
    """Window starts covering the whole record; the last window ends at the record's end (a model's windows:
    :mod:`ecgnet.models.windows`; the 10 s segments: :func:`segment_starts`)."""
    if window >= samples:
        return [0]
    starts = list(range(0, samples - window + 1, stride))
    if starts[-1] != samples - window:
        starts.append(samples - window)
    return starts


def segment_starts(samples: int, rate: int) -> list[int]:
    """Starts of the consecutive 10 s segments that cover a record of ``samples`` samples at ``rate`` Hz, the last
    one ending at the record's end (``[0]`` for a record of up to 10 s): how ``predict`` scores a longer record
    (:mod:`ecgnet.inference.windows`) and how a manifest's cache keeps it (:mod:`ecgnet.data.collections.cache`)."""
    return window_starts(samples, SECONDS * rate, SECONDS * rate)


def fit_length(signal: np.ndarray, samples: int, short: str = "pad") -> np.ndarray:
    """Crop the centre so the last axis has ``samples`` samples; a shorter signal is zero-padded at the end
    (``short="pad"``) or repeated (``"repeat"``: every training crop and evaluation window is then the
    record's own ECG, a window across the join aside — zeros with its labels taught the model that a flat
    line is its diagnosis, and scored padding as a window: an all-zero window scores CD 0.96)."""
    n = signal.shape[-1]
    if n >= samples:
        start = (n - samples) // 2
        return signal[..., start:start + samples]
    if short == "repeat" and n > 0:
        return np.concatenate([signal] * math.ceil(samples / n), axis=-1)[..., :samples]
    return np.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, samples - n)])


# --- the dataset cache ------------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "ecgnet")).expanduser()


def cache_key(root: Path, sampling_rate: int) -> str:
    """Changes whenever the folder, its database table or the sampling rate changes."""
    db = root / "ptbxl_database.csv"
    stat = db.stat()
    ident = f"{root.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{sampling_rate}"
    return f"ptbxl{sampling_rate}_" + hashlib.sha256(ident.encode()).hexdigest()[:12]


def load_signals(root: Path, filenames: dict[int, str], sampling_rate: int = SAMPLING_RATE,
                 directory: Path | None = None, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ecg_ids, signals memmap of shape n × 12 × samples), building the cache on first use.

    ``filenames`` maps ecg_id → record path relative to ``root`` (``filename_lr`` of the database);
    ``workers``: processes that build it (see :func:`build_cache`).
    """
    directory = Path(directory or cache_dir())
    key = cache_key(root, sampling_rate)
    array_path, index_path = directory / f"{key}.npy", directory / f"{key}.json"
    with cache_lock(array_path):
        if not (array_path.is_file() and index_path.is_file()):
            build_cache(root, filenames, sampling_rate, array_path, index_path, workers)
        problem = cheap_check(array_path, index_path)
        if problem:
            warnings.warn(f"{array_path}: {problem}; rebuilding the signal cache", stacklevel=2)
            build_cache(root, filenames, sampling_rate, array_path, index_path, workers)
        index = json.loads(index_path.read_text())
        signals = np.load(array_path, mmap_mode="r")
    if signals.shape[0] != len(index["ecg_ids"]):
        raise ECGNetError(f"{array_path}: cache does not match its index; delete it to rebuild")
    return np.asarray(index["ecg_ids"]), signals


def cache_lock(array_path: Path):
    """The lock that building and opening ``array_path`` hold; none in a folder this user cannot write
    (a read-only shared cache, which nobody can build into either)."""
    array_path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(array_path.parent, os.W_OK):
        return contextlib.nullcontext()
    return FileLock(array_path.with_suffix(".lock"))


def integrity(array_path: Path) -> dict:
    """What the index records to check the array later: size, full and sampled SHA-256."""
    return {"bytes": array_path.stat().st_size, "sha256": sha256_file(array_path),
            "sampled_sha256": sampled_sha256(array_path)}


def cheap_check(array_path: Path, index_path: Path) -> str | None:
    """What is wrong with the cache by its size and sampled checksum (None: nothing seen). An index
    without checksums (written before them) is given them now, when its folder is writable."""
    try:
        index = json.loads(index_path.read_text())
        ids, expected = index["ecg_ids"], index.get("integrity")
        header = _npy_shape(array_path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable cache or index ({type(e).__name__}: {' '.join(str(e).split())})"
    if expected is None:
        if header is None or header[0] != len(ids):
            return "the array does not match its index"
        with contextlib.suppress(OSError):
            write_json(index_path, {**index, "integrity": integrity(array_path)})
        return None
    size = array_path.stat().st_size
    if size != expected["bytes"]:
        return f"{size} bytes, the index says {expected['bytes']} (truncated or extended)"
    if sampled_sha256(array_path) != expected["sampled_sha256"]:
        return "its sampled checksum does not match the index (bit rot or an overwritten cache)"
    return None


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The shape in a .npy header, if the file holds every byte it announces."""
    with open(path, "rb") as f:
        fmt = np.lib.format
        read_header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
        need = f.tell() + int(np.prod(shape)) * dtype.itemsize
    return shape if path.stat().st_size == need else None


def build_cache(root: Path, filenames: dict[int, str], sampling_rate: int,
                array_path: Path, index_path: Path, workers: int | None = None) -> None:
    """Read every record of ``filenames`` (ecg_id order) into ``array_path`` and write its index.

    ``workers``: processes reading records (1: this process only). None: ``min(4, CPUs)``, but no more
    than one per ``MIN_RECORDS_PER_WORKER`` records (a tiny build stays in this process). Each worker
    opens the temporary ``.npy`` read-write and fills its rows; the file is renamed into place only once
    all are written, so a failure leaves nothing.
    """
    samples = SECONDS * sampling_rate
    ids = sorted(filenames)
    n_workers = resolve_workers(workers, len(ids))
    start = time.perf_counter()
    with atomic_path(array_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(ids), 12, samples))
        if n_workers > 1:
            out.flush()  # the header and the file's full size, before the workers map it
            _build_in_parallel(tmp, root, [(e, filenames[e]) for e in ids], sampling_rate, samples, n_workers)
        else:
            with Progress(transient=True) as bar:
                task = bar.add_task(f"Caching {len(ids)} PTB-XL records", total=len(ids))
                for i, ecg_id in enumerate(ids):
                    out[i] = _cache_row(root, ecg_id, filenames[ecg_id], sampling_rate, samples)
                    bar.advance(task)
        out.flush()
        del out
        # The index goes in first: the array's final name is what marks the cache complete.
        write_json(index_path, {"source": str(root.resolve()), "sampling_rate": sampling_rate,
                                "build_seconds": round(time.perf_counter() - start, 1),
                                "integrity": integrity(tmp), "ecg_ids": [int(i) for i in ids]})


def resolve_workers(workers: int | None, records: int) -> int:
    """How many processes build a cache of ``records`` records (see :func:`build_cache`)."""
    if workers is None:
        workers = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1, max(1, records // MIN_RECORDS_PER_WORKER))
    elif workers < 1:
        raise ECGNetError(f"workers must be at least 1, got {workers}")
    return max(1, min(workers, records))


def _cache_row(root: Path, ecg_id: int, filename: str, sampling_rate: int, samples: int) -> np.ndarray:
    """One record as a cache row; any failure is an ECGNetError naming the record."""
    path = root / filename
    try:
        return fit_length(read_record(path, sampling_rate), samples)
    except ECGNetError as e:  # already names the file
        raise ECGNetError(f"PTB-XL ecg_id {ecg_id}: {e}") from None
    except Exception as e:  # noqa: BLE001 — whatever wfdb raises, reported against the record
        raise ECGNetError(f"PTB-XL ecg_id {ecg_id}: {path}: cannot be read ({type(e).__name__}: {e})") from None


def _cache_rows(tmp: str, first_row: int, records: list[tuple[int, str]], root: str, sampling_rate: int,
                samples: int) -> int:
    """A worker's part of the build: ``records`` into rows ``first_row``… of the temporary ``.npy``."""
    out = np.load(tmp, mmap_mode="r+")
    for j, (ecg_id, filename) in enumerate(records):
        out[first_row + j] = _cache_row(Path(root), ecg_id, filename, sampling_rate, samples)
    # No flush here: the mapping is shared, so the rows are in the page cache for every process at
    # once; a flush (msync) would write the whole file to disk after every chunk. The parent's final
    # flush does it once.
    del out
    return len(records)


def _build_in_parallel(tmp: Path, root: Path, records: list[tuple[int, str]], sampling_rate: int,
                       samples: int, workers: int) -> None:
    """Fill the rows of ``tmp`` with ``workers`` processes; the first failure cancels what has not
    started and is raised as one ECGNetError once the running chunks have stopped writing.

    On Linux the workers are forked, all at once before the progress bar starts its thread: nothing
    is imported again and no script is re-run (``spawn`` would run an unguarded ``__main__`` again in
    each worker); they only read files and write numpy rows. Elsewhere they are spawned."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    chunk = max(16, min(64, math.ceil(len(records) / (workers * 8))))  # small: Ctrl-C waits for one
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    futures = {}
    try:
        for i in range(0, len(records), chunk):  # the first submit starts every forked worker
            part = records[i:i + chunk]
            futures[pool.submit(_cache_rows, str(tmp), i, part, str(root), sampling_rate, samples)] = part
        with Progress(transient=True) as bar:
            task = bar.add_task(f"Caching {len(records)} PTB-XL records ({workers} processes)", total=len(records))
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    raise _first_failure(failed, futures)
                bar.advance(task, sum(f.result() for f in done))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # nobody writes into tmp once it is removed


def _first_failure(failed, futures) -> ECGNetError:
    """The error of the earliest failed chunk, as one ECGNetError naming the record."""
    future = min(failed, key=lambda f: futures[f][0][0])
    e = future.exception()
    if isinstance(e, ECGNetError):
        return e
    part = futures[future]
    if isinstance(e, BrokenProcessPool):
        return ECGNetError(f"a process building the signal cache died while reading PTB-XL ecg_id "
                           f"{part[0][0]}–{part[-1][0]} (out of memory?): {e}")
    return ECGNetError(f"building the signal cache failed on PTB-XL ecg_id {part[0][0]}–{part[-1][0]}: "
                       f"{type(e).__name__}: {e}")


# --- the full check (ecgnet data verify --cache) ---------------------------------------------------

@dataclass
class CacheReport:
    """Every signal cache of a folder, checked byte for byte against its index."""

    directory: Path
    good: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # array file name → what is wrong

    @property
    def ok(self) -> bool:
        return not self.damaged

    def summary(self) -> str:
        lines = [f"{self.directory}: {len(self.good)} signal cache(s) OK, {len(self.damaged)} damaged"]
        lines += [f"  damaged: {name} — {why}" for name, why in self.damaged.items()]
        if self.damaged:
            lines.append("  delete a damaged .npy and its .json: the next run that needs it rebuilds it")
        return "\n".join(lines)


def verify_caches(directory: Path | None = None, progress: bool = True) -> CacheReport:
    """Hash every ``.npy`` cache in ``directory`` (default ``$ECGNET_CACHE``) and compare with its index."""
    directory = Path(directory or cache_dir())
    report = CacheReport(directory)
    arrays = sorted([*directory.glob("ptbxl*.npy"), *directory.glob("manifest*.npy")]) if directory.is_dir() else []
    with Progress(transient=True, disable=not progress) as bar:
        for array_path in arrays:
            owner = array_path.with_name(array_path.name.replace(".segments.npy", ".npy"))  # a manifest's segments
            with cache_lock(owner):  # the lock its build holds
                if not array_path.is_file():  # removed by a rebuild since the listing
                    continue
                task = bar.add_task(f"Hashing {array_path.name}", total=array_path.stat().st_size)
                report_one(array_path, report, lambda n: bar.advance(task, n))
    return report


def report_one(array_path: Path, report: CacheReport, progress=None) -> None:
    index_path = array_path.with_suffix(".json")
    problem = cheap_check(array_path, index_path) if index_path.is_file() else "no index beside it"
    if problem is None:
        expected = json.loads(index_path.read_text())["integrity"]["sha256"]
        if sha256_file(array_path, progress) != expected:
            problem = "its SHA-256 does not match the index (bit rot or an overwritten cache)"
    if problem:
        report.damaged[array_path.name] = problem
    else:
        report.good.append(array_path.name)
