"""The clinical report: one printable A4 page per record (``ecgnet report RECORD --pdf out.pdf``).

:func:`make_report` reads the record (any supported format), diagnoses it with a run and draws the page
(:mod:`ecgnet.report.pdf`, geometry in :mod:`ecgnet.report.layout`): the trace is drawn from the signal at
its source rate, the diagnosis made on the signal at the model's rate, as ``ecgnet predict`` makes it.
"""

from __future__ import annotations

from pathlib import Path

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.readers import read_ecg_any


def make_report(record_path: str | Path, out: str | Path, checkpoint: str | Path, resample: bool = False,
                site: str | None = None, long_records: str = "segments", limits: ReadLimits = DEFAULT_LIMITS,
                **metadata) -> dict:
    """Write the report of ``record_path`` to ``out``; returns predict's result for it. ``site``: a site
    profile of the run (``ecgnet calibrate``) whose calibration and thresholds make the calls."""
    from ecgnet.inference.predictor import Predictor
    from ecgnet.report.pdf import model_identity, render

    predictor = Predictor(checkpoint, long_records=long_records, site=site)
    record = read_ecg_any(record_path, predictor.rate, resample=resample, limits=limits)
    result = predictor.predict_record(record, **metadata)
    drawn = record
    if record.source_rate != record.sampling_rate:  # the sharper trace: the signal as recorded
        drawn = read_ecg_any(record_path, record.source_rate, limits=limits)
    render(record, result, model_identity(predictor), out, signal=drawn.signal, rate=drawn.sampling_rate)
    return result
