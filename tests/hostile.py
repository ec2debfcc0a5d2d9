"""A hostile-input corpus, generated (never committed): small files that claim or expand to a lot.

Shared by ``tests/test_hostile_input.py`` (each case against the CLI's reader and the server) and
``benchmarks/hostile_replay.py`` (the corpus replayed against a running server). Every case is a
function ``(folder) -> header path`` writing one WFDB record into ``folder``; :data:`CASES` maps a name
to the function and to what the default limits do with it ("refused", or "read" within the budget).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
_LEVELS = np.array([120, 300, 180, -210, -30, 240, -90, 150, 420, 600, 510, 360])  # µV per lead, constant


def _signal_line(file: str, fmt: str, lead: str, checksum: int | None = None, gain: int = 1000) -> str:
    tail = f" 0 {checksum} 0 {lead}" if checksum is not None else f" 0 0 0 {lead}"
    return f"{file} {fmt} {gain}/mV 16 0{tail}"


def _flac(path: Path, levels: np.ndarray, frames: int, chunk: int = 1 << 18) -> None:
    """A FLAC stream of ``frames`` frames, each channel holding a constant level (it compresses to almost
    nothing: the point of a decompression bomb), written in chunks so generating it costs little memory."""
    import soundfile

    block = np.tile(levels.astype(np.int16), (min(chunk, frames), 1))
    with soundfile.SoundFile(path, "w", samplerate=96000, channels=len(levels), format="FLAC",
                             subtype="PCM_16") as f:
        for start in range(0, frames, chunk):
            f.write(block[:min(chunk, frames - start)])


def flac_record(folder: Path, name: str, fs: int, seconds: float, declared: int | None = None,
                fmt: str = "516") -> Path:
    """A 12-lead FLAC record (two signal files: FLAC holds at most 8 channels) of ``seconds`` at ``fs``
    whose header declares ``declared`` samples (default: what the files hold)."""
    frames = int(fs * seconds)
    groups = [(f"{name}_1.dat", slice(0, 8)), (f"{name}_2.dat", slice(8, 12))]
    lines = [f"{name} 12 {fs} {frames if declared is None else declared}"]
    for file, leads in groups:
        _flac(folder / file, _LEVELS[leads], frames)
        for lead, level in zip(LEADS[leads], _LEVELS[leads]):
            checksum = int(level) * frames % 65536 if declared in (None, frames) else None
            lines.append(_signal_line(file, fmt, lead, checksum))
    header = folder / f"{name}.hea"
    header.write_text("\n".join(lines) + "\n")
    return header


def flac_1khz_1h(folder: Path) -> Path:
    """The issue's bomb: ~50 kB of FLAC holding 1 h at 1 kHz on 12 leads (43.2 M samples)."""
    return flac_record(folder, "bomb1k", 1000, 3600)


def flac_1khz_10min(folder: Path) -> Path:
    """The largest the default budget reads: 10 min at 1 kHz on 12 leads (7.2 M samples) in ~2 kB of FLAC."""
    return flac_record(folder, "flac10m", 1000, 600)


def flac_10khz_1h_declared(folder: Path) -> Path:
    """1 s of FLAC whose header declares 1 h at 10 kHz (432 M samples): refused from the header alone."""
    return flac_record(folder, "bomb10k", 10000, 1, declared=10000 * 3600)


def flac_truncated(folder: Path) -> Path:
    """1 s of FLAC at 500 Hz whose header declares 10 min: more samples than the stream holds."""
    return flac_record(folder, "short", 500, 1, declared=500 * 600)


def flac_no_length(folder: Path) -> Path:
    """A header that leaves the length to the FLAC stream, which holds 8 min at 2 kHz on 12 leads: under
    ``max_seconds`` but 11.5 M values, over ``max_values``."""
    header = flac_record(folder, "nolen", 2000, 1)
    for file, channels in (("nolen_1.dat", 8), ("nolen_2.dat", 4)):  # rewrite the streams, long
        _flac(folder / file, _LEVELS[:channels], 2000 * 480)
    lines = header.read_text().splitlines()
    lines[0] = "nolen 12 2000"
    header.write_text("\n".join(ln.rsplit(" ", 4)[0] + " 0 0 0 " + ln.split()[-1] if i else ln
                                for i, ln in enumerate(lines)) + "\n")
    return header


