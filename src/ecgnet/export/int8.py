"""int8 ONNX: the quantization recipe measured by ``benchmarks/bench_engines.py``, written by
``ecgnet export RUN --quantize int8`` (the benchmark imports it from here: there is one recipe).

**What is quantized.** ONNX Runtime static quantization (QDQ; signed 8-bit per-channel weights,
unsigned 8-bit activations) of the encoders' convolutions, except each encoder's first one. The
spectral frontends (DFT products feeding a log), the Transformer and the linear layers stay fp32:
quantizing the whole graph moved fold-10 probabilities by up to 0.63 (static) and 0.20 (dynamic).

**Calibration.** 99.99th percentile of the activations on the graph inputs (windows, or 10 s segments)
of 128 records (drawn with seed 1) of PTB-XL's training folds 1–8, or of a manifest of the site's own records
(``ecgnet export RUN --quantize int8 --calibration-manifest M.csv``; by default, without PTB-XL, the rows the run
trained on of the manifest it was trained on): :mod:`ecgnet.export.int8_records` chooses and reads them (each
record's centre 10 s, a shorter one's own samples), their patient data scaled with the run's own scaler as
``predict`` scales them. Each record's windows lie within its own samples; a late-fusion graph takes a record under
10 s whole, as one segment of its own length (its time axis is dynamic), so such records are calibrated on too —
ONNX Runtime then collects the ranges batch by batch (``CalibStridedMinMax``: batches of several lengths cannot be
stacked) and merges the histograms. ``ecgnet.quantization`` says what was drawn.

**What it costs.** Fold-10 macro AUC unchanged (paired Δ within ±0.0003), mean |Δp| about 0.005, but
single records move by up to 0.5 and about 0.5 % of the positive/negative calls flip (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np

from ecgnet.errors import ECGNetError
from ecgnet.export.int8_records import CALIBRATION_RECORDS, CALIBRATION_SEED, calibration_source, manifest_calibration
from ecgnet.export.onnx import graph_input_samples, onnx_bytes
from ecgnet.models.windows import window_starts
from ecgnet.runs.directory import Run

FILENAME = "model.int8.onnx"
PERCENTILE = 99.99


def encoder_of(weight: str) -> str | None:
    """Which encoder a (possibly batch-norm-fused) convolution weight belongs to, e.g. 'branches.time.'."""
    name = weight.removeprefix("ConvBnFusion_W_")
    return name.split("encoder.")[0] if name.startswith("encoder.") or ".encoder." in name else None


def convolutions_to_quantize(graph) -> list[str]:
    """The encoders' Conv nodes but each encoder's first (the graph is in topological order)."""
    first, convs = set(), []
    for node in graph.node:
        encoder = encoder_of(node.input[1]) if node.op_type == "Conv" else None
        if encoder is not None:
            if encoder in first:
                convs.append(node.name)
            first.add(encoder)
    return convs


def calibration_split(data):
    """The training-fold records that calibrate int8, from a :class:`ecgnet.data.dataset.PTBXL`."""
    return data.split("train", max_records=CALIBRATION_RECORDS, seed=CALIBRATION_SEED)


def calibration_windows(signal: np.ndarray, metadata: np.ndarray, lengths, window: int, stride: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(crops, their metadata): each record's windows at :func:`window_starts` of its own ``lengths`` (a
    record under 10 s is the start of its row), window-major — every record's first window, then every second
    one of the records that have one, … (records of one length: ``signal[:, :, s:s + window]`` for each start)."""
    starts = [window_starts(int(n), window, stride) for n in lengths]
    crops, meta = [], []
    for k in range(max(map(len, starts))):
        rows = [i for i, s in enumerate(starts) if k < len(s)]
        at = {starts[i][k] for i in rows}
        if len(at) == 1 and len(rows) == len(signal):  # one start for every record: one slice
            crops.append(signal[:, :, at.pop():][:, :, :window])
        else:
            crops.append(np.stack([signal[i, :, starts[i][k]:starts[i][k] + window] for i in rows]))
        meta.append(metadata[rows])
    return np.concatenate(crops), np.concatenate(meta)


def batch_size(count: int, most: int = 64) -> int:
    """The largest size up to ``most`` that cuts ``count`` windows into equal batches: ONNX Runtime's percentile
    calibration stacks every batch's activations into one array, which a shorter last batch would make ragged
    (128 records of equal windows: 64, as always)."""
    return max(b for b in range(1, most + 1) if count % b == 0)


