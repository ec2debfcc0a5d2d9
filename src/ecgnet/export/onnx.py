"""A run exported to ONNX (the engine that runs it is :class:`ecgnet.inference.engines.OnnxModel`).

**What the graph computes.** The run's model on windows: ``signal`` (batch, 12, window samples, mV)
and ``metadata`` (batch, 8, scaled as in training) → ``logits`` (batch, classes), with a dynamic batch
axis. Cutting a record into windows and aggregating their probabilities stay in Python
(:mod:`ecgnet.models.windows`), shared with torch. Late-fusion models window inside (``whole_record``):
their graph takes a segment — 10 s, or a shorter record whole, as torch scores it; with ``--long-records
windows`` a longer record whole — of any length from the window up (:func:`segment_range`,
:func:`longest_input`: a dynamic time axis without an upper bound, the windowing traced from the same code as
one gather whose size follows the length, :func:`ecgnet.models.windows._crops`). A model without windows
(``crop_seconds`` null), or a late-fusion model with such a member, takes exactly 10 s × rate samples.

**What travels with it** (``metadata_props``, JSON strings): ``ecgnet.classes``, ``ecgnet.thresholds``
(from ``val/metrics.json``: fold 9's, or for a run trained on a manifest its validation rows' or
cross-validation's; ``null`` if the run has none), ``ecgnet.preprocessing`` (sampling rate, lead order,
units, the graph's input (windows, or segments of ``input_samples_min`` to ``input_samples_max`` samples, null:
no bound), window / stride / aggregation, the 10 s segments, the resampling, the metadata features, how they are
encoded and their scaler) and
``ecgnet.calls`` (the rule for a positive call and when ecgnet withholds every call) and ``ecgnet.source`` (run,
SHA-256 of ``model.safetensors``, where the thresholds were chosen, git revision, versions).

**How it is exported.** ``torch.onnx.export(dynamo=True)`` on a batch of the windows of one record
(the TorchScript exporter has no FFT); a late-fusion graph on one 10 s segment, its time axis declared dynamic
(``torch.export.Dim``, from the window up), and checked so in the graph: the exporter fixes an axis silently
when the traced code does not follow it. S4D layers are frozen at the length they see (a late-fusion member's
window: fixed whatever the segment's length). The exporter's own graph rewriting is left out: one of its
rules (onnxscript's ``x + 0 → x``, matched with ``abs_tol=1e-8``) deletes the ``+ 1e-8`` of the
spectrogram's ``log(power + 1e-8)``, so a bin of zero power gave −38 instead of −18.4 and probabilities
moved by up to 1e-2. Functions are inlined and constants folded (onnxscript), and ONNX Runtime's own
optimizer does the fusions when a session starts. The FFT and STFT are exported as products with a
float64-built basis, not as ONNX's DFT/STFT operators, which are less accurate (see
:mod:`ecgnet.modalities.dft`); a late-fusion graph's member probabilities are 1 / (1 + exp(−x)), not ONNX's
Sigmoid (:func:`ecgnet.models.windows.sigmoid`). Together these keep ONNX Runtime within 1e-5 of torch on
fold 10 — except models that use the spectral phase (up to 8e-4; docs/export.md says why).

**int8** (``quantize="int8"`` → ``RUN/model.int8.onnx``): :mod:`ecgnet.export.int8`, the same metadata
plus ``ecgnet.quantization`` (how it was made); ``predict --engine onnx-int8`` runs it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings

import torch

from ecgnet.data.leads import display
from ecgnet.data.patient import RANGES
from ecgnet.data.records import FLAT_LEAD_MV, MEDIAN_RANGE_MV, SAME_RANGE_SPREAD
from ecgnet.data.signals import LEADS, SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.models.encoders import s4d1d as s4d
from ecgnet.models.windows import window_starts
from ecgnet.runs.directory import Run
from ecgnet.runs.origin import provenance

FILENAME = "model.onnx"
# What ecgnet does around the graph, as ecgnet.preprocessing describes it; ecgnet refuses a RUN/model.onnx whose
# metadata describes another version (its text would mislead a deployment). 2: resampling pads with the line
# through a lead's ends (padtype='line'; 1, unnumbered: zeros), calls withheld as ecgnet.calls says. 3: a
# late-fusion graph takes any segment from input_samples_min to input_samples (2: exactly 10 s, so a record under
# 10 s failed with --engine onnx; its file is refused and exported again). 4: a late-fusion graph's time axis has no
# upper bound (input_samples_max null), so --long-records windows feeds it a whole record (3: at most 10 s; the
# same graph up to 10 s, so its file is still used for 10 s segments).
PREPROCESSING_VERSION = 4
OPSET = 20  # ONNX Runtime >= 1.17 runs it (docs/export.md)
METADATA_FEATURES = ["age", "sex (0 male, 1 female)", "height cm", "weight kg",
                     "age missing", "sex missing", "height missing", "weight missing"]


def takes_segments(run: Run) -> bool:
    """Whether the graph takes whole 10 s segments (late fusion, models without windows), not windows."""
    return bool(getattr(run.model, "whole_record", False)) or not run.window


def graph_input_samples(run: Run) -> int:
    """The length of the graph's example input: a window, or a whole 10 s segment (the most that a window graph or
    one of a fixed length takes; a late-fusion graph takes more: :func:`longest_input`)."""
    return SECONDS * run.rate if takes_segments(run) else run.window


def _fewest(model, segment: int) -> int:
    """The shortest segment a whole-record model scores as torch does with a dynamic time axis: each member
    windowed (late fusion, nested too) needs its window; a member without windows sees the segment whole, so the
    graph keeps one length (``segment``); so does a whole-record model of another kind."""
    members, windows = getattr(model, "members", None), getattr(model, "windows", None)
    if members is None or windows is None:
        return segment
    fewest = 0
    for name, member in members.items():
        window = windows[name][0]
        nested = getattr(member, "whole_record", False)
        fewest = max(fewest, _fewest(member, segment) if nested else window or segment)
    return fewest


def segment_range(run: Run) -> tuple[int, int]:
    """(fewest, most) samples of a segment of ecgnet's default covering that the graph takes, inclusive: the
    window twice for a window graph; for a late-fusion graph the run's window (ecgnet scores no shorter record) or
    a member's longer one, up to 10 s (and beyond: :func:`longest_input`); a model without windows: 10 s only."""
    most = graph_input_samples(run)
    if not takes_segments(run) or not getattr(run.model, "whole_record", False) or not run.window:
        return most, most
    return min(max(run.window, _fewest(run.model, most)), most), most


