"""What a WFDB header claims, checked before wfdb reads a sample (:mod:`ecgnet.data.records` is the reader).

wfdb trusts the header: it misreads some record lines without a word (a rate of ``-100`` as 250 Hz,
``1e12`` samples as 1) and allocates whatever length the header announces. So, within the budget of
:class:`~ecgnet.data.limits.ReadLimits`:

- the header is a regular file of at most ``max_header_bytes``, and its lines announce at most
  ``max_signals`` signals, both checked on the raw bytes before wfdb parses them
  (:func:`read_header_bytes`; parsing 50,000 signal lines took wfdb minutes);
- the record line must say what wfdb read (:func:`check_record_line`);
- every signal file is a regular file inside the record's folder (a symbolic link may not leave it), and
  holds the samples the header announces, at a sampling rate within 10 Hz–100 kHz; the samples × signals
  it announces (or, without a length, that its files hold) fit ``max_seconds`` and ``max_values``
  (:func:`check_sizes`). FLAC-compressed signal files (formats 508/516/524), whose size says nothing of
  what they expand to, are bounded by ``max_file_bytes`` and by the frame count of their stream header,
  so a 50 kB file cannot expand to an hour at 1 kHz unannounced.

A hostile header cannot make the reader allocate more than the budget (fuzzed: ``tests/fuzzing.py``;
hostile corpus: ``tests/hostile.py``). Each refusal is one :class:`ECGNetError`.
Three things wfdb does not say are read from the bytes too: the release quirk of a record line naming
its file (``E00015.mat``; :func:`fixed_record_line` gives the header read as the record name), a length
of 0 (header(5)'s "unspecified", which wfdb cannot read; :func:`with_length` gives the header with the
length its files hold) and a gain of 0 (WFDB's "uncalibrated", which wfdb reads as 200 ADU/mV;
:func:`zero_gains`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError

RATE_RANGE_HZ = (10.0, 100_000.0)  # sampling rates a header may claim
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5,
                     "310": 4 / 3, "311": 4 / 3}  # WFDB formats; 508/516/524 (FLAC) are variable-length
FLAC_FORMATS = ("508", "516", "524")


def not_regular(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (a symbolic link is followed), or None: a FIFO would block
    the reader and a device never end, so only regular files are read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None if stat.S_ISREG(info.st_mode) else "is not a regular file"


def read_header_bytes(header: Path, limits: ReadLimits = DEFAULT_LIMITS) -> bytes:
    """The header's bytes, read only if it is a regular file within ``max_header_bytes``, and only if its
    lines announce at most ``max_signals`` signals (counted in the bytes, before any parser runs)."""
    if not os.path.lexists(header):
        raise ECGNetError(f"{header}: no such WFDB header")
    why = not_regular(header)
    if why:
        raise ECGNetError(f"{header}: the header {why}")
    limits.check_header_bytes(header.stat().st_size, header)
    try:
        with open(header, "rb") as f:
            raw = f.read(limits.max_header_bytes + 1)
    except OSError as e:
        raise ECGNetError(f"{header}: cannot be read ({e.strerror or e})") from e
    limits.check_header_bytes(len(raw), header)  # it grew since it was measured
    lines = header_lines(raw)
    limits.check_signals(max(len(lines) - 1, 0), header)
    declared = lines[0].split()[1:2] if lines else []
    if declared and declared[0].isascii() and declared[0].isdigit():
        limits.check_signals(int(declared[0]), header)
    return raw


def header_lines(raw: bytes, errors: str = "replace", encoding: str = "utf-8") -> list[str]:
    """The header's lines that are neither blank nor comments: the record line, then the signal lines."""
    text = raw.decode(encoding, errors=errors)
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def check_record_line(hdr, raw: bytes, header: Path) -> None:
    """The record line must say what wfdb read: wfdb takes a rate of ``-100`` for its default 250 Hz, ``1e2``
    for 1 Hz and ``1e12`` samples for 1, without a word."""
    line = next((ln.split() for ln in header_lines(raw, errors="ignore")), [])
    n_sig, fs, sig_len = (line[1:4] + [None] * 3)[:3]
    rate = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(?:/\S*)?", fs) if fs else None

    def count(token, value) -> bool:
        return token is None or (token.isascii() and token.isdigit() and int(token) == value)

    if not count(n_sig, hdr.n_sig) or not count(sig_len, hdr.sig_len) or \
            (fs is not None and (rate is None or float(rate.group(1)) != hdr.fs)):
        raise ECGNetError(f"{header}: cannot be read as a WFDB record (malformed record line "
                          f"{' '.join(line[:4])!r}: signals, sampling rate and length must be plain numbers)")


