"""Atomic file writing: write to a temporary file beside the target, then rename.

A reader therefore sees either the old file, the complete new one, or nothing — never half a file.
A full disk or an unwritable folder is one :class:`~ecgnet.errors.ECGNetError` naming the file, with
the old file intact (see :mod:`ecgnet.oserrors`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ecgnet.errors import ECGNetError
from ecgnet.oserrors import disk_error

TMP_SUFFIX = ".tmp"

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` if the block succeeds."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the user's usual mode
        os.replace(tmp, path)
    except OSError as e:  # a full disk or an unwritable folder: one line; the old file is untouched
        error = disk_error(e, path, "nothing was overwritten")
        if error is None:
            raise
        raise error from e
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, with the one line writing ``path`` would fail with, without writing it: a temporary file
    made and removed in its folder (the folder is created)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        error = disk_error(e, path, "nothing was written") or _unmakeable(e, path)
        if error is None:
            raise
        raise error from e


def _unmakeable(e: OSError, path: Path) -> ECGNetError | None:
    """The folder of ``path`` cannot be made: one of its parents is a file, or the place takes no new folders
    (``/proc``) — said here, where it can only mean that (elsewhere a missing file is not hidden)."""
    if e.errno == errno.EEXIST:
        return ECGNetError(f"{path}: a file stands where a folder is needed (a folder of the path is a file) "
                           "— nothing was written")
    if e.errno == errno.ENOENT:
        return ECGNetError(f"{path}: its folder cannot be created there — nothing was written")
    return None


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``folder`` and below (``.NAME.*.tmp``:
    a killed process never reaches the cleanup above); returns them."""
    found = [p for p in Path(folder).rglob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(x):
    """numpy scalars and arrays → plain Python for json.dumps."""
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