def plain_100hz(folder: Path, seconds: int) -> Path:
    """An honest record of ``seconds`` at 100 Hz (format 16; 1 h is 8.6 MB), ~1 mV spikes at 72 bpm."""
    n = 100 * seconds
    t = np.arange(n) / 100
    beat = (np.sin(2 * np.pi * 1.2 * t) ** 15 * 1000).astype(np.int16)
    x = np.stack([beat * (0.3 + 0.1 * i) for i in range(12)], 1).astype("<i2")
    (folder / "long.dat").write_bytes(x.tobytes())
    sums = x.astype(np.int64).sum(0) % 65536
    lines = [f"long 12 100 {n}"] + [_signal_line("long.dat", "16", lead, int(s)) for lead, s in zip(LEADS, sums)]
    (folder / "long.hea").write_text("\n".join(lines) + "\n")
    return folder / "long.hea"


def plain_100hz_1h(folder: Path) -> Path:
    """An honest 1 h record at 100 Hz: over the default ``max_seconds`` (10 min), refused from its header
    (scoring an hour took ~7 CPU-s; a site that wants it raises the limit)."""
    return plain_100hz(folder, 3600)


def plain_100hz_10min(folder: Path) -> Path:
    """The longest record the default budget reads at 100 Hz: 10 min, diagnosed in 10 s segments."""
    return plain_100hz(folder, 600)


def many_signal_lines(folder: Path, n: int = 50_000) -> Path:
    """A header with ``n`` real signal lines (the issue's: 50,000 lines, ~1.5 MB) over a tiny file."""
    (folder / "many.dat").write_bytes(b"\0" * 64)
    lines = [f"many {n} 100 1"] + [_signal_line("many.dat", "16", f"L{i}") for i in range(n)]
    (folder / "many.hea").write_text("\n".join(lines) + "\n")
    return folder / "many.hea"


def many_signals_small(folder: Path) -> Path:
    """2,000 signal lines in a header under the 64 kB header limit: refused by their number."""
    n = 2000
    (folder / "m.dat").write_bytes(b"\0" * 2 * n)
    lines = [f"m {n} 100 1"] + [f"m.dat 16 1/mV 16 0 0 0 0 L{i}" for i in range(n)]
    (folder / "m.hea").write_text("\n".join(lines) + "\n")
    return folder / "m.hea"


def wrong_leads_24(folder: Path) -> Path:
    """24 signals, none of them a standard lead: the refusal must not list them all at length."""
    names = [f"lead_with_a_rather_long_name_{i:02d}" for i in range(24)]
    (folder / "w.dat").write_bytes(b"\0" * 2 * 24 * 100)
    lines = ["w 24 100 100"] + [f"w.dat 16 1000/mV 16 0 0 0 0 {n}" for n in names]
    (folder / "w.hea").write_text("\n".join(lines) + "\n")
    return folder / "w.hea"


def huge_header(folder: Path) -> Path:
    """A 1 MB header (comments): refused by its size before it is parsed."""
    header = plain_record(folder, "big")
    header.write_text(header.read_text() + ("# " + "x" * 98 + "\n") * 10_000)
    return header