def longest_input(run: Run) -> int | None:
    """The most samples the graph takes: None (no bound) when its time axis is dynamic — a late-fusion graph
    windows any length as torch does, so ``--long-records windows`` feeds it a whole record —, else the window or
    the 10 s segment it was exported at."""
    fewest, most = segment_range(run)
    return None if fewest < most else most


def _short_records(run: Run) -> str:
    """The metadata's ``short_records``: how a record under 10 s meets the graph."""
    said = "a record shorter than 10 s is one segment of its own length: "
    if not takes_segments(run):
        return said + ("with input 'window', the windows over it (the last ending at its end); shorter than one "
                       "window (crop_seconds): not scored")
    fewest, most = segment_range(run)
    if fewest < most:
        return said + ("with input 'segment', the graph takes it whole (its time axis is dynamic: any length from "
                       "input_samples_min up, input_samples_max null) and windows it inside as over 10 s, the last "
                       "window ending at its end; shorter than input_samples_min: not scored")
    return said + ("with input 'segment' this graph takes exactly input_samples (= input_samples_min), so a record "
                   "shorter than 10 s is scored by ecgnet's torch engine only")


def _metadata(run: Run) -> dict[str, str]:
    data, segment = run.config.data, SECONDS * run.config.data.sampling_rate
    preprocessing = {
        "version": PREPROCESSING_VERSION,
        "sampling_rate": data.sampling_rate, "leads": [display(lead) for lead in LEADS], "units": "mV",
        "leads_derived": "a record with only I, II and V1–V6 gets III = II − I, aVR = −(I + II)/2, "
                         "aVL = I − II/2, aVF = II − I/2",
        "reading": "a device file's tail of ≥ 50 ms where all 12 leads hold the same value (a cart's calibration "
                   "pulse or blank tail) is cut before anything else (ecgnet.data.readers); a WFDB record is "
                   "never cut",
        "input": "segment" if takes_segments(run) else "window",
        "input_samples": graph_input_samples(run),  # a window, or a 10 s segment
        "input_samples_min": segment_range(run)[0],  # the fewest (= input_samples but for a late-fusion segment)
        "input_samples_max": longest_input(run),  # the most (null: no bound, late fusion; else input_samples)
        "segment_seconds": SECONDS, "window": data.window, "stride": data.stride,
        "windows_per_segment": len(window_starts(segment, data.window or segment, data.stride)),
        "crop_seconds": data.crop_seconds, "stride_seconds": data.stride_seconds, "aggregate": data.aggregate,
        "windowing": "ecgnet.models.windows.window_starts: windows every stride, the last one ending at "
                     "the segment's end; sigmoid, then the aggregate over windows per segment; records longer "
                     "than 10 s: 10 s segments averaged (ecgnet.inference.windows)",
        "segments": "a record of n samples is cut into 10 s segments starting every 10 s, the last one ending at "
                    "the record's end (so it may overlap the one before; a 10 s record is one segment); the "
                    "record's probability is the mean of its segments' (ecgnet predict --long-records windows instead "
                    "takes the maximum over every window of the whole record: a graph of input 'segment' with "
                    "input_samples_max null is fed the whole record)",
        "short_records": _short_records(run),
        "resampling": "a record at another rate: scipy.signal.resample_poly along time, up / down = the model's "
                      "rate / the record's as a fraction (denominator ≤ 1000), padtype='line', on the float64 "
                      "signal in mV, then cast to float32",
        "resample": {"function": "scipy.signal.resample_poly", "up_down": "Fraction(model rate / record rate)"
                     ".limit_denominator(1000)", "padtype": "line", "axis": "time", "dtype": "float64"},
        "metadata_features": METADATA_FEATURES,
        "metadata_encoding": "age in years, any age over 89 read as 90 (PTB-XL's 300 and '>89' too; a file's "
                             "other '>N', or an age outside 0–150, is unknown), sex 0 male / 1 female (a file's M, "
                             "F, male, female in any case; anything else unknown), height cm, weight kg (a height "
                             "or weight ≤ 0 is unknown); each scaled (x − "
                             "mean) / std with metadata_scaler; a value not known (absent, or not finite such as a "
                             "header's 'NaN'): its scaled feature 0 and its 'missing' flag 1 (flags unscaled, 0 or "
                             "1) — never NaN, which the graph would return as NaN logits; metadata_scaler null: "
                             "mean 0, std 1",
        "metadata_source": "what the user gives (refused outside metadata_given_ranges, inclusive; an age of 300 "
                           "is PTB-XL's over 89), else the file's own fields: a WFDB header's '#Age:' and '#Sex:' "
                           "comment lines, a device file's patient age and sex",
        "metadata_given_ranges": {name: [low, high] for name, (low, high, _) in RANGES.items()},  # a user's value
        # outside its range (age also 300: PTB-XL's over 89) is refused by ecgnet, not read as unknown
        "metadata_scaler": run.info.get("metadata_scaler"),
        "uses_metadata": run.uses_metadata,
        "metadata_when_unused": "a model that does not use the metadata still takes the input: any (batch, 8) "
                                "float32 of the signal's batch size, e.g. zeros",
    }
    calls = {
        "positive": "probability >= the class's threshold (ecgnet.thresholds)",
        "reads_signal": run.reads_signal,
        "withheld": [  # ecgnet gives probabilities but no positive/negative calls when … (the amplitude rules
            # only for a model that reads the ECG)
            f"a lead is flat: its range (max − min of the record, mV) < {FLAT_LEAD_MV}",
            f"every lead spans the same range: population std / mean of the 12 ranges < {SAME_RANGE_SPREAD} "
            "(when the mean > 0)",
            f"the median lead range is outside {MEDIAN_RANGE_MV[0]:g}–{MEDIAN_RANGE_MV[1]:g} mV",
            "the file gives a lead's gain as 0 (uncalibrated amplitudes; a WFDB signal line without a gain has "
            "WFDB's default, 200 per mV, and is read)",
            "reads_signal is false and none of age, sex, height and weight is known",
        ],
        "judged_on": "the signal as recorded, before resampling; the amplitude rules apply to a model that reads the "
                     "ECG (reads_signal true) only",
        "amplitude_bounds": {  # the rules above as numbers
            "flat_lead_range_mv": FLAT_LEAD_MV, "same_range_spread": SAME_RANGE_SPREAD,
            "median_range_mv": list(MEDIAN_RANGE_MV),
            "definitions": "range: max − min of a lead over the record, in mV; withheld when any lead's range < "
                           "flat_lead_range_mv; when the population std (ddof 0) / mean of the 12 ranges < "
                           "same_range_spread, judged only when that mean > 0; when the median of the 12 ranges "
                           "is outside median_range_mv (inclusive bounds)"},
    }
    origin = provenance()
    source = {"run": run.info.get("name"), "model": run.config.model.name,
              "task": run.info.get("task"), "weights_sha256": run.weights_sha256,
              "thresholds_chosen_on": run.thresholds_from,
              "git_revision": origin["git_revision"], "git_dirty": origin["git_dirty"],
              "torch": torch.__version__, "exported": origin["date"]}
    return {"ecgnet.classes": json.dumps(run.classes), "ecgnet.thresholds": json.dumps(run.thresholds),
            "ecgnet.preprocessing": json.dumps(preprocessing), "ecgnet.calls": json.dumps(calls),
            "ecgnet.source": json.dumps(source)}


