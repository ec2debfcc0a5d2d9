"""What a reader agrees to decode, checked *before* it allocates: one budget for every format.

A file's own claims (a header's sample count, a base64 block's length, a zip member's declared size,
an EDF's records × samples) are compared with these limits first; a claim over a limit is refused with
one :class:`ECGNetError` naming the file, the limit and its value, and nothing is decoded. The defaults
fit any resting 12-lead ECG and recordings up to 10 min and 7.2 M values (10 min at 1 kHz on 12 leads):
such a record is read and diagnosed within ~2 s and ~0.5 GB, where an hour at 100 Hz took ~7 CPU-s to
score and an hour at 1 kHz (43.2 M values) 7.6 s and 1.2 GB to read (``docs/reliability.md``). Long-term
recordings (INCART's 30 min at 257 Hz) need ``--max-seconds`` raised: the CLI (``ecgnet predict
--max-seconds/--max-signals/--max-values``) and the server (``ecgnet serve`` options of the same names)
can tighten or widen every limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ecgnet.errors import ECGNetError


@dataclass(frozen=True)
class ReadLimits:
    max_signals: int = 24  # signal lines / channels a file may declare
    max_header_bytes: int = 64 * 1024  # a WFDB header (PTB-XL's are < 2 kB)
    max_file_bytes: int = 64 * 1024 * 1024  # any one input file (XML, DICOM, EDF, a signal file)
    max_seconds: float = 600.0  # ten minutes of signal (an hour at 100 Hz took ~7 CPU-s to score)
    max_values: int = 12 * 600 * 1000  # decoded samples × signals (10 min at 1 kHz on 12 leads)

    def __post_init__(self):
        """A limit that is no positive finite number would refuse every record (-5 s) or none (nan s)."""
        for name in ("max_signals", "max_header_bytes", "max_file_bytes", "max_seconds", "max_values"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ECGNetError(f"--{name.replace('_', '-')} {value}: a limit is a positive number")

    def check_signals(self, n: int, path: str | Path) -> None:
        if n > self.max_signals:
            raise ECGNetError(f"{path}: declares {n} signals, over the limit of {self.max_signals} "
                              "(max_signals; --max-signals widens it)")

    def check_header_bytes(self, n: int, path: str | Path) -> None:
        if n > self.max_header_bytes:
            raise ECGNetError(f"{path}: header of {n} bytes, over the limit of {self.max_header_bytes} bytes "
                              "(max_header_bytes)")

    def check_file_bytes(self, n: int, path: str | Path) -> None:
        if n > self.max_file_bytes:
            raise ECGNetError(f"{path}: {n} bytes, over the limit of {self.max_file_bytes} bytes (max_file_bytes)")

    def check_samples(self, samples: int, signals: int, rate: float, path: str | Path) -> None:
        """``samples`` per signal at ``rate`` Hz on ``signals`` signals, before any is decoded."""
        if rate > 0 and samples / rate > self.max_seconds:
            raise ECGNetError(f"{path}: declares {samples / rate:.0f} s of signal, over the limit of "
                              f"{self.max_seconds:g} s (max_seconds; --max-seconds widens it)")
        if samples * signals > self.max_values:
            raise ECGNetError(f"{path}: declares {samples} samples × {signals} signals, over the limit of "
                              f"{self.max_values} decoded values (max_values; --max-values widens it)")


DEFAULT_LIMITS = ReadLimits()