def check_sizes(hdr, directory: Path, header: Path, limits: ReadLimits = DEFAULT_LIMITS) -> int:
    """Refuse a header whose rate, length or signal count its files cannot hold, or that is over
    ``limits``, before any sample is read (``directory``: the record's folder) → the record's length in
    samples: the header's, or, where it gives none or 0 (header(5): unspecified), what its files hold."""
    def refuse(why: str):
        raise ECGNetError(f"{header}: cannot be read as a WFDB record ({why})")

    limits.check_signals(hdr.n_sig or 0, header)
    if getattr(hdr, "seg_name", None) is not None:
        refuse("a multi-segment record; a 12-lead ECG is one segment")
    if not hdr.n_sig or not hdr.file_name or len(hdr.file_name) != hdr.n_sig:
        refuse(f"the header announces {hdr.n_sig} signals but describes {len(hdr.file_name or [])}")
    fs = float(hdr.fs or 0)
    if not RATE_RANGE_HZ[0] <= fs <= RATE_RANGE_HZ[1]:
        refuse(f"sampling rate {fs:g} Hz, outside {RATE_RANGE_HZ[0]:g} Hz–{RATE_RANGE_HZ[1]:g} Hz")
    frames = {}  # signal file → [format, byte offset, samples per frame, signals]
    folder = directory.resolve()
    for file, fmt, offset, spf in zip(hdr.file_name, hdr.fmt, hdr.byte_offset or [None] * hdr.n_sig,
                                      hdr.samps_per_frame or [1] * hdr.n_sig):
        if os.path.basename(file) != file or file in ("", ".", ".."):
            refuse(f"signal file '{file}' is not a file beside the header")
        if not (directory / file).resolve().is_relative_to(folder):  # before its size is looked at
            refuse(f"its signal file {file} is a link that leads outside the record's folder")
        why = not_regular(directory / file)
        if why:
            refuse(f"its signal file {file} {why}")
        if fmt not in _BYTES_PER_SAMPLE and fmt not in FLAC_FORMATS:
            refuse(f"unknown signal format '{fmt}' for {file}")
        known = frames.setdefault(file, [fmt, offset or 0, 0, 0])
        if known[:2] != [fmt, offset or 0]:
            refuse(f"the signals of {file} disagree on its format or byte offset")
        known[2] += spf or 1
        known[3] += 1
    length = hdr.sig_len or None  # 0: unspecified
    if length is not None:
        limits.check_samples(length, sum(f[2] for f in frames.values()), fs, header)
    for file, (fmt, offset, per_frame, signals) in frames.items():
        size = (directory / file).stat().st_size
        if fmt in FLAC_FORMATS:  # a stream frame holds one sample of each signal; a record frame spf
            spf = max(per_frame // signals, 1)
            length = _check_flac(directory / file, file, size, length and length * spf, limits, refuse,
                                 header) // spf
            continue
        frame_bytes = per_frame * _BYTES_PER_SAMPLE[fmt]
        if length is None:  # the header leaves the length to the file's size
            length = int(max(size - offset, 0) // frame_bytes)
        need = offset + int(np.ceil(length * frame_bytes))
        if size < need:
            said = f"the header's {length} samples" if hdr.sig_len else f"the {length} samples its first signal file holds"
            refuse(f"its signal file {file} holds {size} bytes; {said} × {per_frame} "
                   f"signals need {need} (truncated signal file, or a wrong sample count)")
    if not hdr.sig_len:  # the length the files gave
        if not length:
            refuse("its signal files hold no samples")
        limits.check_samples(length, sum(f[2] for f in frames.values()), fs, header)
    return length


def _check_flac(path: Path, file: str, size: int, length: int | None, limits: ReadLimits, refuse,
                header: Path) -> int:
    """A FLAC signal file: its compressed size within ``max_file_bytes``, and as many frames in its
    stream header as the record's length (the length, when the header gives none) → that length."""
    import soundfile

    limits.check_file_bytes(size, f"{header} (signal file {file})")
    try:
        info = soundfile.info(str(path))
    except Exception as e:  # libsndfile's errors for what is not FLAC
        refuse(f"its signal file {file} is not a readable FLAC stream ({type(e).__name__})")
    if length is None:
        return int(info.frames)
    if info.frames < length:
        refuse(f"its signal file {file} holds {info.frames} frames; the header announces {length} samples "
               "(truncated signal file, or a wrong sample count)")
    return length


def fixed_record_line(header: Path, raw: bytes) -> str | None:
    """The header with ``NAME.ext`` on its record line replaced by ``NAME``, when NAME is this record."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    lines = text.splitlines(keepends=True)
    i = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if i is None:
        return None
    first, _, rest = lines[i].lstrip().partition(" ")
    stem, dot, _ = first.partition(".")
    if not dot or stem != header.stem or "/" in first:
        return None
    lines[i] = f"{stem} {rest}"
    return "".join(lines)


def signal_files(raw: bytes) -> list[str]:
    """The signal file each signal line names (its first field), in order, once each."""
    lines = header_lines(raw, errors="replace", encoding="latin-1")[1:]
    return list(dict.fromkeys(fields[0] for fields in (ln.split() for ln in lines) if fields))


def with_length(raw: bytes, length: int) -> bytes:
    """The header with ``length`` in its record line's sample-count field (for a header that gives 0, which
    wfdb cannot read); every other byte as it was."""
    text = raw.decode("latin-1")  # byte for byte
    lines = text.splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#"))
    fields = re.split(r"(\s+)", lines[i].strip())  # fields and the blanks between them
    fields[6] = str(length)  # name, blank, signals, blank, rate, blank, length
    lines[i] = "".join(fields) + lines[i][len(lines[i].rstrip("\r\n")):]
    return "".join(lines).encode("latin-1")


def header_units(raw: bytes) -> list[str | None]:
    """Each signal line's units as written (the text after '/' in the gain field; None: WFDB's default mV).
    wfdb's own parse reads '/µV' as 'V', a thousandfold error."""
    try:
        lines = header_lines(raw, errors="strict")
    except UnicodeDecodeError:  # a Latin-1 header: its 'µ' is the byte 0xB5
        lines = header_lines(raw, encoding="latin-1")
    out = []
    for fields in (ln.split() for ln in lines[1:]):
        gain = fields[2] if len(fields) > 2 else ""
        out.append(gain.split("/", 1)[1] if "/" in gain else None)
    return out


def zero_gains(raw: bytes) -> list[int]:
    """The signals (0-based, in the header's order) whose line gives gain 0 (the field after the format:
    ``0/mV``, ``0(5)``)."""
    out = []
    for i, fields in enumerate(ln.split() for ln in header_lines(raw)[1:]):
        if len(fields) > 2:
            gain = re.match(r"[-+0-9.eE]+", fields[2])
            if gain and _is_zero(gain.group()):
                out.append(i)
    return out


def _is_zero(number: str) -> bool:
    try:
        return float(number) == 0
    except ValueError:
        return False
