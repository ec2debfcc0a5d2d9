"""Export a run for ONNX Runtime: :mod:`~ecgnet.export.onnx` (fp32, within 1e-6 of torch) and
:mod:`~ecgnet.export.int8` (static int8 quantization of the encoders' convolutions, calibrated on the records of
:mod:`~ecgnet.export.int8_records`), optionally carrying a site's operating points (:mod:`~ecgnet.export.site`).
Reads a run (:mod:`ecgnet.runs`) and its model (:mod:`ecgnet.models`); what runs the files is
:mod:`ecgnet.inference.engines`."""

from __future__ import annotations

from pathlib import Path

from ecgnet.errors import ECGNetError
from ecgnet.export import int8, onnx, site as site_metadata
from ecgnet.export.int8_records import MANIFEST_OPTION
from ecgnet.fileio import atomic_path, check_writable
from ecgnet.runs.bundled import is_bundled
from ecgnet.runs.directory import Run

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)


def default_name(quantize: str | None = None, site: str | None = None) -> str:
    """The export's file name inside the run: model.onnx, model.int8.onnx (what ``predict --engine onnx /
    onnx-int8`` read), model.site-<site>.onnx, model.site-<site>.int8.onnx (a site named int8 is no model.int8)."""
    if site is None:
        return int8.FILENAME if quantize else onnx.FILENAME
    return f"model.site-{site}" + (".int8" if quantize else "") + ".onnx"


def export(checkpoint: str | Path, fmt: str = "onnx", out: str | Path | None = None,
           quantize: str | None = None, data: str | Path | None = None, site: str | None = None,
           calibration_manifest: str | Path | None = None) -> Path:
    """Export a run (directory, its model.safetensors or a bundled name) to ``out`` (default RUN/model.onnx,
    or RUN/model.int8.onnx with ``quantize="int8"``, calibrated on PTB-XL — ``data`` or $ECGNET_DATA — or on the
    records of ``calibration_manifest``; without either, a run trained on a manifest on that manifest).
    ``site``: a site profile of the run whose calibration and thresholds travel in the metadata (default
    RUN/model.site-<site>.onnx: a later export without it does not overwrite the site's file)."""
    if fmt not in FORMATS:
        raise ECGNetError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ECGNetError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not '{quantize}'")
    if calibration_manifest is not None and quantize is None:
        raise ECGNetError(f"{MANIFEST_OPTION} calibrates --quantize int8: give both, or neither")
    if data is not None and quantize is None:
        raise ECGNetError(f"--data {data}: an export reads PTB-XL only to calibrate --quantize int8")
    run = Run.open(checkpoint)
    if out is None and is_bundled(run.dir):
        raise ECGNetError(f"{run.dir.name} is a bundled model (inside the installed package): give --out FILE, e.g. "
                          f"--out {run.dir.name}{'.int8' if quantize else ''}.onnx (predict --engine onnx exports a "
                          "bundled model in memory by itself)")
    profile = site_metadata.load(run, site) if site is not None else None  # refused before exporting anything
    path = Path(out) if out else run.dir / default_name(quantize, site)
    if path.suffix.lower() != ".onnx":  # model.txt would be an ONNX file no tool looks for
        raise ECGNetError(f"--out {out}: the export is an ONNX file; give a name ending in .onnx")
    check_writable(path)  # a place it cannot be written is said now, not after the export's seconds (int8: minutes)
    model = int8.int8_bytes(run, data, calibration_manifest) if quantize else onnx.onnx_bytes(run)
    if profile is not None:
        model = site_metadata.with_site(model, profile, site_metadata.origin(run, site))
    with atomic_path(path) as tmp:
        tmp.write_bytes(model)
    return path
