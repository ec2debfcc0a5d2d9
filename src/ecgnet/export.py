"""A run exported to ONNX, and an ONNX Runtime engine with the interface the windowing code calls.

**What the graph computes.** The run's model on windows: ``signal`` (batch, 12, window samples, mV)
and ``metadata`` (batch, 8, scaled as in training) → ``logits`` (batch, classes), with a dynamic batch
axis. Cutting a record into windows and aggregating their probabilities stay in Python
(:mod:`ecgnet.evaluation.inference`), shared with torch: :class:`OnnxModel` is called like the torch
model, ``model(signal, metadata) → logits``, so ``windowed_proba`` and :class:`ecgnet.predict.Predictor`
use it unchanged. Late-fusion models window inside (``whole_record``): their graph takes whole 10 s
segments, the windowing traced from the same code, and so needs exactly 10 s × rate samples.

**What travels with it** (``metadata_props``, JSON strings): ``ecgnet.classes``, ``ecgnet.thresholds``
(fold-9, from ``val/metrics.json``; ``null`` if the run has none), ``ecgnet.preprocessing`` (sampling
rate, lead order, units, window / stride / aggregation, the 10 s segments, the metadata features and
their scaler) and ``ecgnet.source`` (run, SHA-256 of ``model.safetensors``, git revision, versions).

**How it is exported.** ``torch.onnx.export(dynamo=True)`` on a batch of the windows of one record
(the TorchScript exporter has no FFT). The exporter's own graph rewriting is left out: one of its
rules (onnxscript's ``x + 0 → x``, matched with ``abs_tol=1e-8``) deletes the ``+ 1e-8`` of the
spectrogram's ``log(power + 1e-8)``, so a bin of zero power gave −38 instead of −18.4 and probabilities
moved by up to 1e-2. Functions are inlined and constants folded (onnxscript), and ONNX Runtime's own
optimizer does the fusions when a session starts. The FFT and STFT are exported as products with a
float64-built basis, not as ONNX's DFT/STFT operators, which are less accurate (see
:mod:`ecgnet.modalities.dft`). Together these keep ONNX Runtime within 1e-6 of torch on fold 10.

**int8** (``quantize="int8"`` → ``RUN/model.int8.onnx``): :mod:`ecgnet.export_int8`, the same metadata
plus ``ecgnet.quantization`` (how it was made); ``predict --engine onnx-int8`` runs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from ecgnet.checksum import sha256_file
from ecgnet.data.signals import LEADS, SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.inference import window_starts
from ecgnet.fileio import atomic_path

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)  # ecgnet.export_int8
FILENAME = "model.onnx"
METADATA_FEATURES = ["age", "sex (0 male, 1 female)", "height cm", "weight kg",
                     "age missing", "sex missing", "height missing", "weight missing"]


def weights_sha256(run_dir: Path) -> str:
    return sha256_file(Path(run_dir) / "model.safetensors")


def takes_segments(predictor) -> bool:
    """Whether the graph takes whole 10 s segments (late fusion, models without windows), not windows."""
    return bool(getattr(predictor.model, "whole_record", False)) or not predictor.window


def graph_input_samples(predictor) -> int:
    return SECONDS * predictor.rate if takes_segments(predictor) else predictor.window


def _metadata(predictor) -> dict[str, str]:
    from ecgnet.runs import provenance

    data, segment = predictor.config.data, SECONDS * predictor.config.data.sampling_rate
    preprocessing = {
        "sampling_rate": data.sampling_rate, "leads": list(LEADS), "units": "mV",
        "input": "segment" if takes_segments(predictor) else "window",
        "input_samples": graph_input_samples(predictor),
        "segment_seconds": SECONDS, "window": data.window, "stride": data.stride,
        "windows_per_segment": len(window_starts(segment, data.window or segment, data.stride)),
        "crop_seconds": data.crop_seconds, "stride_seconds": data.stride_seconds, "aggregate": data.aggregate,
        "windowing": "ecgnet.evaluation.inference.window_starts: windows every stride, the last one ending at "
                     "the segment's end; sigmoid, then the aggregate over windows per segment; records longer "
                     "than 10 s: 10 s segments averaged (ecgnet.predict)",
        "metadata_features": METADATA_FEATURES,
        "metadata_scaler": predictor.info.get("metadata_scaler"),
        "uses_metadata": predictor.uses_metadata,
    }
    origin = provenance()
    source = {"run": predictor.info.get("name"), "model": predictor.config.model.name,
              "task": predictor.info.get("task"), "weights_sha256": weights_sha256(predictor.run_dir),
              "git_revision": origin["git_revision"], "git_dirty": origin["git_dirty"],
              "torch": torch.__version__, "exported": origin["date"]}
    return {"ecgnet.classes": json.dumps(predictor.classes), "ecgnet.thresholds": json.dumps(predictor.thresholds),
            "ecgnet.preprocessing": json.dumps(preprocessing), "ecgnet.source": json.dumps(source)}


@contextlib.contextmanager
def _quiet(logger: str):
    """The exporter logs notes (e.g. "torchvision is not installed") that are no user's concern."""
    log = logging.getLogger(logger)
    level, log.level = log.level, logging.ERROR
    try:
        yield
    finally:
        log.setLevel(level)


