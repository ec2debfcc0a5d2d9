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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
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


def fit_length(signal: np.ndarray, samples: int) -> np.ndarray:
    """Crop the centre or zero-pad the end so the last axis has ``samples`` samples."""
    n = signal.shape[-1]
    if n >= samples:
        start = (n - samples) // 2
        return signal[..., start:start + samples]
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
                 directory: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ecg_ids, signals memmap of shape n × 12 × samples), building the cache on first use.

    ``filenames`` maps ecg_id → record path relative to ``root`` (``filename_lr`` of the database).
    """
    directory = Path(directory or cache_dir())
    key = cache_key(root, sampling_rate)
    array_path, index_path = directory / f"{key}.npy", directory / f"{key}.json"
    with cache_lock(array_path):
        if not (array_path.is_file() and index_path.is_file()):
            build_cache(root, filenames, sampling_rate, array_path, index_path)
        problem = cheap_check(array_path, index_path)
        if problem:
            warnings.warn(f"{array_path}: {problem}; rebuilding the signal cache", stacklevel=2)
            build_cache(root, filenames, sampling_rate, array_path, index_path)
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
                array_path: Path, index_path: Path) -> None:
    samples = SECONDS * sampling_rate
    ids = sorted(filenames)
    start = time.perf_counter()
    with atomic_path(array_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(ids), 12, samples))
        with Progress(transient=True) as bar:
            task = bar.add_task(f"Caching {len(ids)} PTB-XL records", total=len(ids))
            for i, ecg_id in enumerate(ids):
                out[i] = fit_length(read_record(root / filenames[ecg_id], sampling_rate), samples)
                bar.advance(task)
        out.flush()
        del out
        # The index goes in first: the array's final name is what marks the cache complete.
        write_json(index_path, {"source": str(root.resolve()), "sampling_rate": sampling_rate,
                                "build_seconds": round(time.perf_counter() - start, 1),
                                "integrity": integrity(tmp), "ecg_ids": [int(i) for i in ids]})


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
    arrays = sorted(directory.glob("ptbxl*.npy")) if directory.is_dir() else []
    with Progress(transient=True, disable=not progress) as bar:
        for array_path in arrays:
            task = bar.add_task(f"Hashing {array_path.name}", total=array_path.stat().st_size)
            with cache_lock(array_path):
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
