"""Download and verify a PTB-XL release from PhysioNet.

The release folder publishes ``SHA256SUMS.txt`` listing every file with its SHA-256.  That file is
the single source of truth here: :func:`download` fetches exactly what it lists, and
:func:`verify` checks a local copy against it.  Downloads are

* checksummed — a file only gets its final name after its hash matches, so a file that exists
  under its real name is complete;
* resumable — an interrupted file stays as ``<name>.part`` and continues with an HTTP Range
  request, and files that are already correct are not fetched again;
* concurrent — a small thread pool, because PTB-XL is ~44k small files and latency dominates.

Only the standard library speaks HTTP, so no dependency is added for a one-off download.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ecgnet.checksum import sha256_file
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path

DEFAULT_URL = "https://physionet.org/files/ptb-xl/1.0.1/"
CHECKSUMS = "SHA256SUMS.txt"
HIGH_RATE_DIR = "records500/"  # the 500 Hz signals: ~1.7 GB that most users never need
_CHUNK = 1 << 20
# Failures worth another attempt: URLError/HTTPError and socket timeouts are OSErrors, and a
# connection dropped mid-body surfaces as http.client.IncompleteRead.
_RETRYABLE = (OSError, http.client.HTTPException)


class _ChecksumMismatch(Exception):
    """A download finished but its bytes are wrong; retried like a network error."""


@dataclass
class VerifyReport:
    """Outcome of checking a folder against its SHA256SUMS.txt (paths are relative, POSIX style).

    ``extra`` files are reported but do not make the copy bad: they cannot corrupt the release.
    """

    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    n_ok: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def summary(self, limit: int = 10) -> str:
        lines = [
            f"{self.n_ok} files OK, {len(self.missing)} missing, {len(self.corrupt)} corrupt, "
            f"{len(self.extra)} not listed in {CHECKSUMS}"
        ]
        for label, names in (
            ("missing", self.missing),
            ("corrupt (SHA-256 mismatch)", self.corrupt),
            (f"not listed in {CHECKSUMS}", self.extra),
        ):
            if names:
                lines.append(f"{label}:")
                lines += [f"  {name}" for name in names[:limit]]
                if len(names) > limit:
                    lines.append(f"  … and {len(names) - limit} more")
        return "\n".join(lines)


def read_checksums(path: Path) -> dict[str, str]:
    """Parse ``<sha256> <relative/path>`` lines (also sha256sum's ``  `` and ``*path`` forms).

    Paths must stay inside the release folder: the list comes from a server and decides where
    files are written.
    """
    sums: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name.lstrip(" ").removeprefix("*").rstrip()
        rel = PurePosixPath(name)
        if len(digest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in digest) or not name:
            raise ECGNetError(f"{path}: line {n} is not '<sha256> <path>': {line!r}")
        if rel.is_absolute() or ".." in rel.parts:
            raise ECGNetError(f"{path}: line {n} names a path outside the release: {name!r}")
        sums[name] = digest.lower()
    return sums


def verify(root: Path, include_500hz: bool = False, progress: bool = True) -> VerifyReport:
    """Hash every file listed in ``root/SHA256SUMS.txt`` and report what is missing, corrupt or extra."""
    root = Path(root)
    listed = _read_listing(root)
    wanted = _select(listed, include_500hz)
    report = VerifyReport(extra=_unlisted(root, listed))
    with _progress(progress) as bar:
        task = bar.add_task("verifying", total=len(wanted))
        for rel, digest in sorted(wanted.items()):
            path = root / rel
            if not path.is_file():
                report.missing.append(rel)
            elif sha256_file(path) != digest:
                report.corrupt.append(rel)
            else:
                report.n_ok += 1
            bar.advance(task)
    return report


def download(
    dest: Path,
    url: str = DEFAULT_URL,
    include_500hz: bool = False,
    workers: int = 4,
    retries: int = 3,
    progress: bool = True,
    timeout: float = 60,
) -> VerifyReport:
    """Mirror the release at ``url`` into ``dest``; safe to interrupt and run again.

    ``retries`` is the number of attempts per file.  Raises :class:`ECGNetError` naming the file
    and URL when a file still fails after that.  Every file that returns normally has been
    hashed, so the report is built here instead of hashing the whole folder a second time.
    """
    dest, base = Path(dest), url if url.endswith("/") else url + "/"
    sums_url = base + CHECKSUMS

    def fetch_checksums() -> None:
        with urllib.request.urlopen(sums_url, timeout=timeout) as resp:
            with atomic_path(dest / CHECKSUMS) as tmp:
                tmp.write_bytes(resp.read())

    _retrying(CHECKSUMS, sums_url, retries, fetch_checksums)
    listed = read_checksums(dest / CHECKSUMS)
    wanted = _select(listed, include_500hz)

    def ensure(rel: str, digest: str) -> int:
        """Fetch one file unless it is already correct; return the bytes received."""
        target = dest / rel
        if target.is_file() and sha256_file(target) == digest:
            return 0
        file_url = base + urllib.parse.quote(rel)
        return _retrying(rel, file_url, retries, lambda: _fetch(file_url, target, digest, timeout))

    received = 0
    extra_columns = (TextColumn("{task.fields[mib]:.1f} MiB"),)
    with _progress(progress, *extra_columns) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        task = bar.add_task("downloading", total=len(wanted), mib=0.0)
        futures = [pool.submit(ensure, rel, digest) for rel, digest in wanted.items()]
        try:
            for future in as_completed(futures):
                received += future.result()
                bar.update(task, advance=1, mib=received / 2**20)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one failure ends the run; don't start the rest
            raise
    return VerifyReport(extra=_unlisted(dest, listed), n_ok=len(wanted))


def _fetch(url: str, target: Path, digest: str, timeout: float) -> int:
    """Download ``url`` into ``<target>.part`` (resuming it if present), check it, then rename.

    A server that ignores Range answers 200 with the whole file, so the part is rewritten from
    the start; a wrong hash deletes the part, since resuming bad bytes can never succeed.
    """
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the part is already as long as the file: start over
            part.unlink()
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    with resp, open(part, "ab" if resp.status == 206 else "wb") as out:
        start = out.tell()
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
        received = out.tell() - start
    if (actual := sha256_file(part)) != digest:
        part.unlink()
        raise _ChecksumMismatch(f"SHA-256 is {actual}, {CHECKSUMS} says {digest}")
    os.replace(part, target)
    return received


def _retrying(name: str, url: str, attempts: int, fn):
    """Call ``fn`` up to ``attempts`` times with a short backoff; then fail naming file and URL."""
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (*_RETRYABLE, _ChecksumMismatch) as e:
            if attempt == attempts:
                msg = f"{name}: download from {url} failed after {attempts} attempt(s): {e}"
                raise ECGNetError(msg) from e
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8))


def _read_listing(root: Path) -> dict[str, str]:
    path = root / CHECKSUMS
    if not path.is_file():
        raise ECGNetError(f"{path}: not found — is {root} a downloaded PTB-XL release folder?")
    return read_checksums(path)


def _select(listed: dict[str, str], include_500hz: bool) -> dict[str, str]:
    return {rel: d for rel, d in listed.items() if include_500hz or not rel.startswith(HIGH_RATE_DIR)}


def _unlisted(root: Path, listed: dict[str, str]) -> list[str]:
    """Files under ``root`` the listing does not name, ignoring hidden and ``.part`` scratch files."""
    extra = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if not (name.startswith(".") or name.endswith(".part") or rel == CHECKSUMS or rel in listed):
                extra.append(rel)
    return sorted(extra)


def _progress(enabled: bool, *columns) -> Progress:
    """A files-done progress bar; disabled (and silent) when ``enabled`` is false."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        TimeRemainingColumn(),
        disable=not enabled,
    )
