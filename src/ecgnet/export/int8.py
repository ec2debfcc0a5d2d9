"""int8 ONNX: the quantization recipe measured by ``benchmarks/bench_engines.py``, written by
``ecgnet export RUN --quantize int8`` (the benchmark imports it from here: there is one recipe).

**What is quantized.** ONNX Runtime static quantization (QDQ; signed 8-bit per-channel weights,
unsigned 8-bit activations) of the encoders' convolutions, except each encoder's first one. The
spectral frontends (DFT products feeding a log), the Transformer and the linear layers stay fp32:
quantizing the whole graph moved fold-10 probabilities by up to 0.63 (static) and 0.20 (dynamic).

**Calibration.** 99.99th percentile of the activations on the graph inputs (windows, or 10 s segments)
of 128 records of the training folds 1–8 (drawn with seed 1), so an export needs PTB-XL.

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
from ecgnet.export.onnx import graph_input_samples, onnx_bytes
from ecgnet.models.windows import window_starts
from ecgnet.runs.directory import Run

FILENAME = "model.int8.onnx"
CALIBRATION_RECORDS, CALIBRATION_SEED, PERCENTILE = 128, 1, 99.99


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


def _calibration_reader(calibration, window: int, stride: int, batch: int = 64):
    from onnxruntime.quantization import CalibrationDataReader

    signal = np.asarray(calibration.signal, dtype=np.float32)  # an array, or a view of the signal cache
    starts = window_starts(signal.shape[-1], window, stride)
    crops = np.concatenate([signal[:, :, s:s + window] for s in starts])
    meta = np.repeat(calibration.metadata[None], len(starts), 0).reshape(-1, calibration.metadata.shape[-1])

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"signal": crops[i:i + batch], "metadata": meta[i:i + batch].astype(np.float32)}
                                 for i in range(0, len(crops), batch)])

        def get_next(self):
            return next(self.batches, None)

    return Windows()


def recipe(convolutions: int, records: int) -> dict:
    """How the file was made: the ``ecgnet.quantization`` metadata."""
    import onnxruntime

    return {"type": "int8", "method": "ONNX Runtime static quantization, QDQ format",
            "weights": "int8, per channel", "activations": "uint8",
            "quantized": f"{convolutions} convolutions: the encoders' convolutions except each encoder's "
                         "first; spectral frontends, Transformer and linear layers stay fp32",
            "calibration": f"{PERCENTILE}th percentile on {records} records of the training folds 1-8",
            "onnxruntime": onnxruntime.__version__, "recipe": "ecgnet.export.int8"}


def quantize_int8(fp32: bytes, calibration, window: int, stride: int, name: str = "model") -> bytes:
    """The int8 model of an fp32 export, calibrated on the windows (``window`` samples every ``stride``)
    of ``calibration`` (a training-fold split); the fp32 metadata is kept, ``ecgnet.quantization`` added."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):  # ORT's progress notes
        source, prepared, out = (Path(tmp) / f for f in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(fp32)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        convs = convolutions_to_quantize(onnx.load(str(prepared)).graph)
        if not convs:  # an empty list would quantize every node
            raise ECGNetError(f"{name}: nothing to quantize to int8 (no encoder convolution after the first)")
        quantize_static(str(prepared), str(out), _calibration_reader(calibration, window, stride),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_quantize=convs,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": PERCENTILE})
        model = onnx.load(str(out))
    props = {p.key: p.value for p in onnx.load_from_string(fp32).metadata_props}
    props["ecgnet.quantization"] = json.dumps(recipe(len(convs), len(calibration.signal)))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


def int8_bytes(run: Run, data=None) -> bytes:
    """The int8 model of a run, calibrated on PTB-XL (``data`` or $ECGNET_DATA) for the run's task and
    sampling rate."""
    from ecgnet.data.dataset import PTBXL
    from ecgnet.data.ptbxl import data_root

    config = run.config.data
    try:
        root = data_root(data)
    except ECGNetError as e:
        raise ECGNetError(f"--quantize int8 calibrates on PTB-XL's training folds: {e}") from None
    calibration = calibration_split(PTBXL(root, config.task, config.sampling_rate))
    return quantize_int8(onnx_bytes(run), calibration, graph_input_samples(run), run.stride, name=str(run.dir))