def plain_record(folder: Path, name: str, samples: int = 1000, fs: int = 100) -> Path:
    """A small valid 12-lead format-16 record."""
    x = np.tile((_LEVELS * 2).astype("<i2"), (samples, 1)) + np.arange(samples, dtype="<i2")[:, None] % 50
    (folder / f"{name}.dat").write_bytes(x.astype("<i2").tobytes())
    sums = x.astype(np.int64).sum(0) % 65536
    lines = [f"{name} 12 {fs} {samples}"] + [_signal_line(f"{name}.dat", "16", lead, int(s))
                                             for lead, s in zip(LEADS, sums)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def symlink_escape(folder: Path) -> Path:
    """A record whose ``.dat`` is a symbolic link to a file outside the record's folder."""
    outside = folder / "outside"
    outside.mkdir()
    header = plain_record(outside, "esc")
    inside = folder / "rec"
    inside.mkdir()
    (inside / "esc.hea").write_text(header.read_text())
    os.symlink(outside / "esc.dat", inside / "esc.dat")
    return inside / "esc.hea"


def fifo_signal(folder: Path) -> Path:
    """A record whose ``.dat`` is a FIFO (reading it would block forever)."""
    header = plain_record(folder, "fifo")
    (folder / "fifo.dat").unlink()
    os.mkfifo(folder / "fifo.dat")
    return header


def directory_signal(folder: Path) -> Path:
    header = plain_record(folder, "dir")
    (folder / "dir.dat").unlink()
    (folder / "dir.dat").mkdir()
    return header


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "flac_1khz_1h": (flac_1khz_1h, "refused"),
    "flac_1khz_10min": (flac_1khz_10min, "read"),
    "flac_10khz_1h_declared": (flac_10khz_1h_declared, "refused"),
    "flac_truncated": (flac_truncated, "refused"),
    "flac_no_length": (flac_no_length, "refused"),
    "many_signal_lines": (many_signal_lines, "refused"),
    "many_signals_small": (many_signals_small, "refused"),
    "huge_header": (huge_header, "refused"),
    "wrong_leads_24": (wrong_leads_24, "refused"),
    "plain_100hz_1h": (plain_100hz_1h, "refused"),
    "plain_100hz_10min": (plain_100hz_10min, "read"),
}
"""The upload corpus (files one can send to the server). The CLI-only cases (symbolic link, FIFO,
directory) are tested beside it."""


# --- a real server on 127.0.0.1, for the replay and the server tests -----------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, *args: str, checkpoint: str = "baseline_time"):
    """``ecgnet serve`` on 127.0.0.1 (a free port) in a subprocess whose temporary folder is ``tmp``
    → (process, base URL); raises if it does not answer /healthz within 120 s."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "ECGNET_DATA": "", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ecgnet.cli", "serve", "--port", str(port), "--checkpoint",
                             checkpoint, "--runs-dir", str(tmp / "no_runs"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


def stop_server(proc, sig=None, timeout: float = 30) -> float:
    """Send ``sig`` (SIGTERM) and wait → seconds until the process exited (killed after ``timeout``)."""
    import signal
    import subprocess
    import time

    start = time.monotonic()
    proc.send_signal(sig or signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - start


def post(url: str, files: list[tuple[str, bytes]], fields: dict | None = None, host: str | None = None,
         timeout: float = 120) -> tuple[int, dict | str, float]:
    """A multipart POST → (status, JSON body (or text), seconds)."""
    import http.client
    import json
    import time
    import urllib.parse

    boundary = "hostile-replay-boundary"
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if host:
        headers["Host"] = host
    start = time.perf_counter()
    conn.request("POST", parsed.path, body, headers)
    response = conn.getresponse()
    raw = response.read()
    seconds = time.perf_counter() - start
    conn.close()
    try:
        return response.status, json.loads(raw), seconds
    except ValueError:
        return response.status, raw.decode(errors="replace"), seconds


def get(url: str, host: str | None = None, timeout: float = 30) -> tuple[int, str, float]:
    import http.client
    import time
    import urllib.parse

    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    start = time.perf_counter()
    conn.request("GET", parsed.path, headers={"Host": host} if host else {})
    response = conn.getresponse()
    text = response.read().decode(errors="replace")
    conn.close()
    return response.status, text, time.perf_counter() - start


def record_files(header: Path) -> list[tuple[str, bytes]]:
    """The header and the signal files beside it that share its record name."""
    stem = header.stem
    return [(f.name, f.read_bytes()) for f in sorted(header.parent.iterdir())
            if f.is_file() and (f.stem == stem or f.stem.startswith(stem + "_"))]


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of process ``pid`` (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {ln.split(":")[0]: int(ln.split()[1]) for ln in status.splitlines() if ln.startswith(("VmRSS", "VmHWM"))}
    return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux /proc): a figure that a loaded machine
    does not inflate, unlike wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
