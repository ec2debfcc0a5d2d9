"""A record's fingerprint: a SHA-256 over the SHA-256 of each file that holds its signal — a WFDB record's
signal files (as its header names them), any other format's file — so the same ECG is known under another name,
in another folder or in a copied manifest; and the total size of those files, which is what is compared first
(only a record of a size some trained record has is hashed). What ``RUN/trained_on.txt`` keeps beside each
record's path, and what ``evaluate`` and ``calibrate`` compare a manifest's records with to say that their
figures are in-sample. Digests are kept per file state (path, size, modification time): the k folds of a
cross-validation hash each record once."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ecgnet.checksum import sha256_file
from ecgnet.data.records import header_path
from ecgnet.data.wfdb_header import read_header_bytes, signal_files
from ecgnet.errors import ECGNetError

WFDB_SUFFIXES = (".hea", ".dat", ".mat", "")


def _files(path: Path) -> list[Path]:
    header = header_path(path)
    if path.suffix.lower() in WFDB_SUFFIXES and header.is_file():
        return [header.parent / name for name in signal_files(read_header_bytes(header))]
    return [path]


def _state(path: str | Path) -> tuple[tuple[str, int, int], ...] | None:
    """(file, size, modification time) of each file holding the record's signal; None where one cannot be read."""
    try:
        files = _files(Path(path))
        return tuple((str(f), (s := f.stat()).st_size, s.st_mtime_ns) for f in files) or None
    except (OSError, ECGNetError):
        return None


def signal_size(path: str | Path) -> int | None:
    """The total size in bytes of the files holding the record's signal (None: unreadable)."""
    state = _state(path)
    return None if state is None else sum(size for _, size, _ in state)


def fingerprint(path: str | Path) -> str | None:
    """The record's fingerprint (hex); None where it cannot be read (such a record is matched by its path alone)."""
    state = _state(path)
    return None if state is None else _digest(state)


@functools.lru_cache(maxsize=None)
def _digest(state: tuple[tuple[str, int, int], ...]) -> str | None:
    digest = hashlib.sha256()
    try:
        for file, _, _ in state:
            digest.update(sha256_file(file).encode())
    except OSError:
        return None
    return digest.hexdigest()
