"""Many records at once: files → one result per record and the table of them (``ecgnet predict --out
FILE.csv``); arrays of records → probabilities (:func:`predict_proba`, what evaluation runs on a fold).

A record file that cannot be read or scored gets a row with its error; it never stops the others.

CSV columns: ``path``, ``p_<class>`` for every class, ``positives`` (classes at or above the run's
threshold, ``;``-separated; empty when none or when calls were withheld), ``warnings`` (what may make the
result wrong, ``;``-separated), ``notes`` (routine: resampled, a long record's covering; ``;``-separated),
``seconds``, ``coverage``, ``format`` (wfdb, muse-xml, …), ``statements`` (the device's own interpretation,
``;``-separated; never a model input), ``error`` (empty when the record was diagnosed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from torch import nn

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.ptbxl import META_FEATURES
from ecgnet.data.records import LEADS
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path
from ecgnet.inference.predictor import Predictor
from ecgnet.models.windows import windowed_proba

ERR = Console(stderr=True)  # stdout: results only


def progress_bar(progress: bool) -> Progress:
    """A transient progress bar on stderr, drawn on a terminal only (in a log it left a blank line)."""
    return Progress(transient=True, disable=not progress or not ERR.is_terminal, console=ERR)


def predict_many(predictor: Predictor, headers: Iterable[Path], resample: bool = True,
                 progress: bool = True, on_error: Callable[[Path, str], None] | None = None,
                 limits: ReadLimits = DEFAULT_LIMITS, **metadata) -> list[dict]:
    """Results in the order of ``headers`` (each read within ``limits``); a failed record's result is
    ``{"record", "error"}``."""
    headers = list(headers)
    results = []
    with progress_bar(progress) as bar:
        task = bar.add_task(f"Diagnosing {len(headers)} records", total=len(headers))
        for header in headers:
            try:
                results.append(predictor.predict_file(header, resample=resample, limits=limits, **metadata))
            except ECGNetError as e:
                results.append(_failed(header, str(e), on_error))
            except Exception as e:  # a reader bug must not cost the user the rest of the folder
                results.append(_failed(header, f"{header}: unexpected {type(e).__name__}: {e}", on_error))
            bar.advance(task)
    return results


def _failed(header: Path, message: str, on_error) -> dict:
    if on_error:
        on_error(header, message)
    return {"record": str(header), "error": message}


def results_table(results: list[dict], classes: list[str]):
    """The CSV's rows as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for r in results:
        probs = {d["class"]: d["probability"] for d in r.get("diagnoses", [])}
        rows.append({"path": r["record"], **{f"p_{c}": probs.get(c) for c in classes},
                     "positives": ";".join(r.get("positives", [])), "warnings": ";".join(r.get("warnings", [])),
                     "notes": ";".join(r.get("notes", [])), "seconds": r.get("seconds"),
                     "coverage": r.get("coverage", ""), "format": r.get("format", ""),
                     "statements": ";".join(r.get("statements", [])), "model": r.get("model", ""),
                     "engine": r.get("engine", ""), "weights_sha256": r.get("weights_sha256", ""),
                     "site": r.get("site") or "", "error": r.get("error", "")})
    return pd.DataFrame(rows, columns=["path", *(f"p_{c}" for c in classes), "positives", "warnings", "notes",
                                       "seconds", "coverage", "format", "statements", "model", "engine", "weights_sha256",
                                       "site", "error"])


# What a warning says of one record in particular, masked by :func:`warning_kind`: a quoted name ('V4R'), a
# parenthesised detail ("(ECG I, ECG II …)"), a standard lead's name, a code (MDC_ECG_LEAD_V3R) and a number (an
# age, a rate, a count).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_DETAIL = re.compile(r"\s\([^()]*\)")
_LEAD = re.compile(r"(?<![\w-])(?:I{1,3}|aV[RLF]|AV[RLF]|V[1-6])(?![\w-])")
_CODE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:[.,]\d+)*(?![\w])")
_RUN = re.compile(r"…(?:\s*,\s*…)+")  # "…, …, …" (a list of leads) → "…"


def warning_kind(warning: str) -> str:
    """The kind of a reader's or the predictor's warning: its text up to the first colon (the rest is the
    record's detail), with what is particular to one record masked as '…' — quoted names, parenthesised
    details, lead names, codes, numbers — so "the file states age 66, but … give 59" and "… age 46, but …
    give 49", or "lead 'V4R' …" and "lead 'V3R' …", are one kind."""
    text = _QUOTED.sub("'…'", warning)  # first: a quoted name may hold a colon
    head = re.split(r":(?:\s|$)", text, maxsplit=1)[0].strip()
    for pattern, mask in ((_DETAIL, " (…)"), (_CODE, "…"), (_LEAD, "…"), (_NUMBER, "…"), (_RUN, "…")):
        head = pattern.sub(mask, head)
    return head or warning


