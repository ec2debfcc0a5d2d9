"""``ecgnet export`` (ONNX), ``models`` (the shipped models) and ``serve`` (the viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ecgnet.errors import ECGNetError
from ecgnet.runs.bundled import DEFAULT_MODEL
from ecgnet.cli.common import (
    CHECKPOINT_HELP, DataOpt, MaxSecondsOpt, MaxSignalsOpt, MaxValuesOpt, read_limits, app, console, err, friendly,
)


@app.command("export")
@friendly
def export_run(ctx: typer.Context, checkpoint: str = typer.Argument(..., help=CHECKPOINT_HELP),
               fmt: str = typer.Option("onnx", "--format", help="Only onnx for now."),
               out: Optional[Path] = typer.Option(None, "--out", help="Where to write it (default: RUN/model.onnx, "
                                                  "RUN/model.int8.onnx with --quantize int8, RUN/model.site-SITE.onnx "
                                                  "with --site)."),
               quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: static int8 quantization of "
                                                      "the encoders' convolutions, calibrated on 128 records of "
                                                      "PTB-XL's training folds (--data) or of "
                                                      "--calibration-manifest; see predict --engine onnx-int8."),
               site: Optional[str] = typer.Option(None, "--site", help="Carry this site profile's calibration and "
                                                  "thresholds in the metadata (ecgnet.site; see `ecgnet calibrate`)."),
               data: Optional[Path] = DataOpt,
               calibration_manifest: Optional[Path] = typer.Option(
                   None, "--calibration-manifest", help="With --quantize int8: calibrate on up to 128 records of "
                   "this manifest (your own records; labels not needed) instead of PTB-XL (not with --data). Default "
                   "without --data or ECGNET_DATA: the manifest the run was trained on, if any (the rows it trained "
                   "on).")):
    """Export a run for ONNX Runtime, with its classes, thresholds (and where they were chosen) and
    preprocessing in the metadata; with --site, the site profile's calibration and thresholds, and which
    profile (its name and file) they come from, said on the terminal and in the metadata."""
    from ecgnet.export import default_name, export
    from ecgnet.runs.bundled import resolve_checkpoint
    from ecgnet.runs.profiles import profile_path

    if getattr(ctx.get_parameter_source("data"), "name", "") == "ENVIRONMENT":  # typer vendors click: by name
        data = None  # $ECGNET_DATA only says where PTB-XL is (calibration_source reads it): --data is what was typed
    run_dir = resolve_checkpoint(checkpoint)
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent
    if quantize == "int8":  # minutes without a word otherwise, the first time
        _calibration_note(run_dir, data, calibration_manifest)
    target = out if out is not None else run_dir / default_name(quantize, site)
    replacing = target.is_file()
    written = export(checkpoint, fmt, out, quantize, data, site, calibration_manifest)
    with_site = "" if site is None else (f" with site profile '{escape(site)}': its calibration and thresholds, "
                                         f"from {escape(str(profile_path(run_dir, site)))}")
    console.print(f"Exported to [bold]{escape(str(written))}[/]" + (" (it replaces the file that was there)"
                                                                   if replacing else "") + with_site,
                  highlight=False, soft_wrap=True)
    if quantize == "int8":
        _calibrated_on(written)


def _calibration_note(run_dir: Path, data: Optional[Path], manifest: Optional[Path]) -> None:
    """Before an int8 export: what it calibrates on (a missing manifest or PTB-XL folder is refused here)."""
    import json

    from ecgnet.export.int8_records import CALIBRATION_RECORDS, MANIFEST_OPTION, calibration_source
    from ecgnet.runs.describe import trained_manifest

    try:  # export reads it again, and says what is wrong with it
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        info = {}
    source = calibration_source(info, data, manifest)
    if source.manifest is None:
        trained = trained_manifest(info)
        hint = (f" (this run was trained on {trained}: {MANIFEST_OPTION} calibrates on its records instead)"
                if trained else "")
        err.print(escape(f"note: int8 is calibrated on {CALIBRATION_RECORDS} records of PTB-XL's training folds; the "
                         "first time, PTB-XL's signal cache is built for it (about 1 GB in $ECGNET_CACHE, a few "
                         f"minutes){hint}"), highlight=False, soft_wrap=True)
        return
    why = (", the manifest this run was trained on (run.json: collection.manifest; no --data or ECGNET_DATA given)"
           if source.from_run else "")
    err.print(escape(f"note: int8 is calibrated on up to {CALIBRATION_RECORDS} records of {source.manifest}{why}, "
                     "not on PTB-XL: rows the run did not hold out, read into a temporary folder (nothing is added "
                     "to $ECGNET_CACHE)"), highlight=False, soft_wrap=True)


def _calibrated_on(path: Path) -> None:
    """After an int8 export calibrated on a manifest: how many records, and those left out (from the metadata)."""
    import json

    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    used = json.loads(props.get("ecgnet.quantization", "{}")).get("calibration_manifest")
    if not used:
        return
    left = [f"{n} {what}" for n, what in ((used["rows_skipped"], "bad manifest rows"),
                                          (used.get("held_out", 0), "rows the run held out"),
                                          (used["unreadable"], "unreadable records"),
                                          (used["shorter_than_input"], f"records shorter than the graph's shortest "
                                                                       f"input, {used['input_seconds']:g} s")) if n]
    err.print(escape(f"int8 calibrated on {used['records']} records of {used['path']} (SHA-256 "
                     f"{used['sha256'][:12]}…)" + (f"; left out: {', '.join(left)}" if left else "")),
              highlight=False, soft_wrap=True)


@app.command()
@friendly
def models(config: Optional[str] = typer.Option(None, "--config", help="Print this shipped model's experiment "
                                               "YAML instead (`ecgnet models --config long_time > my.yaml`: a "
                                               "config to train or fine-tune from, without a repository checkout).")):
    """The models shipped with ECGNet: use their name as --checkpoint."""
    from rich.table import Table

    from ecgnet.runs.bundled import bundled_names, bundled_root, list_bundled

    if config is not None:
        if config not in bundled_names():
            raise ECGNetError(f"--config {config}: not a shipped model ({', '.join(bundled_names())})")
        print((bundled_root() / config / "config.yaml").read_text(), end="")
        return

    table = Table("name", "task", "classes", "parameters", "fold-10 macro AUC", title="Bundled models")
    for m in list_bundled():
        auc = "–" if m.test_macro_auc is None else f"{m.test_macro_auc:.4f}"
        params = "–" if m.parameters is None else f"{m.parameters:,}"
        name = f"{m.name} (default)" if m.name == DEFAULT_MODEL else m.name
        table.add_row(escape(name), m.task or "–", str(len(m.classes)), params, auc)
    console.print(table)


@app.command()
@friendly
def docs(name: Optional[str] = typer.Argument(None, help="A guide's name (e.g. own_data); none lists them.")):
    """The guides (docs/ of the repository, carried by every install too): list them, or print one as Markdown."""
    from ecgnet.manual import docs_folder, examples, guides, read_guide

    if name is not None:
        print(read_guide(name), end="")
        return
    console.print(f"Guides in {escape(str(docs_folder()))} (`ecgnet docs NAME` prints one):", highlight=False)
    for stem, title in guides().items():
        console.print(f"  {stem:<12} {escape(title)}", highlight=False)
    if examples():
        console.print("Example scripts beside them (`ecgnet docs NAME > NAME` writes one out):", highlight=False)
        for file, what in examples().items():
            console.print(f"  {file}  {escape(what)}", highlight=False)


@app.command()
@friendly
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 exposes it to the network)."),
          port: int = typer.Option(8000, help="Port to listen on (0: a free one, printed)."),
          checkpoint: str = typer.Option(DEFAULT_MODEL, help=f"Default model. {CHECKPOINT_HELP}"),
          runs_dir: Path = typer.Option(Path("runs"), help="Also offer the runs of this folder (if it exists)."),
          site: Optional[str] = typer.Option(None, "--site", help="The default model's site profile (see `ecgnet "
                                             "calibrate`): its calibrated probabilities and thresholds."),
          data: Optional[Path] = DataOpt,
          allowed_host: list[str] = typer.Option([], "--allowed-host", help="A Host name to answer besides "
                                                  "localhost/127.0.0.1/[::1] (repeatable; '*': any)."),
          max_concurrent: int = typer.Option(2, min=1, help="Requests reading or diagnosing a record at once."),
          max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt):
    """The viewer: a web page to see an ECG, its diagnosis and why, with a JSON API (docs at /docs)."""
    from ecgnet.serve import create_app
    from ecgnet.serve.models import ModelStore
    from ecgnet.serve.hosts import trusted_hosts
    from ecgnet.serve.limits import ServeLimits
    from ecgnet.serve.process import listen, run

    limits = ServeLimits(read=read_limits(max_seconds, max_signals, max_values), max_concurrent=max_concurrent)
    web = create_app(ModelStore.discover([checkpoint], runs_dir, site=site), data_root=data, runs_dir=runs_dir,
                     serve_limits=limits, allowed_hosts=trusted_hosts(allowed_host, bind_host=host))
    sock = listen(host, port)
    wildcard = host in ("0.0.0.0", "::", "")
    shown = "127.0.0.1" if wildcard else f"[{host}]" if ":" in host else host
    console.print(f"ECGNet viewer on [bold]http://{shown}:{sock.getsockname()[1]}/[/] (API docs at /docs; "
                  "Ctrl-C stops it)")
    if wildcard:
        err.print(f"warning: listening on every network interface ({host}), without authentication: anyone who "
                  "can reach this machine can use the viewer. Other machines reach it by the names given with "
                  f"--allowed-host ({', '.join(allowed_host) or 'none given: only this machine'})")
    run(web, sock)
