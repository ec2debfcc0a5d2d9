"""Any 12-lead ECG file → :class:`~ecgnet.data.records.ECGRecord`: one entry point, :func:`read_ecg_any`.

    detect (by content) → the format's reader at the source rate → amplitude checks on the signal as
    recorded → resample to the model's rate → ECGRecord (format, derived_leads, statements, patient)

Formats (:data:`FORMATS`): ``wfdb`` (:func:`ecgnet.data.records.read_ecg`), ``muse-xml``, ``philips-xml``,
``hl7-aecg``, ``cardiosoft-xml`` (UK Biobank's), ``dicom``, ``scp-ecg``, ``edf`` — one module each, every one
a ``read(path, limits)`` that checks the file's claims against :class:`~ecgnet.data.limits.ReadLimits` before
decoding. The device's statements are carried beside the signal for display; they are never a model input.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path


from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.patient import stated_age_warning
from ecgnet.data.readers.detect import FORMATS, READ, detect
from ecgnet.data.records import NO_ECG, ECGRecord, amplitude_problems, at_model_rate, read_ecg, resolution_warning
from ecgnet.errors import ECGNetError

__all__ = ["FORMATS", "READ", "detect", "read_ecg_any", "read_source"]

_MODULES = {"muse-xml": "muse", "philips-xml": "philips", "hl7-aecg": "hl7_aecg", "cardiosoft-xml": "cardiosoft",
            "dicom": "dicom", "scp-ecg": "scp", "edf": "edf"}


def read_source(path: str | os.PathLike, limits: ReadLimits = DEFAULT_LIMITS, fmt: str | None = None) -> ECGRecord:
    """A non-WFDB file at its source rate, unchecked amplitudes (``fmt``: skip detection)."""
    path = Path(path)
    fmt = fmt or detect(path)
    if fmt == "wfdb":
        raise ECGNetError(f"{path}: a WFDB record: read it with read_ecg_any")
    module = importlib.import_module(f"ecgnet.data.readers.{_MODULES[fmt]}")
    try:
        return module.read(path, limits)
    except ECGNetError:
        raise
    except (MemoryError, RecursionError) as e:
        raise ECGNetError(f"{path}: too large or too deeply nested to read as {fmt} ({type(e).__name__})") from e


def read_ecg_any(path: str | os.PathLike, sampling_rate: float = 100, resample: bool = False,
                 limits: ReadLimits = DEFAULT_LIMITS) -> ECGRecord:
    """Read any supported ECG file (see the module docstring) as 12 leads in mV at ``sampling_rate``.

    A source rate other than ``sampling_rate`` is an error unless ``resample``. Amplitude problems (a
    per-lead normalised signal, a median lead range outside 0.3–12 mV, a flat lead) are warnings and make
    ``amplitude_trusted`` False; they are judged on the signal as recorded, before resampling. A record whose 12
    leads are identical (no ECG was recorded: said once by the reader) gets none of them: they would say it again."""
    path = Path(path)
    fmt = detect(path)
    if fmt == "wfdb":
        return read_ecg(path, sampling_rate, resample=resample, limits=limits)
    rec = read_source(path, limits, fmt)
    rec.warnings += [w for w in [stated_age_warning(rec.age, rec.patient, rec.format)] if w]
    if NO_ECG in rec.warnings:  # 12 identical leads: 'every lead spans the same 1 mV', 'flat lead' … would repeat it
        problems = []
    else:
        problems = amplitude_problems(rec.signal)
        rec.warnings += problems + [w for w in [resolution_warning(rec.signal)] if w]
    rec.amplitude_trusted = rec.amplitude_trusted and not problems
    rec.signal = at_model_rate(rec.signal, rec.source_rate, sampling_rate, resample, path, rec.notes)
    rec.sampling_rate = float(sampling_rate)
    return rec