def summary(results: list[dict]) -> dict:
    """Counts of a batch: records, diagnosed, failed, with warnings, with notes only (routine), and each
    warning's kind (:func:`warning_kind`) with how many records have it (``warnings``, most frequent first)
    and the first of them as an example (``examples``: {kind: {"record", "warning"}})."""
    done = [r for r in results if "error" not in r]
    kinds: dict[str, int] = {}
    examples: dict[str, dict] = {}
    for r in done:
        mine = {}  # kind → the record's first warning of it: a record counts once per kind
        for warning in r.get("warnings", []):
            mine.setdefault(warning_kind(warning), warning)
        for kind, warning in mine.items():
            kinds[kind] = kinds.get(kind, 0) + 1
            examples.setdefault(kind, {"record": r["record"], "warning": warning})
    return {"records": len(results), "diagnosed": len(done), "failed": len(results) - len(done),
            "with_warnings": sum(bool(r.get("warnings")) for r in done),
            "with_notes_only": sum(bool(r.get("notes")) and not r.get("warnings") for r in done),
            "warnings": dict(sorted(kinds.items(), key=lambda kv: -kv[1])), "examples": examples}


def write_results_csv(path: Path, results: list[dict], classes: list[str]) -> None:
    """Written whole or not at all (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        results_table(results, classes).to_csv(tmp, index=False)


def predict_proba(model: nn.Module, signal: np.ndarray, metadata: np.ndarray, window: int | None,
                  stride: int, aggregate: str = "max", batch_size: int = 256,
                  progress: bool = False, description: str = "Predicting") -> np.ndarray:
    """(n, 12, samples) mV + (n, 8) metadata → (n, classes) probabilities, in evaluation mode. Arrays may be
    memory-mapped: only their shapes are checked up front, and ``batch_size`` records are read at a time. A record
    with segments (a manifest's record over 10 s, :class:`~ecgnet.data.dataset.Segments`) gets the mean of its
    segments' probabilities, and one under 10 s (:meth:`~ecgnet.data.dataset.SignalRows.own_lengths`) is scored on
    its own samples, not on its repeated row: each as ``predict`` scores its file (a record that the model's window
    does not fit in, which ``predict`` refuses, keeps its row)."""
    if np.ndim(signal) != 3 or np.shape(signal)[1] != len(LEADS):
        raise ValueError(f"signal must be (records, {len(LEADS)}, samples) mV; got shape {np.shape(signal)}")
    if np.shape(metadata) != (len(signal), len(META_FEATURES)):
        raise ValueError(f"metadata must be (records, {len(META_FEATURES)}) — one row of features per record of "
                         f"signal {np.shape(signal)}; got shape {np.shape(metadata)}")
    own = signal.own_lengths() if hasattr(signal, "own_lengths") else None
    short = None if own is None else (own < np.shape(signal)[-1]) & (own >= (window or 0))
    if short is not None and short.any():  # a manifest's records under 10 s: one batch shape per length
        return _by_length(model, signal, np.asarray(metadata), own, short, window, stride, aggregate, batch_size,
                          progress, description)
    segments = getattr(signal, "segments", None)
    if segments is not None:  # a manifest's records over 10 s: averaged over their segments, as predict does
        signal, owner = signal.each_segment()
        metadata = np.asarray(metadata)[owner]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())  # bf16-true training: bf16 weights
    out = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(description, total=len(signal))
        for i in range(0, len(signal), batch_size):
            x = torch.as_tensor(np.asarray(signal[i:i + batch_size], dtype=np.float32), device=device).to(dtype)
            m = torch.as_tensor(np.asarray(metadata[i:i + batch_size], dtype=np.float32), device=device).to(dtype)
            out.append(windowed_proba(model, x, m, window, stride, aggregate).float().cpu().numpy())
            bar.advance(task, len(x))
    model.train(was_training)
    probs = np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
    if segments is None or not len(probs):
        return probs
    sums = np.zeros((len(segments), probs.shape[1]))
    np.add.at(sums, owner, probs)
    return (sums / np.bincount(owner, minlength=len(segments))[:, None]).astype(np.float32)


def _by_length(model, signal, metadata: np.ndarray, own: np.ndarray, short: np.ndarray, window, stride, aggregate,
               batch_size, progress: bool = False, description: str = "Predicting") -> np.ndarray:
    """:func:`predict_proba` of rows whose records are shorter than their row, scored at their own lengths —
    ``batch_size`` rows of one length at a time, never a whole group in memory — and of the others as they are."""
    parts = [(np.flatnonzero(~short), None)] + [(np.flatnonzero(short & (own == n)), int(n))
                                                for n in np.unique(own[short])]
    out = None
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(description, total=len(own))
        for at, n in parts:
            for rows in ([at] if n is None else [at[i:i + batch_size] for i in range(0, len(at), batch_size)]):
                if not len(rows):
                    continue
                x = signal.take(rows) if n is None else np.asarray(signal[rows])[:, :, :n]
                p = predict_proba(model, x, metadata[rows], window, stride, aggregate, batch_size)
                out = np.zeros((len(own), p.shape[1]), p.dtype) if out is None else out
                out[rows] = p
                bar.advance(task, len(rows))
    return out