@contextlib.contextmanager
def _quiet(logger: str):
    """The exporter logs notes (e.g. "torchvision is not installed") that are no user's concern."""
    log = logging.getLogger(logger)
    level, log.level = log.level, logging.ERROR
    try:
        yield
    finally:
        log.setLevel(level)


def _reason(error: Exception) -> str:
    """The line of an exporter error that names what failed (e.g. "No ONNX function found for aten.exp … the
    complex-valued input" — S4D's kernel), else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    found = next((line.split(">: ", 1)[-1] for line in lines if "No ONNX function found" in line), lines[0])
    return " ".join(found.replace("\x1b[96m", "").replace("\x1b[0m", "").split())[:300]


def onnx_bytes(run: Run) -> bytes:
    """The serialised ONNX model of a run's model."""
    import onnx
    import onnxscript.optimizer

    n = len(window_starts(SECONDS * run.rate, run.window or SECONDS * run.rate, run.stride))
    g = torch.Generator().manual_seed(0)
    example = (0.3 * torch.randn(n, len(LEADS), graph_input_samples(run), generator=g),
               torch.zeros(n, len(METADATA_FEATURES)))
    batch = torch.export.Dim("batch")
    fewest, most = segment_range(run)
    # no upper bound: the windowing follows any length (an upper bound of 10 s gave the same graph, 2 Slice nodes
    # fewer, and the same logits to the bit on 2.5–10 s)
    signal_axes = {0: batch} if fewest == most else {0: batch, 2: torch.export.Dim("samples", min=fewest)}
    model = copy.deepcopy(run.model).eval()
    s4d.freeze(model, *example)  # S4D layers: their convolution as a fixed filter (ONNX has no complex exp)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, example, dynamo=True, optimize=False, opset_version=OPSET,
                                        input_names=["signal", "metadata"], output_names=["logits"],
                                        dynamic_shapes=(signal_axes, {0: batch}), verbose=False)
    except Exception as e:  # the exporter's errors are long: the operator it could not translate, if it says
        raise ECGNetError(f"{run.dir}: cannot export {run.config.model.name} to ONNX ({_reason(e)})") from e
    time_axis = program.model.graph.inputs[0].shape[2]  # an int when fixed, a symbol when dynamic
    if fewest < most and isinstance(time_axis, int):  # the exporter fixed it: the metadata's range would be false
        raise ECGNetError(f"{run.dir}: the ONNX exporter fixed the graph's time axis at {time_axis} "
                          f"samples instead of {fewest} or more (something in {run.config.model.name} follows "
                          "the example's length, not the input's)")
    with _quiet("onnxscript"), contextlib.redirect_stdout(io.StringIO()):
        onnxscript.optimizer.inline(program.model)
        onnxscript.optimizer.fold_constants(program.model)
        onnxscript.optimizer.remove_unused_nodes(program.model)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, _metadata(run))
    return proto.SerializeToString()
