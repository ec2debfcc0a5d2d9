"""What the signal cache holds, and removing it (``ecgnet data cache``).

Training, cross-validation, ``evaluate --manifest`` and ``calibrate`` copy the signals of the records they read
into ``$ECGNET_CACHE`` (default ``~/.cache/ecgnet``; :func:`ecgnet.data.signals.cache_dir`) — resampled arrays,
plus an index naming each record's path and, for a manifest, the age and sex read from its files. For a hospital's
records that is a copy of patient data: this module lists each cache (what it was built from, how many records,
its size) and removes one or all, under the lock that building and opening hold, so a cache in use by another
process is never cut from under it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ecgnet.data.signals import cache_dir, cache_lock
from ecgnet.errors import ECGNetError

# a cache's key as signals.cache_key and collections.cache.cache_key write it: ptbxl100_<12 hex>, manifest500_<16 hex>
KEY = re.compile(r"(?:ptbxl|manifest)\d+_[0-9a-f]{12,16}")


@dataclass(frozen=True)
class CacheEntry:
    key: str  # the file stem, e.g. manifest100_199ed87db435bf43
    files: tuple[Path, ...]  # the array, its index, segments and lock
    records: int | None  # None: its index is unreadable
    built_from: str  # PTB-XL's folder, or the folder holding a manifest's records
    size: int  # bytes on disk
    modified: dt.datetime


def list_caches(directory: Path | None = None) -> list[CacheEntry]:
    """Every signal cache in ``directory`` (default ``$ECGNET_CACHE``), newest first — with what a killed build
    left (its hidden partial files, segments without their array): copies of signals too."""
    directory = Path(directory or cache_dir())
    if not directory.is_dir():
        return []
    keys = sorted({key for p in directory.iterdir() if p.is_file() and (key := _key(p.name))})
    entries = []
    for key in keys:
        files = _files(directory, key)
        if not any(p.suffix != ".lock" for p in files):
            continue  # a lock alone: nothing cached
        index = directory / f"{key}.json"
        records, built_from = _describe(index) if index.is_file() else (None, "(no index: a build cut off)")
        entries.append(CacheEntry(key, files, records, built_from, sum(p.stat().st_size for p in files),
                                  dt.datetime.fromtimestamp(max(p.stat().st_mtime for p in files))))
    return sorted(entries, key=lambda e: e.modified, reverse=True)


def _key(name: str) -> str | None:
    """The cache a file belongs to — ``manifest100_ab12….npy``, ``.manifest100_ab12….npy.x1y2.tmp`` (a partial
    write) and ``manifest100_ab12….segments.json`` are all ``manifest100_ab12…`` — or None for any other file (a
    user's manifest.csv, PTB-XL's ptbxl_database.csv where ECGNET_CACHE is the data folder: never touched)."""
    found = KEY.match(name.lstrip(".")) if "." in name else None
    rest = name.lstrip(".")[found.end():] if found else ""
    return found.group(0) if found and rest.startswith(".") else None


def _files(directory: Path, key: str) -> tuple[Path, ...]:
    return tuple(sorted(p for pattern in (f"{key}.*", f".{key}.*") for p in directory.glob(pattern)
                        if p.is_file() and _key(p.name) == key))


def _describe(index: Path) -> tuple[int | None, str]:
    """(records, what the cache was built from) as its index says: PTB-XL's folder, or the common folder of a
    manifest's records."""
    try:
        info = json.loads(index.read_text())
        ids = info["ecg_ids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "(index unreadable)"
    if info.get("source") != "manifest":
        return len(ids), str(info.get("source"))
    paths = [str(i) for i in ids if os.path.isabs(str(i))]
    try:
        common = os.path.commonpath(paths) if paths else ""
    except ValueError:  # paths on different drives
        common = ""
    return len(ids), f"records under {common}" if common else "a manifest's records"


def remove_caches(entries: list[CacheEntry], directory: Path | None = None, waiting=None) -> int:
    """Remove these caches' files, each under the lock its build and readers hold (listed again once it is held:
    a build may have written more meanwhile); the bytes freed. ``waiting(key)`` is called when another process
    holds a cache's lock, before waiting for it."""
    from filelock import Timeout

    directory = Path(directory or cache_dir())
    freed = 0
    for entry in entries:
        lock = cache_lock(directory / f"{entry.key}.npy")
        if hasattr(lock, "acquire"):
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if waiting is not None:
                    waiting(entry.key)
                lock.acquire()
        try:
            for path in _files(directory, entry.key):
                if path.suffix != ".lock":
                    freed += path.stat().st_size
                    path.unlink(missing_ok=True)  # the empty lock stays: another process may be waiting on it
        finally:
            if hasattr(lock, "release"):
                lock.release()
    return freed


def select(entries: list[CacheEntry], keys: list[str]) -> list[CacheEntry]:
    """The entries named by ``keys`` (a key, or a unique start of one); an unknown key is an error."""
    chosen = []
    for key in keys:
        found = [e for e in entries if e.key == key] or [e for e in entries if e.key.startswith(key)]
        if len(found) != 1:
            said = "no cache" if not found else f"{len(found)} caches"
            raise ECGNetError(f"data cache --remove {key}: {said} of that name in {cache_dir()} "
                              "(`ecgnet data cache` lists them)")
        chosen.append(found[0])
    return chosen


def human(size: int) -> str:
    """Bytes as a person reads them: '4.2 MB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"

