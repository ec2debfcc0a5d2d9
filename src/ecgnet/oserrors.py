"""A full disk, a read-only or forbidden folder, a file where a folder should be: one clear line naming the
path, never a traceback.

Writes that go through :func:`ecgnet.fileio.atomic_path` (run directories, checkpoints, reports,
caches) turn these errors into an :class:`~ecgnet.errors.ECGNetError` that names the file and says
that nothing was overwritten (the old file is still whole: the new one was being written beside it).
Any other place that meets one — a library writing its own files, such as Lightning's CSV log — is
turned into one line by the CLI (:func:`ecgnet.cli.common.friendly` calls :func:`disk_error`).
"""

from __future__ import annotations

import errno
import os

from ecgnet.errors import ECGNetError

REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "folder is read-only (read-only file system)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a folder is needed (e.g. --out or --runs-dir names a file)",
    errno.EISDIR: "a folder stands where a file is needed",
}

# the machine's, never one record's: reading a thousand records, one of these stops the work (a full disk while
# the cache is written) instead of being listed against the record that met it; a permission denied on one
# record's file is that record's problem, so EACCES/EPERM are not here
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def disk_error(e: BaseException, path: str | os.PathLike | None = None, outcome: str = "") -> ECGNetError | None:
    """``e`` as one line naming ``path`` (default: the path the error names), or None when ``e`` is not
    a full disk or an unwritable folder. ``outcome`` is appended, e.g. "nothing was overwritten"."""
    if not isinstance(e, OSError) or e.errno not in REASONS:
        return None
    where = path if path is not None else e.filename
    line = f"{where}: {REASONS[e.errno]}" if where is not None else f"cannot write: {REASONS[e.errno]}"
    return ECGNetError(f"{line} — {outcome}" if outcome else line)
