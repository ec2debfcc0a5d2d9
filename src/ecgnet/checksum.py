"""SHA-256 of files: of every byte (a run's weights; the full check of the signal cache) and of a fixed
sample of chunks (the cheap check of the 1 GB signal cache each time it is opened).

Measured on this machine (2 shared cores, page cache warm): the whole 1.05 GB PTB-XL cache hashes in
about 0.9 s; the sample (64 chunks of 64 KiB, 4 MiB) in a few milliseconds. The sample always covers the
file's first and last chunk, so with the size it catches any truncation or extension, and bit rot in
the sampled 0.4 %; the full check catches any changed byte.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SAMPLE_CHUNKS = 64
CHUNK_BYTES = 1 << 16
_BLOCK = 1 << 22


def sha256_file(path: str | os.PathLike, progress=None) -> str:
    """Hex SHA-256 of the whole file; ``progress(bytes)`` is called after each 4 MiB block."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def sampled_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's size and of ``SAMPLE_CHUNKS`` chunks spread evenly over it."""
    size = Path(path).stat().st_size
    last = max(size - CHUNK_BYTES, 0)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({last * i // (SAMPLE_CHUNKS - 1) for i in range(SAMPLE_CHUNKS)}):
            f.seek(offset)
            digest.update(f.read(CHUNK_BYTES))
    return digest.hexdigest()
