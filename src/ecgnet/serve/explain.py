"""Why the model says so, for one record: Integrated Gradients of a class over the leads, and for
fusion models each modality's share — computed on demand with a bounded cost.

- **Attributions** come from :func:`ecgnet.explain.attributions.time_attributions` (IG of the class's
  logit, baseline 0 mV). ``scope="best"`` explains the inference window that decided the prediction
  (the one with the highest logit, as the library does); ``scope="segment"`` explains every window of
  the 10 s segment holding it and averages the overlaps, so the whole page is coloured. Cost: windows
  × ``n_steps`` forward + backward passes of one window; ``n_steps`` outside 4 to
  :attr:`ExplainLimits.max_steps` is refused and a segment has at most 10 s / stride windows. ``segment`` names the
  10 s the page should show: the segment explained, or (``best``) the 10 s segment holding the window.
- **Modalities** (models with more than one that can drop them, see
  :func:`ecgnet.explain.ablation.droppable`): the class's probability for this record with each
  modality missing (the model's own ``drop``, scored by the same :class:`~ecgnet.inference.predictor.Predictor`
  path as the prediction), and the mean gate/attention weights where the fusion exposes them.

The caller holds the model's lock (see :mod:`ecgnet.serve.models`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgnet.data.records import ECGRecord
from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.explain.ablation import droppable
from ecgnet.explain.attributions import decisive_window, time_attributions
from ecgnet.inference.predictor import LEAD_NAMES, Predictor
from ecgnet.inference.windows import segment_length
from ecgnet.models.windows import window_starts

SCOPES = ("best", "segment")
METHOD = "Integrated Gradients of the class logit w.r.t. the signal (baseline 0 mV), captum"


MIN_STEPS = 4


@dataclass(frozen=True)
class ExplainLimits:
    default_steps: int = 32
    max_steps: int = 64


def explain_record(predictor: Predictor, record: ECGRecord, target: str, metadata: dict, scope: str = "best",
                   n_steps: int | None = None, limits: ExplainLimits = ExplainLimits()) -> dict:
    """Attribution of ``target`` (a class name) over ``record``'s leads, plus modality contributions."""
    if target not in predictor.classes:
        raise ECGNetError(f"unknown class '{target[:40]}' for model {predictor.info['name']} "
                          f"(classes: {', '.join(predictor.classes)})")
    if scope not in SCOPES:
        raise ECGNetError(f"scope must be one of {', '.join(SCOPES)}, not '{scope[:40]}'")
    model = predictor.run.model  # attributions need the torch model, whatever the engine
    if not predictor.reads_signal:
        raise ECGNetError(f"model {predictor.info['name']} uses only the patient metadata: "
                          "nothing to attribute on the signal")
    if n_steps is not None and not MIN_STEPS <= n_steps <= limits.max_steps:
        refused = ECGNetError(f"steps must be between {MIN_STEPS} and {limits.max_steps} (Integrated Gradients "
                              f"steps; {limits.default_steps} when not given), not {n_steps}")
        refused.status = 422  # an out-of-range form field, as the API's other field checks answer
        raise refused
    steps = n_steps or limits.default_steps
    k = predictor.classes.index(target)
    meta = predictor.metadata_vector(**metadata)
    signal = record.signal
    segment = SECONDS * predictor.rate
    window = predictor.window or segment  # whole-segment models are explained one 10 s segment at a time
    stride = predictor.stride if predictor.window else segment
    covered = segment_length(signal.shape[-1], predictor.rate, predictor.long_records)  # the record itself: "windows"
    segments = [(s, min(covered, signal.shape[-1] - s)) for s in predictor.segments(signal.shape[-1])]
    window = min(window, segments[0][1])  # a record shorter than a whole-segment model's 10 s: all of it
    best, seg = decisive_window(model, signal, meta, k, window, stride, segments)  # among the windows scored
    length = dict(segments)[seg]
    starts = [best] if scope == "best" else [seg + s for s in window_starts(length, window, stride)]
    span_start, span_end = starts[0], min(starts[-1] + window, signal.shape[-1])
    total = np.zeros((signal.shape[0], span_end - span_start))
    count = np.zeros(span_end - span_start)
    windows = []
    for s in starts:
        a = time_attributions(model, signal, meta, k, window=window if window < signal.shape[-1] else None,
                              start=s, stride=stride, n_steps=steps)
        n = a.values.shape[-1]
        total[:, a.start - span_start:a.start - span_start + n] += a.values
        count[a.start - span_start:a.start - span_start + n] += 1
        windows.append({"start": a.start, "samples": n, "logit": round(a.logit, 4),
                        "probability": round(float(1 / (1 + np.exp(-a.logit))), 4),
                        "delta": round(a.delta, 5), "decisive": a.start == best})
    values = total / np.maximum(count, 1)
    scale = float(np.abs(values).max()) or 1.0
    return {"class": target, "method": METHOD, "n_steps": steps, "scope": scope, "rate": predictor.rate,
            "ensemble": bool(getattr(model, "whole_record", False)),  # members aggregate their own windows
            "start": span_start, "samples": span_end - span_start, "max_abs": scale,
            "segment": {"start": seg, "samples": length},  # what the page shows (samples at ``rate``)
            "leads": list(LEAD_NAMES),  # the rows of ``values``
            "values": np.round(values / scale, 3).tolist(),  # in units of max_abs (logit units)
            "windows": windows, "modalities": modality_contributions(predictor, signal, meta, k),
            **({"window_probabilities": f"the model's own, before site profile '{predictor.profile.site}' "
                "calibrates them (attributions explain the model's logit)"} if predictor.profile else {})}


def modality_contributions(predictor: Predictor, signal: np.ndarray, meta: np.ndarray, k: int) -> dict | None:
    """``{"probability", "without": {modality: probability}, "weights": {modality: mean weight} | None}``
    for a fusion model that can drop modalities; None for the others."""
    model = predictor.run.model  # attributions need the torch model, whatever the engine
    if not droppable(model):
        return None
    if hasattr(model, "last_weights"):
        model.last_weights = None
    full = float(predictor.predict_signal(signal, meta)[k])
    weights = getattr(model, "last_weights", None)  # every window of every segment, each counted once
    without = {}
    for modality in model.modalities:
        with model.drop({modality}):
            without[modality] = round(float(predictor.predict_signal(signal, meta)[k]), 4)
    parts = "members" if hasattr(model, "members") else "modalities"  # a late fusion drops its member runs
    return {"method": "the class probability with each modality missing (the model's own drop), and the mean "
                      "gate/attention weight of each modality over the record's windows where the fusion has one",
            "parts": parts, "probability": round(full, 4), "without": without,
            "weights": None if weights is None else
            dict(zip(model.modalities, np.round(weights.float().mean(0).numpy(), 4).tolist()))}