def onnx_bytes(predictor) -> bytes:
    """The serialised ONNX model of a torch-engine :class:`~ecgnet.predict.Predictor`'s model."""
    import onnx
    import onnxscript.optimizer

    n = len(window_starts(SECONDS * predictor.rate, predictor.window or SECONDS * predictor.rate, predictor.stride))
    g = torch.Generator().manual_seed(0)
    example = (0.3 * torch.randn(n, len(LEADS), graph_input_samples(predictor), generator=g),
               torch.zeros(n, len(METADATA_FEATURES)))
    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(predictor.model.eval(), example, dynamo=True, optimize=False,
                                        input_names=["signal", "metadata"], output_names=["logits"],
                                        dynamic_shapes=({0: batch}, {0: batch}), verbose=False)
    except Exception as e:  # the exporter's errors are long; the first line says which operator
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ECGNetError(f"{predictor.run_dir}: cannot export {predictor.config.model.name} to ONNX ({first})") from e
    with _quiet("onnxscript"), contextlib.redirect_stdout(io.StringIO()):
        onnxscript.optimizer.inline(program.model)
        onnxscript.optimizer.fold_constants(program.model)
        onnxscript.optimizer.remove_unused_nodes(program.model)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, _metadata(predictor))
    return proto.SerializeToString()


def export(checkpoint: str | Path, fmt: str = "onnx", out: str | Path | None = None,
           quantize: str | None = None, data: str | Path | None = None) -> Path:
    """Export a run (directory, its model.safetensors or a bundled name) to ``out`` (default RUN/model.onnx,
    or RUN/model.int8.onnx with ``quantize="int8"``, calibrated on PTB-XL: ``data`` or $ECGNET_DATA)."""
    from ecgnet import export_int8
    from ecgnet.predict import Predictor

    if fmt not in FORMATS:
        raise ECGNetError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ECGNetError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not '{quantize}'")
    predictor = Predictor(checkpoint)
    path = Path(out) if out else predictor.run_dir / (export_int8.FILENAME if quantize else FILENAME)
    model = export_int8.int8_bytes(predictor, data) if quantize else onnx_bytes(predictor)
    with atomic_path(path) as tmp:
        tmp.write_bytes(model)
    return path


class OnnxModel:
    """An exported model behind the torch model's call: ``model(signal, metadata) → logits`` tensors.

    ``threads``: ONNX Runtime intra-op threads (default: torch's current number, so both engines
    follow ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` alike).
    """

    def __init__(self, model: str | Path | bytes, threads: int | None = None, name: str | None = None):
        import onnxruntime as ort

        self.name = name or str(model if not isinstance(model, bytes) else "ONNX model")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: not ORT's notes on nodes it could not fold
        # no busy-waiting between calls: the cores are shared (torch, other jobs); on 2 shared cores
        # spinning made 2-thread calls slower (fusion model: 8.4–12.3 ms against 6.9 ms)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ECGNetError(f"{self.name}: not a readable ONNX model ({first})") from e
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.classes = json.loads(props["ecgnet.classes"])
            self.thresholds = json.loads(props["ecgnet.thresholds"])
            self.preprocessing = json.loads(props["ecgnet.preprocessing"])
            self.source = json.loads(props["ecgnet.source"])
            self.quantization = json.loads(props.get("ecgnet.quantization", "null"))  # None: fp32
        except (KeyError, json.JSONDecodeError) as e:
            raise ECGNetError(f"{self.name}: not an ECGNet export (metadata {e} missing or invalid)") from e
        self.whole_record = self.preprocessing["input"] == "segment"
        self.modalities = ("metadata",) if self.preprocessing.get("uses_metadata") else ()
        self.samples = int(self.preprocessing["input_samples"])

    def __call__(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        if signal.shape[-1] != self.samples:
            raise ECGNetError(f"{self.name}: the ONNX model takes inputs of {self.samples} samples, not "
                              f"{signal.shape[-1]} (a record shorter than {SECONDS} s? use the torch engine)")
        feed = {"signal": np.ascontiguousarray(signal.detach().cpu().numpy(), dtype=np.float32),
                "metadata": np.ascontiguousarray(metadata.detach().cpu().numpy(), dtype=np.float32)}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def eval(self) -> "OnnxModel":
        return self


def onnx_engine(predictor, threads: int | None = None, int8: bool = False) -> OnnxModel:
    """The ONNX Runtime engine of a torch-engine predictor: RUN/model.onnx when it was exported from the
    run's current weights, else the model exported in memory now (a few seconds; ``ecgnet export`` saves it).
    ``int8``: RUN/model.int8.onnx, which must exist (``ecgnet export RUN --quantize int8``: it needs PTB-XL).
    A file exported from other weights is an error: it would silently give another model's answers."""
    from ecgnet.export_int8 import FILENAME as INT8_FILENAME

    path = predictor.run_dir / (INT8_FILENAME if int8 else FILENAME)
    again = f"ecgnet export {predictor.run_dir}" + (" --quantize int8" if int8 else "")
    if int8 and not path.is_file():
        raise ECGNetError(f"{path}: missing — run `{again}` first")
    if not path.is_file():
        return OnnxModel(onnx_bytes(predictor), threads, name=f"{predictor.run_dir} (exported in memory)")
    model = OnnxModel(path, threads)
    if model.source.get("weights_sha256") != weights_sha256(predictor.run_dir):
        raise ECGNetError(f"{path}: exported from other weights than {predictor.run_dir / 'model.safetensors'}; "
                          f"run `{again}` again")
    return model
