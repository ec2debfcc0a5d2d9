"""Uploaded ECG files (one WFDB record, or one single-file ECG: XML, DICOM, SCP-ECG, EDF) → a per-request
temporary folder holding it, or a one-line refusal.

Every rule here keeps user strings away from the filesystem outside that folder:

- a file name must be a bare name (``[A-Za-z0-9_-]`` then dots), no ``/``, ``\\``, ``..`` or absolute
  path, and end in ``.hea``, ``.dat`` or ``.mat``, or in a single-file suffix (:data:`SINGLE_FILE_SUFFIXES`),
  or have no suffix at all (a DICOM file from a PACS export is often named ``IM0001``); names are unique
  within a request. A lone single-file ECG's other characters (spaces, accents) are replaced by ``_``
  rather than refused: nothing refers to it by name;
- a single-file ECG (or a file without a suffix) comes alone; its format is then read from its content,
  whatever its name says;
- otherwise exactly one header, and the header's signal lines may only name files of the same upload (a header
  could otherwise make the WFDB reader open ``../../x.dat`` or ``/etc/...``); multi-segment records,
  which name other headers, are refused;
- at most :attr:`UploadLimits.max_files` files, each at most :attr:`UploadLimits.max_file_bytes`
  (counted while copying, not trusted from the client), the request's body bounded by the app; the
  header within the read budget's ``max_header_bytes`` and ``max_signals`` before its lines are parsed;
- the folder is removed when the ``with`` block ends, whatever happened inside it, and every folder
  still in use is removed when the server shuts down (:meth:`UploadFolders.close`: Ctrl-C once left
  them behind).

Nothing is unpickled: headers are text, records are read by :func:`ecgnet.data.readers.read_ecg_any`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError

SUFFIXES = (".hea", ".dat", ".mat")
SINGLE_FILE_SUFFIXES = (".xml", ".dcm", ".scp", ".edf", ".bdf")  # one file holds the whole ECG
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
_CHUNK = 1 << 16


class UploadError(ECGNetError):
    """A refused upload; ``status`` is the HTTP status to answer with (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = 16 * 2**20  # a 60 s 12-lead record at 1000 Hz in 16 bits is 1.4 MB
    max_request_bytes: int = 40 * 2**20
    max_files: int = 8


def check_name(name: str | None) -> str:
    """The client's file name if it is a safe bare name with an allowed suffix, else an UploadError."""
    shown = _check_bare(name)
    if not _NAME.fullmatch(name):
        raise UploadError(f"{shown}: unusable file name (letters, digits, '_', '-' and '.' only, ≤ 100 characters)")
    if Path(name).suffix.lower() not in SUFFIXES + SINGLE_FILE_SUFFIXES + ("",):
        raise UploadError(f"{shown}: not an ECG file (expected {', '.join(SUFFIXES + SINGLE_FILE_SUFFIXES)}, "
                          "or a file without a suffix)", status=415)
    return name


def _check_bare(name: str | None) -> str:
    """The name as it may be shown in a message, or an UploadError for no name or a path."""
    if not name:
        raise UploadError("an uploaded file has no name")
    shown = name if len(name) <= 80 and name.isprintable() else repr(name[:80])
    if "/" in name or "\\" in name or name.startswith(("~", ".")) or ".." in name or ":" in name:
        raise UploadError(f"{shown}: file names must be bare names, not paths")
    return shown


def single_file_name(name: str | None) -> str:
    """A lone single-file ECG's name made safe instead of refused: its format is read from its content and no
    other file refers to it, so 'ECG 2024-01-05 Müller.xml' is saved as 'ECG_2024-01-05_M_ller.xml' (a
    path is still refused, as is a suffix that is no ECG's)."""
    _check_bare(name)
    suffix = Path(name).suffix if Path(name).suffix.lower() in SINGLE_FILE_SUFFIXES else ""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name[:len(name) - len(suffix)])[:100 - len(suffix)]
    return check_name(stem + suffix)


def is_single_file(name: str) -> bool:
    """Whether ``name`` is uploaded as a whole ECG in one file: a single-file suffix, or none."""
    return Path(name).suffix.lower() in SINGLE_FILE_SUFFIXES + ("",)


