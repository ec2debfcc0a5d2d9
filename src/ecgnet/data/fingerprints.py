"""A record's fingerprint: the SHA-256 of the bytes that hold its signal — a WFDB record's signal files (as its
header names them), any other format's file — so the same ECG is known under another name, in another folder or
in a copied manifest. What ``RUN/trained_on.txt`` keeps beside each record's path, and what ``evaluate`` and
``calibrate`` compare a manifest's records with to say that their figures are in-sample."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ecgnet.checksum import sha256_file
from ecgnet.data.records import header_path
from ecgnet.data.wfdb_header import read_header_bytes, signal_files
from ecgnet.errors import ECGNetError

WFDB_SUFFIXES = (".hea", ".dat", ".mat", "")


def fingerprint(path: str | Path) -> str | None:
    """The hex SHA-256 over the SHA-256 of each file holding the record's signal; None where it cannot be read
    (a missing or unreadable file: such a record is matched by its path alone)."""
    path = Path(path)
    try:
        header = header_path(path)
        if path.suffix.lower() in WFDB_SUFFIXES and header.is_file():
            files = [header.parent / name for name in signal_files(read_header_bytes(header))]
        else:
            files = [path]
        if not files:
            return None
        digest = hashlib.sha256()
        for f in files:
            digest.update(sha256_file(f).encode())
        return digest.hexdigest()
    except (OSError, ECGNetError):
        return None