def calibration_batches(signal: np.ndarray, metadata: np.ndarray, lengths, window: int, stride: int,
                        most: int = 64) -> list[dict[str, np.ndarray]]:
    """The graph's calibration inputs, batch by batch (``signal``, ``metadata``): the windows of the records of at
    least ``window`` samples (:func:`calibration_windows`) in equal batches of up to ``most``; then a late-fusion
    graph's records under its 10 s ``window`` each whole (its own samples, as predict feeds it), with the other
    records of its length in batches of up to ``most`` (a window graph's records are never shorter)."""
    lengths = np.asarray(lengths)
    whole = lengths >= window
    batches = []
    if whole.any():
        every = whole.all()  # PTB-XL's records and any manifest of 10 s ones: the arrays as they are
        crops, meta = calibration_windows(signal if every else signal[whole], metadata if every else metadata[whole],
                                          lengths[whole], window, stride)
        size = batch_size(len(crops), most)
        batches += [{"signal": crops[i:i + size], "metadata": meta[i:i + size].astype(np.float32)}
                    for i in range(0, len(crops), size)]
    for n in sorted(set(lengths[~whole].tolist())):
        rows = np.flatnonzero(lengths == n)
        batches += [{"signal": np.ascontiguousarray(signal[rows[i:i + most], :, :n]),
                     "metadata": metadata[rows[i:i + most]].astype(np.float32)} for i in range(0, len(rows), most)]
    return batches


def _calibration_reader(batches: list[dict[str, np.ndarray]]):
    """An ONNX Runtime reader of ``batches`` (with ``set_range``: collected a range at a time when they differ)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.set_range(0, len(batches))

        def __len__(self):
            return len(batches)

        def set_range(self, start_index: int, end_index: int):
            self.batches = iter(batches[start_index:end_index])

        def get_next(self):
            return next(self.batches, None)

    return Batches()


def recipe(convolutions: int, records: int, manifest: dict | None = None) -> dict:
    """How the file was made: the ``ecgnet.quantization`` metadata. ``manifest``: calibrated on a manifest's records
    (:func:`~ecgnet.export.int8_records.manifest_calibration`'s account of them: ``calibration_manifest``), not
    PTB-XL's training folds."""
    import onnxruntime

    on = f"the manifest {Path(manifest['path']).name}" if manifest else "the training folds 1-8"
    return {"type": "int8", "method": "ONNX Runtime static quantization, QDQ format",
            "weights": "int8, per channel", "activations": "uint8",
            "quantized": f"{convolutions} convolutions: the encoders' convolutions except each encoder's "
                         "first; spectral frontends, Transformer and linear layers stay fp32",
            "calibration": f"{PERCENTILE}th percentile on {records} records of {on}",
            **({"calibration_manifest": manifest} if manifest else {}),
            "onnxruntime": onnxruntime.__version__, "recipe": "ecgnet.export.int8"}


def quantize_int8(fp32: bytes, calibration, window: int, stride: int, name: str = "model",
                  manifest: dict | None = None) -> bytes:
    """The int8 model of an fp32 export, calibrated on the windows (``window`` samples every ``stride``; a
    late-fusion graph's: its 10 s segments) of ``calibration`` (a training-fold split, or
    :class:`~ecgnet.export.int8_records.ManifestRecords`, whose records may be shorter — then ``manifest`` describes
    them in the metadata): :func:`calibration_batches`; the fp32 metadata is kept, ``ecgnet.quantization`` added."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    signal = np.asarray(calibration.signal, dtype=np.float32)  # an array, or a view of the signal cache
    lengths = getattr(calibration, "lengths", None)  # None: PTB-XL's records, 10 s each
    batches = calibration_batches(signal, np.asarray(calibration.metadata),
                                  np.full(len(signal), signal.shape[-1]) if lengths is None else lengths,
                                  window, stride)
    options = {"CalibPercentile": PERCENTILE}
    if len({b["signal"].shape for b in batches}) > 1:  # ORT stacks one collection's batches: one at a time, merged
        options["CalibStridedMinMax"] = 1
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):  # ORT's progress notes
        source, prepared, out = (Path(tmp) / f for f in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(fp32)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        convs = convolutions_to_quantize(onnx.load(str(prepared)).graph)
        if not convs:  # an empty list would quantize every node
            raise ECGNetError(f"{name}: nothing to quantize to int8 (no encoder convolution after the first)")
        quantize_static(str(prepared), str(out), _calibration_reader(batches),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_quantize=convs,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options=options)
        model = onnx.load(str(out))
    props = {p.key: p.value for p in onnx.load_from_string(fp32).metadata_props}
    props["ecgnet.quantization"] = json.dumps(recipe(len(convs), len(calibration.signal), manifest))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


def int8_bytes(run: Run, data=None, manifest=None) -> bytes:
    """The int8 model of a run, calibrated for the run's task and sampling rate on PTB-XL (``data`` or
    $ECGNET_DATA) or on a manifest's records (``manifest``; or the run's training manifest when PTB-XL is not
    given): :func:`~ecgnet.export.int8_records.calibration_source`."""
    source = calibration_source(run.info, data, manifest)
    window, name = graph_input_samples(run), str(run.dir)
    if source.manifest is not None:  # its records first: too few is said before the export's seconds
        records, account = manifest_calibration(run, source.manifest, source.from_run)
        return quantize_int8(onnx_bytes(run), records, window, run.stride, name=name, manifest=account)
    from ecgnet.data.dataset import PTBXL

    config = run.config.data
    calibration = calibration_split(PTBXL(source.root, config.task, config.sampling_rate))
    return quantize_int8(onnx_bytes(run), calibration, window, run.stride, name=name)
