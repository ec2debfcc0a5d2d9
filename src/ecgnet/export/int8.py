"""int8 ONNX: the quantization recipe measured by ``benchmarks/bench_engines.py``, written by
``ecgnet export RUN --quantize int8`` (the benchmark imports it from here: there is one recipe).

**What is quantized.** ONNX Runtime static quantization (QDQ; signed 8-bit per-channel weights,
unsigned 8-bit activations) of the encoders' convolutions, except each encoder's first one. The
spectral frontends (DFT products feeding a log), the Transformer and the linear layers stay fp32:
quantizing the whole graph moved fold-10 probabilities by up to 0.63 (static) and 0.20 (dynamic).

**Calibration.** 99.99th percentile of the activations on the graph inputs (windows, or 10 s segments)
of 128 records (drawn with seed 1) of PTB-XL's training folds 1–8, or of a manifest of the site's own records
(``ecgnet export RUN --quantize int8 --calibration-manifest M.csv``; by default, without PTB-XL, the manifest the
run was trained on, run.json's ``collection.manifest``): :func:`calibration_source` chooses. A manifest's records are
read as training reads them (its cache: each record's centre 10 s, a shorter one's own samples; unreadable records
and those shorter than the graph's input are left out and others drawn instead, at least 16 must remain), their
patient data scaled with the run's own scaler as ``predict`` scales them. ``ecgnet.quantization`` says which.

**What it costs.** Fold-10 macro AUC unchanged (paired Δ within ±0.0003), mean |Δp| about 0.005, but
single records move by up to 0.5 and about 0.5 % of the positive/negative calls flip (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.errors import ECGNetError
from ecgnet.export.onnx import graph_input_samples, onnx_bytes
from ecgnet.models.windows import window_starts
from ecgnet.runs.describe import trained_manifest
from ecgnet.runs.directory import Run

FILENAME = "model.int8.onnx"
CALIBRATION_RECORDS, CALIBRATION_SEED, PERCENTILE = 128, 1, 99.99
MIN_MANIFEST_RECORDS = 16  # a manifest with fewer usable records is refused: too few to place the ranges
MANIFEST_OPTION = "--calibration-manifest"


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


def _calibration_reader(calibration, window: int, stride: int, batch: int = 64):
    from onnxruntime.quantization import CalibrationDataReader

    signal = np.asarray(calibration.signal, dtype=np.float32)  # an array, or a view of the signal cache
    lengths = getattr(calibration, "lengths", None)
    if lengths is None:  # PTB-XL's records: 10 s each
        lengths = np.full(len(signal), signal.shape[-1])
    crops, meta = calibration_windows(signal, np.asarray(calibration.metadata), lengths, window, stride)
    batch = batch_size(len(crops), batch)

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"signal": crops[i:i + batch], "metadata": meta[i:i + batch].astype(np.float32)}
                                 for i in range(0, len(crops), batch)])

        def get_next(self):
            return next(self.batches, None)

    return Windows()


def recipe(convolutions: int, records: int, manifest: dict | None = None) -> dict:
    """How the file was made: the ``ecgnet.quantization`` metadata. ``manifest``: calibrated on a manifest's records
    (:func:`manifest_calibration`'s account of them: ``calibration_manifest``), not PTB-XL's training folds."""
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
    """The int8 model of an fp32 export, calibrated on the windows (``window`` samples every ``stride``)
    of ``calibration`` (a training-fold split, or :class:`ManifestRecords` — then ``manifest`` describes them
    in the metadata); the fp32 metadata is kept, ``ecgnet.quantization`` added."""
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
    props["ecgnet.quantization"] = json.dumps(recipe(len(convs), len(calibration.signal), manifest))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


@dataclass(frozen=True)
class CalibrationSource:
    """What int8 is calibrated on: PTB-XL's training folds (``root``) or a manifest's records (``manifest``;
    ``from_run``: the one the run was trained on, taken by default)."""

    root: Path | None = None
    manifest: Path | None = None
    from_run: bool = False


def calibration_source(info: dict, data=None, manifest=None) -> CalibrationSource:
    """Where int8 calibrates, for a run of run.json ``info``: ``manifest`` when given; else PTB-XL when ``data``
    or $ECGNET_DATA names it (as before: a PTB-XL run's export is unchanged); else the manifest the run was trained
    on, when it is still there; else an error saying both ways."""
    from ecgnet.data.ptbxl import DATA_ENV, data_root

    if manifest is not None:
        path = Path(manifest).expanduser()
        if not path.is_file():
            what = "a folder, not a manifest CSV" if path.is_dir() else "no such file"
            raise ECGNetError(f"{MANIFEST_OPTION} {manifest}: {what}")
        return CalibrationSource(manifest=path)
    trained = trained_manifest(info)
    if data or os.environ.get(DATA_ENV) or not (trained and Path(trained).is_file()):
        try:
            return CalibrationSource(root=data_root(data))
        except ECGNetError as e:
            gone = ("" if not trained else f" (the run's training manifest {trained} is not there any more)"
                    if not Path(trained).is_file() else f" (e.g. the run's training manifest {trained})")
            raise ECGNetError(f"--quantize int8 calibrates on PTB-XL's training folds: {e}; or on records of your own: "
                              f"{MANIFEST_OPTION} M.csv{gone}") from None
    return CalibrationSource(manifest=Path(trained), from_run=True)


@dataclass(frozen=True)
class ManifestRecords:
    """A manifest's calibration records: signals (records, 12, samples) as cached (10 s rows), each record's own
    samples at the start of its row (``lengths``), and their metadata scaled as the run scales them."""

    signal: np.ndarray
    lengths: np.ndarray
    metadata: np.ndarray


def manifest_calibration(run: Run, manifest: str | Path, from_run: bool = False,
                         cache_dir=None) -> tuple[ManifestRecords, dict]:
    """(up to :data:`CALIBRATION_RECORDS` records of ``manifest``, what they are: ``calibration_manifest``).
    Records are drawn in a seeded order (:data:`CALIBRATION_SEED`) and read as training reads a manifest (its
    rows' labels ignored; bad rows and unreadable records left out, counted) at the run's rate; a record shorter
    than the graph's input (a window, or a late-fusion graph's 10 s segment) is left out too, and the next drawn
    instead. Fewer than :data:`MIN_MANIFEST_RECORDS` usable records: refused."""
    from ecgnet.checksum import sha256_file
    from ecgnet.data.collections.manifest import read_manifest
    from ecgnet.data.ptbxl import MetadataScaler

    manifest = Path(manifest)
    collection = read_manifest(manifest, labelled=False, skip_bad=True)
    need = graph_input_samples(run)
    order = np.random.default_rng(CALIBRATION_SEED).permutation(len(collection))
    signals, lengths, metadata, records, unreadable, short, drawn = [], [], [], 0, 0, 0, 0
    while records < CALIBRATION_RECORDS and drawn < len(order):  # the next ones drawn for those left out
        rows = np.sort(order[drawn:drawn + CALIBRATION_RECORDS - records])
        drawn += len(rows)
        part = collection.subset(rows).load_signals(run.rate, cache_dir, progress=False, skip_bad=True)
        unreadable += len(part.skipped) - len(collection.skipped)
        own = part.signal.own_lengths()
        usable = np.flatnonzero(own >= need)
        short += len(own) - len(usable)
        records += len(usable)
        signals.append(np.asarray(part.signal.take(usable), dtype=np.float32))
        lengths.append(own[usable])
        metadata.append(part.metadata.iloc[usable])
    account = {"path": str(manifest.resolve()), "sha256": sha256_file(manifest), "records": records,
               "seed": CALIBRATION_SEED, "rows": len(collection), "rows_skipped": len(collection.skipped),
               "drawn": drawn, "unreadable": unreadable, "shorter_than_input": short,
               "input_seconds": need / run.rate,
               "chosen": "the run's training manifest (run.json: collection.manifest)" if from_run else MANIFEST_OPTION}
    if records < MIN_MANIFEST_RECORDS:
        left = [f"{n} {what}" for n, what in ((len(collection.skipped), "bad rows skipped"),
                                               (unreadable, "unreadable"),
                                               (short, f"shorter than the graph's {need / run.rate:g} s input")) if n]
        raise ECGNetError(f"{manifest}: {records} usable record(s) for int8 calibration"
                          + (f" ({', '.join(left)})" if left else "")
                          + f"; it needs at least {MIN_MANIFEST_RECORDS} (it takes up to {CALIBRATION_RECORDS}): give "
                          "a manifest with more records, or --data for PTB-XL's training folds")
    scaler = run.info.get("metadata_scaler") or {"mean": [0.0] * 4, "std": [1.0] * 4}  # as predict scales
    scaled = MetadataScaler(np.asarray(scaler["mean"]), np.asarray(scaler["std"])).transform(pd.concat(metadata))
    return ManifestRecords(np.concatenate(signals), np.concatenate(lengths), scaled), account


def int8_bytes(run: Run, data=None, manifest=None) -> bytes:
    """The int8 model of a run, calibrated for the run's task and sampling rate on PTB-XL (``data`` or
    $ECGNET_DATA) or on a manifest's records (``manifest``; or the run's training manifest when PTB-XL is not
    given): :func:`calibration_source`."""
    source = calibration_source(run.info, data, manifest)
    window, name = graph_input_samples(run), str(run.dir)
    if source.manifest is not None:  # its records first: too few is said before the export's seconds
        records, account = manifest_calibration(run, source.manifest, source.from_run)
        return quantize_int8(onnx_bytes(run), records, window, run.stride, name=name, manifest=account)
    from ecgnet.data.dataset import PTBXL

    config = run.config.data
    calibration = calibration_split(PTBXL(source.root, config.task, config.sampling_rate))
    return quantize_int8(onnx_bytes(run), calibration, window, run.stride, name=name)
