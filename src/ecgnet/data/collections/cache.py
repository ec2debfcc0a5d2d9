"""The signal cache of a manifest's records: one ``.npy`` (records × 12 × samples, float32 mV, each
record resampled to the config's rate, its centre 10 s — a shorter one repeated to 10 s, its own length kept in
the index (``lengths``), so that training crops and scoring windows stay within the record as ``predict`` scores
it; under 2.5 s refused, as ``predict`` refuses it) and a JSON index beside it, memory-mapped on every later use.
A record over 10 s also has all of it kept, as the consecutive 10 s segments ``predict`` scores it in
(:func:`ecgnet.data.signals.segment_starts`), in a second array (``<key>.segments.npy``, with an index of its
own): training draws one of them each time the record is drawn, and scoring averages over them
(:class:`~ecgnet.data.dataset.Segments`, which also carries the short records' lengths). The machinery is
PTB-XL's cache's (:mod:`ecgnet.data.signals`): the same atomic write, file lock, size + sampled SHA-256 check on
open (a damaged cache is rebuilt with a warning) and full check by ``ecgnet data verify --cache``.

The key covers the sampling rate and every record's resolved path, size and modification time, so
editing, adding or replacing a record builds a new cache. Records are read in a pool of processes
(``workers``; default up to 4, one per 500 records), each writing its rows straight into the
temporary ``.npy``. A record that cannot be read stops the build with one error naming it and its
manifest line, or with ``skip_bad`` is listed in the index as bad (its row stays zeros) and left out
of the collection. The age and sex the reader found in each record's file (a header's ``# Age: 63``, an XML's
patient fields) are kept in the index (``demographics``: {row: [age, sex]}, only rows with either): what
``predict`` and ``evaluate`` feed a metadata model where the manifest gives none, and so what training fills
the manifest's empty cells with (:meth:`~ecgnet.data.collections.base.Collection.load_signals`).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from rich.progress import Progress

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.readers import read_ecg_any
from ecgnet.data.records import RESAMPLER, ECGRecord, header_path, read_ecg
from ecgnet.data.dataset import Segments
from ecgnet.data.signals import (SECONDS, cache_dir, cache_lock, cheap_check, fit_length, integrity, resolve_workers,
                                 segment_starts)
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, write_json
from ecgnet.oserrors import MACHINE_ERRNOS

MIN_SECONDS = 2.5  # the shipped models' window: shorter records are refused (predict refuses them too)
# how a record fills its row (in the key: caches of zero-padded rows, without segments, without the short records'
# lengths or without the files' age and sex are not reused — a cache of an older layout is left as it is and a new
# one built)
LAYOUT = "repeat+segments+warnings+lengths+demographics"
# what a worker returns, by row: unreadable, untrusted amplitudes, other warnings, segments, own lengths, age and sex
PARTS = ("bad", "untrusted", "warnings", "segments", "lengths", "demographics")


def read_checked(path: str | Path, sampling_rate: int, limits: ReadLimits = DEFAULT_LIMITS) -> ECGRecord:
    """One record of any format the project reads, at ``sampling_rate`` (no per-lead quality flags), refused
    when it declares more than ``limits`` allow; its amplitude checks as ``predict`` makes them."""
    if not _is_wfdb(Path(path)):
        return read_ecg_any(path, sampling_rate=sampling_rate, resample=True, limits=limits)
    return read_ecg(path, sampling_rate, resample=True, limits=limits, quality=False)


def read_signal(path: str | Path, sampling_rate: int, limits: ReadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """The (12, samples) float32 mV signal of :func:`read_checked`."""
    return read_checked(path, sampling_rate, limits).signal


def read_long_enough(path: str | Path, sampling_rate: int, limits: ReadLimits = DEFAULT_LIMITS) -> ECGRecord:
    """:func:`read_checked`, refused under :data:`MIN_SECONDS` — what ``predict`` refuses, never trained on."""
    record = read_checked(path, sampling_rate, limits)
    signal = record.signal
    if signal.shape[-1] < MIN_SECONDS * sampling_rate:
        raise ECGNetError(f"{path}: {signal.shape[-1] / sampling_rate:.1f} s of signal; a record needs at least "
                          f"{MIN_SECONDS:g} s (the models' window), as predict does")
    return record


def _is_wfdb(path: Path) -> bool:
    return path.suffix.lower() in ("", ".hea", ".dat", ".mat") or not path.is_file()


def record_exists(path: Path) -> bool:
    """A file, or a WFDB record name whose header exists."""
    return path.is_file() or header_path(path).is_file()


def cache_key(paths: list[Path], sampling_rate: int, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    h = hashlib.sha256(f"{sampling_rate}|{SECONDS}|{LAYOUT}|{RESAMPLER}|untrusted".encode())
    if limits != DEFAULT_LIMITS:  # other limits may read records the defaults refuse (or the reverse)
        h.update(f"|{limits}".encode())
    for p in paths:
        target = p if p.is_file() else header_path(p)
        try:
            st = target.stat()
            h.update(f"|{target.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"|{p}|missing".encode())
    return f"manifest{sampling_rate}_{h.hexdigest()[:16]}"


def load_manifest_signals(paths: list[Path], labels: list[str], sampling_rate: int, directory=None,
                          workers: int | None = None, progress: bool = True,
                          skip_bad: bool | None = None, limits: ReadLimits = DEFAULT_LIMITS
                          ) -> tuple[np.ndarray, np.ndarray, dict[int, str], dict[int, str], Segments | None,
                                     dict[int, str], dict[int, tuple[float | None, str | None]]]:
    """(signals memmap, row of each record, {record index: why} of unreadable records, {record index: the
    reader's amplitude warnings} of records whose amplitudes predict would not trust, the segments of records over
    10 s and the lengths of those under — None when every record is 10 s or more and none over —, {record index:
    the reader's warnings} of the other records it warned about, {record index: (age, sex)} as the reader found
    them in the record's file — age in years or None, sex 'male' / 'female' or None —, records with either only).

    ``labels`` name each record in messages (e.g. "M.csv line 7 (record x)"); ``limits`` bound what each
    record may declare (a record over them is unreadable)."""
    directory = Path(directory or cache_dir())
    key = cache_key(paths, sampling_rate, limits)
    array_path, index_path = directory / f"{key}.npy", directory / f"{key}.json"
    with cache_lock(array_path):
        if not (array_path.is_file() and index_path.is_file()):
            build(paths, labels, sampling_rate, array_path, index_path, workers, progress, limits)
        problem = cheap_check(array_path, index_path)
        index = None if problem else json.loads(index_path.read_text())
        problem = problem or _segments_problem(index, array_path)
        if problem:
            warnings.warn(f"{array_path}: {problem}; rebuilding the signal cache", stacklevel=2)
            build(paths, labels, sampling_rate, array_path, index_path, workers, progress, limits)
            index = json.loads(index_path.read_text())
        signals = np.load(array_path, mmap_mode="r")
        segments = _open_segments(index, array_path, len(paths), signals.shape[-1])
    if signals.shape[0] != len(paths) or len(index["ecg_ids"]) != len(paths):
        raise ECGNetError(f"{array_path}: cache does not match its index; delete it to rebuild")
    bad = {int(i): why for i, why in index.get("bad", {}).items()}
    untrusted = {int(i): why for i, why in index.get("untrusted", {}).items()}
    warned = {int(i): why for i, why in index.get("warnings", {}).items()}
    demographics = {int(i): (age, sex) for i, (age, sex) in index.get("demographics", {}).items()}
    if bad and not skip_bad:
        lines = [f"{why}" for _, why in sorted(bad.items())]
        more = f"\n… and {len(lines) - 20} more" if len(lines) > 20 else ""
        hint = " (pass --skip-bad to leave them out)" if skip_bad is False else ""  # None: the command has no such option
        raise ECGNetError(f"{len(bad)} record(s) cannot be read{hint}:\n"
                          + "\n".join(lines[:20]) + more)
    return signals, np.arange(len(paths)), bad, untrusted, segments, warned, demographics


def _segments_path(array_path: Path) -> Path:
    return array_path.with_name(array_path.stem + ".segments.npy")


def _segments_problem(index: dict, array_path: Path) -> str | None:
    """What is wrong with the segments array the (sound) index names (None: nothing, or no segments)."""
    if not index.get("segments"):
        return None
    path = _segments_path(array_path)
    problem = cheap_check(path, path.with_suffix(".json"))
    return None if problem is None else f"segments: {problem}"


def _open_segments(index: dict, array_path: Path, n: int, samples: int) -> Segments | None:
    """The segments of the records over 10 s and the lengths of those under (None: every row is its record)."""
    rows, lengths = index.get("segments"), index.get("lengths")
    if not rows and not lengths:
        return None
    first, count = np.zeros(n, np.intp), np.zeros(n, np.intp)
    for i, (f, c) in (rows or {}).items():
        first[int(i)], count[int(i)] = f, c
    length = None
    if lengths:
        length = np.full(n, samples, np.intp)
        for i, own in lengths.items():
            length[int(i)] = own
    array = np.load(_segments_path(array_path), mmap_mode="r") if rows else np.zeros((0, 12, samples), np.float32)
    return Segments(array, first, count, length)


def build(paths: list[Path], labels: list[str], sampling_rate: int, array_path: Path, index_path: Path,
          workers: int | None = None, progress: bool = True, limits: ReadLimits = DEFAULT_LIMITS) -> None:
    """Read every record into ``array_path``; unreadable ones are recorded as bad in the index."""
    samples = SECONDS * sampling_rate
    n_workers = resolve_workers(workers, len(paths))
    start = time.perf_counter()
    with atomic_path(array_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(paths), 12, samples))
        out.flush()
        del out
        jobs = [(str(p), lab) for p, lab in zip(paths, labels)]
        found: dict[str, dict] = {name: {} for name in PARTS}
        description = f"Caching {len(paths)} records at {sampling_rate} Hz"
        try:
            with Progress(transient=True, disable=not progress) as bar:
                task = bar.add_task(description + (f" ({n_workers} processes)" if n_workers > 1 else ""),
                                    total=len(paths))
                if n_workers == 1:
                    for i in range(0, len(jobs), 64):
                        _merge(found, _rows(str(tmp), i, jobs[i:i + 64], sampling_rate, samples, limits))
                        bar.advance(task, len(jobs[i:i + 64]))
                else:
                    found = _parallel(str(tmp), jobs, sampling_rate, samples, n_workers,
                                      lambda n: bar.advance(task, n), limits)
            np.load(tmp, mmap_mode="r+").flush()
            rows = _write_segments(tmp, _segments_path(array_path), found["segments"], paths, samples)
        finally:
            for part in tmp.parent.glob(tmp.name + ".seg*.tmp"):
                part.unlink(missing_ok=True)
        write_json(index_path, {"source": "manifest", "sampling_rate": sampling_rate,
                                "build_seconds": round(time.perf_counter() - start, 1),
                                "workers": n_workers, "integrity": integrity(tmp),
                                "ecg_ids": [str(p) for p in paths],
                                **{name: _by_row(found[name]) for name in ("bad", "untrusted", "warnings")},
                                "segments": rows, "lengths": _by_row(found["lengths"]),
                                "demographics": _by_row(found["demographics"])})
    if progress:  # a copy of the records' signals, paths, age and sex: said once, where it is and how to remove it
        from rich.console import Console

        Console(stderr=True).print(f"cached {len(paths)} records' signals in {array_path.parent} (`ecgnet data cache` "
                                   "lists and removes them; ECGNET_CACHE sets the folder)", highlight=False,
                                   markup=False, soft_wrap=True)


def _merge(found: dict[str, dict], part: tuple[dict, ...]) -> None:
    """A worker's :func:`_rows` (one {row: value} per name of :data:`PARTS`) added to ``found``."""
    for name, values in zip(PARTS, part, strict=True):
        found[name].update(values)


def _by_row(values: dict[int, object]) -> dict[str, object]:
    """{row: value} as the index writes it: rows as text, in order."""
    return {str(k): v for k, v in sorted(values.items())}


def _write_segments(tmp: Path, path: Path, counts: dict[int, int], paths: list[Path], samples: int) -> dict:
    """The workers' segment parts (``<tmp>.seg<first row>.tmp``, raw float32 rows in record order) joined into
    ``path`` with its index; returns {record index: [first segment row, count]} (empty: no record over 10 s)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)
    if not counts:
        return {}
    rows, first = {}, 0
    for i in sorted(counts):
        rows[str(i)] = [first, counts[i]]
        first += counts[i]
    with atomic_path(path) as seg_tmp:
        out = np.lib.format.open_memmap(seg_tmp, mode="w+", dtype=np.float32, shape=(first, 12, samples))
        at = 0
        for part in sorted(tmp.parent.glob(tmp.name + ".seg*.tmp"),
                           key=lambda p: int(p.name.rsplit(".seg", 1)[1].removesuffix(".tmp"))):
            block = np.memmap(part, dtype=np.float32, mode="r").reshape(-1, 12, samples)
            for i in range(0, len(block), 256):  # a part may hold gigabytes: copied a little at a time
                piece = block[i:i + 256]
                out[at + i:at + i + len(piece)] = piece
            at += len(block)
            del block
        out.flush()
        del out
        if at != first:  # a part shorter than its records' counts would shift every later record's segments
            raise ECGNetError(f"building the signal cache failed: {at} segments written, {first} expected")
        write_json(path.with_suffix(".json"), {"source": "manifest segments", "of": path.name.replace(".segments", ""),
                                               "integrity": integrity(seg_tmp),
                                               "ecg_ids": [str(paths[i]) for i in sorted(counts)]})  # records, once
    return rows


def _rows(tmp: str, first: int, jobs: list[tuple[str, str]], sampling_rate: int, samples: int,
          limits: ReadLimits = DEFAULT_LIMITS
          ) -> tuple[dict[int, str], dict[int, str], dict[int, str], dict[int, int], dict[int, int], dict[int, list]]:
    """A worker's part: records into rows ``first``…, and the 10 s segments of those over 10 s appended to
    ``<tmp>.seg<first>.tmp``; returns ({row: why} of those it could not read, {row: the reader's warnings} of those
    whose amplitudes are not trusted, {row: the reader's warnings} of the others it warned about, {row: segments}
    of those over 10 s, {row: own samples} of those under 10 s, {row: [age, sex]} of those whose file gave
    either) — one dict per name of :data:`PARTS`."""
    out = np.load(tmp, mmap_mode="r+")
    bad, untrusted, warned, long, short, demographics = {}, {}, {}, {}, {}, {}
    part = Path(f"{tmp}.seg{first}.tmp")  # a leftover is a .tmp file, as every other half-written file
    for j, (path, label) in enumerate(jobs):
        try:
            record = read_long_enough(path, sampling_rate, limits)
            out[first + j] = fit_length(record.signal, samples, short="repeat")
            if record.signal.shape[-1] > samples:
                long[first + j] = _append_segments(part, record.signal, samples, sampling_rate)
            elif record.signal.shape[-1] < samples:  # repeated to fill its row: how much of it is the record
                short[first + j] = int(record.signal.shape[-1])
            if not record.amplitude_trusted:
                untrusted[first + j] = f"{label}: {'; '.join(record.warnings) or 'amplitudes not trusted'}"
            elif record.warnings:  # conflicting rates, an age the dates contradict: said as predict says them
                warned[first + j] = f"{label}: {'; '.join(record.warnings)}"
            if (found := file_demographics(record)) is not None:
                demographics[first + j] = found
        except ECGNetError as e:
            bad[first + j] = f"{label}: {e}"
        except Exception as e:  # noqa: BLE001 — whatever a reader raises, reported against the record
            if isinstance(e, OSError) and e.errno in MACHINE_ERRNOS:  # a full disk writing the cache: not the record's
                raise
            bad[first + j] = f"{label}: {path}: cannot be read ({type(e).__name__}: {e})"
    del out  # no flush per chunk: the mapping is shared; the parent flushes once
    return bad, untrusted, warned, long, short, demographics


def file_demographics(record: ECGRecord) -> list | None:
    """[age, sex] as the reader found them in the record's file (age in years or None, sex 'male' / 'female' or
    None) — what ``predict`` feeds a metadata model where it is given none; None when the file gave neither."""
    if record.age is None and record.sex is None:
        return None
    return [None if record.age is None else float(record.age), record.sex]


def _append_segments(part: Path, signal: np.ndarray, samples: int, sampling_rate: int) -> int:
    """A record's 10 s segments appended to ``part`` (all or none); returns how many."""
    starts = segment_starts(signal.shape[-1], sampling_rate)
    block = np.stack([signal[:, s:s + samples] for s in starts]).astype(np.float32)
    with part.open("ab") as f:
        at = f.tell()
        try:
            f.write(block.tobytes())
        except BaseException:
            f.truncate(at)
            raise
    return len(starts)


def _parallel(tmp: str, jobs, sampling_rate: int, samples: int, workers: int, advance,
              limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, dict]:
    """:func:`_rows` over ``jobs`` in a pool of ``workers`` processes; returns {name of :data:`PARTS`: {row: value}}
    of every record."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    chunk = max(16, min(256, math.ceil(len(jobs) / (workers * 8))))
    found: dict[str, dict] = {name: {} for name in PARTS}
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    try:
        futures = {pool.submit(_rows, tmp, i, jobs[i:i + chunk], sampling_rate, samples, limits): len(jobs[i:i + chunk])
                   for i in range(0, len(jobs), chunk)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                if f.exception() is not None:
                    raise ECGNetError(f"building the signal cache failed: {type(f.exception()).__name__}: "
                                      f"{f.exception()}")
                _merge(found, f.result())
                advance(futures[f])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return found