def signal_files(header: Path, read_limits: ReadLimits = DEFAULT_LIMITS) -> list[str]:
    """The signal file names a header's signal lines refer to (checked like uploaded names); the header
    within ``read_limits``' header bytes and signals."""
    read_limits.check_header_bytes(header.stat().st_size, header.name)
    try:
        text = header.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UploadError(f"{header.name}: not a text WFDB header") from None
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UploadError(f"{header.name}: empty WFDB header")
    record = lines[0]
    if "/" in record[0]:
        raise UploadError(f"{header.name}: multi-segment records are not supported; upload a single-segment record")
    try:
        n_signals = int(record[1])
    except (IndexError, ValueError):
        raise UploadError(f"{header.name}: malformed record line '{' '.join(record)[:80]}'") from None
    read_limits.check_signals(max(n_signals, len(lines) - 1), header.name)
    if len(lines) < 1 + n_signals:
        raise UploadError(f"{header.name}: announces {n_signals} signals but has {len(lines) - 1} signal lines")
    names = []
    for fields in lines[1:1 + n_signals]:
        try:
            name = check_name(fields[0])
        except UploadError as e:
            raise UploadError(f"{header.name}: its signal line names {e}") from None
        if name not in names:
            names.append(name)
    return names


class UploadFolders:
    """The temporary folders of one server's requests in progress; :meth:`close` (at shutdown) removes
    them and refuses new ones, while worker threads may still be reading."""

    def __init__(self):
        self._live: set[Path] = set()
        self._lock = threading.Lock()
        self._closed = False

    def create(self) -> Path:
        with self._lock:
            if self._closed:
                raise UploadError("the server is shutting down", status=503)
            folder = Path(tempfile.mkdtemp(prefix="ecgnet-upload-"))
            self._live.add(folder)
            return folder

    def remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            self._live.discard(folder)

    def close(self) -> int:
        """Remove every live folder and refuse new ones → how many there were."""
        with self._lock:
            self._closed, folders = True, list(self._live)
            self._live.clear()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        return len(folders)

    def open(self) -> None:
        with self._lock:
            self._closed = False


@contextlib.contextmanager
def saved_record(files: list[tuple[str | None, BinaryIO]], limits: UploadLimits = UploadLimits(),
                 read_limits: ReadLimits = DEFAULT_LIMITS, folders: UploadFolders | None = None) -> Iterator[Path]:
    """``(client file name, readable stream)`` pairs → the saved header's (or single file's) path inside a
    fresh temporary folder (one of ``folders``, the server's), removed on exit."""
    if not files:
        raise UploadError("no file uploaded: send an ECG file, or a .hea header with its .dat or .mat signal file")
    if len(files) > limits.max_files:
        raise UploadError(f"{len(files)} files uploaded; at most {limits.max_files} per request", status=413)
    lone = len(files) == 1 and files[0][0] and is_single_file(files[0][0])
    names = [single_file_name(files[0][0])] if lone else [check_name(name) for name, _ in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UploadError(f"{dupes[0]}: uploaded twice")
    singles = [n for n in names if is_single_file(n)]
    if singles and len(names) > 1:
        raise UploadError(f"{singles[0]}: a single-file ECG is uploaded alone ({len(names)} files sent); "
                          "upload one record at a time")
    headers = [n for n in names if n.lower().endswith(".hea")]
    if not singles and len(headers) != 1:
        raise UploadError(f"{names[0]}: no .hea header uploaded with it (select a WFDB record's .hea together with "
                          "its .dat/.mat)" if not headers else
                          f"{len(headers)} headers uploaded ({', '.join(headers)}); upload one record at a time")
    folders = folders or UploadFolders()
    folder = folders.create()
    try:
        for name, (_, stream) in zip(names, files):
            _copy(stream, folder / name, limits.max_file_bytes)
        if singles:
            yield folder / singles[0]
            return
        header = folder / headers[0]
        missing = [f for f in signal_files(header, read_limits) if not (folder / f).is_file()]
        if missing:
            raise UploadError(f"{header.name}: its signal file {missing[0]} was not uploaded "
                              "(select the .hea and its .dat/.mat together)")
        yield header
    finally:
        folders.remove(folder)


def _copy(stream: BinaryIO, dest: Path, max_bytes: int) -> None:
    written = 0
    with open(dest, "xb") as out:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadError(f"{dest.name}: larger than the {size(max_bytes)} allowed per file", status=413)
            out.write(chunk)


def size(n: int) -> str:
    """Bytes in words: 16 MiB, 48.8 kB."""
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n / 1000:.3g} kB"


def public_message(error: Exception, folder: Path | None) -> str:
    """The error's first line with the temporary folder's path removed (the user sees their file names)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"(?<!the server's )(--max-\w+) widens it", r"the server's \1 widens it", text)  # serve's option, once
    if folder is not None:
        text = text.replace(f"{folder}/", "").replace(str(folder), "")
    return text
