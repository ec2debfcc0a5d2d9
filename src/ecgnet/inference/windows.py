"""How a record of any length is covered by a model trained and selected on PTB-XL's 10 s records.

A record of up to 10 s is scored exactly as PTB-XL records are (each model's own windows and aggregate,
:mod:`ecgnet.models.windows`). A longer record is cut into consecutive 10 s segments (the last one ends
at the record's end), each segment is scored like a PTB-XL record, and the segments' probabilities are
averaged — so the whole record counts, and a 60 s record is not pushed towards positives by a maximum over
4–6 times as many windows. Two other coverings can be asked for (``long_records``): ``first`` scores only
the first 10 s, ``windows`` takes the maximum over every window of the whole record.
"""

from __future__ import annotations

from ecgnet.data import signals
from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError

LONG_RECORDS = ("segments", "first", "windows")


def check_policy(long_records: str) -> str:
    if long_records not in LONG_RECORDS:
        raise ECGNetError(f"--long-records must be one of {', '.join(LONG_RECORDS)}, not '{long_records}'")
    return long_records


def segment_starts(samples: int, rate: int, long_records: str = "segments") -> list[int]:
    """Starts of the 10 s segments that cover a record of ``samples`` samples at ``rate`` Hz (just the first
    one with ``long_records="first"``; with ``"windows"`` the record is one segment)."""
    starts = signals.segment_starts(samples, rate)
    return starts[:1] if long_records in ("first", "windows") else starts


def segment_length(samples: int, rate: int, long_records: str = "segments") -> int:
    return samples if long_records == "windows" else SECONDS * rate


def coverage(samples: int, rate: int, data, long_records: str = "segments") -> str:
    """How a model with data settings ``data`` (its config's) sees a record of ``samples`` samples, in words."""
    how = (f"{data.crop_seconds:g} s windows every {data.stride_seconds:g} s, {data.aggregate} over windows"
           if data.window else "the whole segment at once")
    n = len(segment_starts(samples, rate, long_records))
    if long_records == "first" and samples > SECONDS * rate:
        return f"the first {SECONDS} s of {samples / rate:.1f} s ({how})"
    if n == 1:
        return f"the whole {samples / rate:.1f} s ({how})"
    return (f"the whole {samples / rate:.1f} s as {n} segments of {SECONDS} s "
            f"(each: {how}), probabilities averaged over segments")
