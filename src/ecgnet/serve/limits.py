"""The viewer's resources, bounded as a whole: what one request may decode, how many may decode at once,
and how much of a record goes back to the page.

- **per request**: an upload is read within :attr:`ServeLimits.read` (:class:`~ecgnet.data.limits.ReadLimits`:
  signals, header bytes, seconds, decoded values), so its memory is bounded before anything is decoded
  — about 40 bytes per decoded value while it is read (an hour at 100 Hz, 4.3 M values: 171 MB, most of
  it the per-lead quality flags), the model then scoring 32 ten-second segments at a time; three
  concurrent one-hour uploads peaked at 833 MB for the whole server (``benchmarks/hostile_replay.py``);
- **at once**: reading, resampling and inference run inside :class:`Gate`, a semaphore of
  :attr:`ServeLimits.max_concurrent` slots; a request that waits longer than ``queue_seconds`` is answered
  503 (busy) instead of piling up; ``/healthz`` never waits for it;
- **back to the page**: the model sees the whole record; the page gets :func:`display_signal`, the first
  ``display_seconds`` of it, decimated to at most ``display_points`` samples per lead (a 1 h record's
  full-rate signal was a 25 MB JSON answer);
- **the body**: :class:`BodyLimit` refuses a request body over ``max_request_bytes`` with a 413, while it
  streams in.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from fastapi import HTTPException
from fastapi.responses import JSONResponse

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.records import LEADS, ECGRecord
from ecgnet.serve.uploads import UploadError, size


@dataclass(frozen=True)
class ServeLimits:
    read: ReadLimits = DEFAULT_LIMITS  # what one upload may declare and decode
    max_concurrent: int = 2  # requests reading, resampling or running a model at once
    queue_seconds: float = 120.0  # how long a request waits for a slot before a 503
    max_connections: int = 32  # open at once, uploads being received included (bounds their disk and threads)
    display_seconds: float = 60.0  # of a record, drawn on the page
    display_points: int = 6000  # samples per lead sent back for drawing


class Gate:
    """A bounded semaphore around the expensive part of a request (``with gate: ...``)."""

    def __init__(self, slots: int, queue_seconds: float):
        if slots < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._slots, self.queue_seconds = threading.BoundedSemaphore(slots), queue_seconds

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.queue_seconds):
            raise UploadError(f"the server is busy (every slot taken for {self.queue_seconds:g} s); "
                              "try again in a moment", status=503)
        try:
            yield
        finally:
            self._slots.release()


def display_signal(record: ECGRecord, limits: ServeLimits) -> dict:
    """What the page draws: the record's first ``display_seconds``, every ``step``-th sample so that a
    lead has at most ``display_points``, in mV rounded to 1 µV (``rate`` is the drawn signal's rate)."""
    total = int(record.signal.shape[-1])
    shown = min(total, max(1, int(limits.display_seconds * record.sampling_rate)))
    step = max(1, math.ceil(shown / limits.display_points))
    part = record.signal[:, :shown:step]
    out = {"rate": record.sampling_rate / step, "source_rate": record.source_rate, "leads": list(LEADS),
           "samples": int(part.shape[-1]), "units": "mV", "mv": np.round(part.astype(np.float64), 3).tolist(),
           "model_rate": record.sampling_rate, "model_samples": total}
    if shown < total or step > 1:
        out["note"] = (f"showing {'the first ' if shown < total else ''}{shown / record.sampling_rate:g} s "
                       f"of {total / record.sampling_rate:g} s" + (f", every {step}th sample" if step > 1 else "")
                       + "; the model saw the whole record")
    return out


class BodyLimit:
    """Refuses request bodies above ``max_bytes`` with a 413: at once from Content-Length, else while
    they stream in (so an oversized upload is never written out whole)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"request larger than the {size(self.max_bytes)} allowed"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, message)
            return event

        await self.app(scope, limited, send)
