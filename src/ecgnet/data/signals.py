"""PTB-XL's WFDB records → one cached array of the whole dataset for training (single records are
read by :mod:`ecgnet.data.records`).

Reading 21,837 records with wfdb takes minutes, so the first use writes one ``.npy`` file
(records × 12 × samples, float32 mV) plus a JSON index beside it, atomically, keyed by the source
folder, its database table and the sampling rate; later runs memory-map it in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

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
    if not (array_path.is_file() and index_path.is_file()):
        build_cache(root, filenames, sampling_rate, array_path, index_path)
    index = json.loads(index_path.read_text())
    signals = np.load(array_path, mmap_mode="r")
    if signals.shape[0] != len(index["ecg_ids"]):
        raise ECGNetError(f"{array_path}: cache does not match its index; delete it to rebuild")
    return np.asarray(index["ecg_ids"]), signals


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
                                "ecg_ids": [int(i) for i in ids]})
