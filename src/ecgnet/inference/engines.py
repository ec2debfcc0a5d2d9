"""Engines: what runs a run's model on windows (or, for models that window inside, on segments: 10 s, or a
shorter record whole), all called alike — ``engine(signal, metadata) → logits`` tensors, with ``whole_record``
and ``modalities`` as the torch model has them — so the windowing (:mod:`ecgnet.models.windows`) and
:class:`~ecgnet.inference.predictor.Predictor` use any of them unchanged.

- ``torch``: the run's own model;
- ``onnx``: ONNX Runtime on ``RUN/model.onnx`` when it was exported from the run's current weights, else the
  model exported in memory now (a few seconds; ``ecgnet export`` saves it) — within 1e-6 of torch;
- ``onnx-int8``: ONNX Runtime on ``RUN/model.int8.onnx``, which must exist (``ecgnet export RUN --quantize
  int8``: calibrated on PTB-XL or a manifest's records); see :mod:`ecgnet.export.int8` for what it costs.

An ONNX file exported from other weights is an error: it would silently give another model's answers; so is one
whose metadata describes an older preprocessing version (e.g. 2: a late-fusion graph of exactly 10 s, which failed
on a shorter record, where the graph exported now takes one): export it again. A model without windows (or a
late-fusion one with such a member) has a graph of exactly 10 s in every version: its file of version 2 is used. A
late-fusion file of version 3 takes at most 10 s: it is used for 10 s segments (the same graph), and
``--long-records windows`` on a longer record asks for it to be exported again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.runs.directory import Run

ENGINES = ("torch", "onnx", "onnx-int8")


class Engine(Protocol):
    whole_record: bool
    modalities: tuple[str, ...]

    def __call__(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor: ...


class OnnxModel:
    """An exported model behind the torch model's call: ``model(signal, metadata) → logits`` tensors.

    ``threads``: ONNX Runtime intra-op threads (default: torch's current number, so both engines
    follow ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` alike). ``again``: the command that exports the file
    again, named when an older file refuses an input (default: ``ecgnet export RUN``, the run not known here).
    """

    def __init__(self, model: str | Path | bytes, threads: int | None = None, name: str | None = None,
                 again: str | None = None):
        import onnxruntime as ort

        self.name = name or str(model if not isinstance(model, bytes) else "ONNX model")
        self.again = again
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
        self.samples = int(self.preprocessing["input_samples"])  # a window, or a 10 s segment
        self.fewest = int(self.preprocessing.get("input_samples_min", self.samples))  # late fusion: a shorter record
        most = self.preprocessing.get("input_samples_max", self.samples)  # version < 4: input_samples
        self.most = None if most is None else int(most)  # None: no bound (late fusion: a whole long record)

    def __call__(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        n = signal.shape[-1]
        if n < self.fewest or (self.most is not None and n > self.most):
            raise ECGNetError(self._refusal(n))
        feed = {"signal": np.ascontiguousarray(signal.detach().cpu().numpy(), dtype=np.float32),
                "metadata": np.ascontiguousarray(metadata.detach().cpu().numpy(), dtype=np.float32)}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def _refusal(self, n: int) -> str:
        """Why an input of ``n`` samples is refused, in one line."""
        takes = (f"{self.fewest} or more" if self.most is None else f"{self.most}" if self.fewest == self.most
                 else f"{self.fewest} to {self.most}")
        too_long = self.most is not None and n > self.most  # a record whole (--long-records windows)
        if not self.whole_record:
            why = "one window each: ecgnet.models.windows cuts a record into them"
        elif too_long and self.fewest < self.most:  # a late-fusion graph exported with an upper bound
            again = self.again or "ecgnet export RUN" + (" --quantize int8" if self.quantization else "")
            why = (f"exported by an older ecgnet (preprocessing version {self.preprocessing.get('version')}), whose "
                   f"late-fusion graph takes at most {SECONDS} s: for --long-records windows, run `{again}` again")
        elif self.fewest == self.most:
            why = (f"this model's graph takes exactly {SECONDS} s (a model or late-fusion member without windows): "
                   + ("--long-records windows" if too_long else f"a record shorter than {SECONDS} s")
                   + " needs the torch engine")
        else:
            seconds = self.fewest / self.preprocessing["sampling_rate"]
            why = f"a record shorter than {seconds:g} s (a member's window) needs the torch engine"
        return f"{self.name}: the ONNX model takes inputs of {takes} samples, not {n} ({why})"

    def eval(self) -> "OnnxModel":
        return self


def onnx_engine(run: Run, threads: int | None = None, int8: bool = False) -> OnnxModel:
    """The ONNX Runtime engine of ``run``: its exported file (``int8``: the quantized one) if it matches the
    run's weights, else (fp32 only) the model exported in memory now."""
    from ecgnet.export import int8 as int8_export
    from ecgnet.export import onnx as onnx_export

    path = run.dir / (int8_export.FILENAME if int8 else onnx_export.FILENAME)
    again = f"ecgnet export {run.dir}" + (" --quantize int8" if int8 else "")
    if int8 and not path.is_file():
        from ecgnet.runs.bundled import is_bundled

        if is_bundled(run.dir):
            name = run.dir.name
            raise ECGNetError(f"{name} is a bundled model without an int8 file: copy it (`cp -r {run.dir} runs/{name}`), "
                              f"run `ecgnet export runs/{name} --quantize int8` (it calibrates on PTB-XL's training "
                              f"folds: ECGNET_DATA or --data), then use --checkpoint runs/{name}")
        raise ECGNetError(f"{path}: missing — run `{again}` first (int8 calibrates on PTB-XL's training folds, or "
                          "with --calibration-manifest M.csv on your own records)")
    if not path.is_file():
        return OnnxModel(onnx_export.onnx_bytes(run), threads, name=f"{run.dir} (exported in memory)")
    model = OnnxModel(path, threads, again=again)
    if model.source.get("weights_sha256") != run.weights_sha256:
        raise ECGNetError(f"{path}: exported from other weights than {run.dir / 'model.safetensors'}; "
                          f"run `{again}` again")
    version = model.preprocessing.get("version", 1)
    if version == 2 and model.whole_record and onnx_export.longest_input(run) is None:  # 10 s then, dynamic now
        raise ECGNetError(f"{path}: exported by an older ecgnet (preprocessing version 2), whose late-fusion graph "
                          f"takes exactly 10 s and fails on a shorter record: run `{again}` again")
    # versions 3 and 4 changed only late-fusion graphs whose members all have windows (3: any segment from the
    # window to 10 s; 4: no upper bound): a window model's version-2 file is the same graph and preprocessing (an
    # int8 file, which needs PTB-XL to be made again, stays usable), and so is one of a model without windows (or
    # of a late-fusion model with such a member), whose graph takes exactly 10 s in every version; a late-fusion
    # file of version 3 is the same graph up to 10 s, and refuses a longer input (--long-records windows) with the
    # command that exports it again (OnnxModel._refusal)
    if version not in (2, 3, onnx_export.PREPROCESSING_VERSION):  # else: what the file does not say
        raise ECGNetError(f"{path}: its metadata describes ecgnet's preprocessing version {version}, not the present "
                          f"{onnx_export.PREPROCESSING_VERSION} (a deployment following it would differ): run "
                          f"`{again}` again")
    return model


def make_engine(run: Run, name: str = "torch", threads: int | None = None) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`) for ``run``."""
    if name not in ENGINES:
        raise ECGNetError(f"--engine must be one of {', '.join(ENGINES)}, not '{name}'")
    if name == "torch":
        return run.model
    return onnx_engine(run, threads, int8=name == "onnx-int8")
