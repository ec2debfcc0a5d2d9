"""``ecgnet predict`` (diagnoses on the terminal, as JSON or CSV) and ``ecgnet report`` (the clinical PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ecgnet import strictjson
from ecgnet.errors import ECGNetError
from ecgnet.runs.bundled import DEFAULT_MODEL
from ecgnet.cli.common import (
    CHECKPOINT_HELP, LongRecordsOpt, MaxSecondsOpt, MaxSignalsOpt, MaxValuesOpt, ProgressOpt,
    patient_options, read_limits, app, console, err, friendly,
)


@app.command()
@friendly
def predict(records: list[Path] = typer.Argument(..., help="ECG files (WFDB .hea/.dat/.mat or record names, "
                                                 "GE MUSE, Philips, HL7 aECG or GE CardioSoft XML, DICOM, SCP-ECG, "
                                                 "EDF/BDF), folders (searched recursively) or "
                                                 "PhysioNet RECORDS lists."),
            checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
            top: int = typer.Option(3, min=0, help="How many diagnoses to print per record (every positive is "
                                    "printed, then the most probable others up to this many)."),
            resample: bool = typer.Option(True, help="Resample records not at the model's rate (a note says so); "
                                          "--no-resample refuses them instead."),
            age: Optional[float] = typer.Option(None, help="Patient age (models with metadata; "
                                                "default: the header's #Age)."),
            sex: Optional[str] = typer.Option(None, help="male or female (or M/F, not 0/1; "
                                              "default: the header's #Sex)."),
            height: Optional[float] = typer.Option(None, help="cm"),
            weight: Optional[float] = typer.Option(None, help="kg"),
            out: Optional[Path] = typer.Option(None, "--out", help="Write one CSV row per record here (a name "
                                               "ending in .json: the JSON that --json prints)."),
            long_records: str = LongRecordsOpt,
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
            engine: str = typer.Option("torch", help="torch; onnx: ONNX Runtime on RUN/model.onnx "
                                       "(see `ecgnet export`; exported in memory if absent); onnx-int8: on "
                                       "RUN/model.int8.onnx (`ecgnet export RUN --quantize int8` first)."),
            site: Optional[str] = typer.Option(None, "--site", help="Apply this site profile of the run: its "
                                               "calibrated probabilities and thresholds (see `ecgnet calibrate`)."),
            max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt,
            progress: bool = ProgressOpt):
    """Diagnose your own ECGs: every positive diagnosis and the most probable others, with probabilities and
    the run's thresholds, the reader's warnings (what may make a result wrong) and notes (routine steps).

    Exit status: 0 when every record was diagnosed, 1 when any could not be (each is named on stderr
    and has its error on its CSV row), 2 for a usage error (bad option, model or no records).
    """
    from ecgnet.data.record_files import find_records

    headers = find_records(records)  # usage errors (no records, bad options) before torch and the model load
    if not headers:
        raise ECGNetError(f"no ECG records found in {', '.join(map(str, records))} (WFDB headers, or files in a "
                          "format ecgnet reads: GE MUSE, Philips, HL7 aECG or CardioSoft .xml, DICOM .dcm, "
                          "SCP-ECG .scp, EDF/BDF)")
    if not any(h.exists() for h in headers):  # a mistyped path: nothing to diagnose
        others = len(headers) - 1
        raise ECGNetError(f"{headers[0]}: no such record or file"
                          + (f" (nor the {others} other{'s' if others > 1 else ''})" if others else ""))
    from ecgnet.inference.batch import predict_many, summary, write_results_csv
    from ecgnet.inference.predictor import Predictor

    metadata = patient_options(age=age, sex=sex, height=height, weight=weight)  # inf, nan, -1, 1e9, 'x': exit 2
    predictor = Predictor(checkpoint, long_records=long_records, engine=engine, site=site)
    results = predict_many(predictor, headers, resample=resample, progress=progress and not as_json,
                           limits=read_limits(max_seconds, max_signals, max_values),
                           on_error=lambda _, msg: err.print(f"[bold red]error:[/] {escape(msg)}",
                                                             highlight=False, soft_wrap=True), **metadata)
    failed = sum("error" in r for r in results)
    if out and out.suffix.lower() == ".json":  # as its name says (a CSV in p.json was read as broken JSON)
        from ecgnet.fileio import atomic_path

        with atomic_path(out) as tmp:
            Path(tmp).write_text(strictjson.dumps(results, indent=2) + "\n")
    elif out:
        write_results_csv(out, results, predictor.classes)
    if as_json:
        print(strictjson.dumps(results, indent=2))  # no NaN/Infinity: strict JSON
    elif out and len(results) > 1:
        s = summary(results)
        console.print(f"{s['diagnosed']} of {s['records']} records diagnosed ({s['with_warnings']} with warnings; "
                      f"{s['failed']} failed) → [bold]{escape(str(out))}[/]", highlight=False)
        _print_warning_kinds(s)
    elif failed < len(results):  # the header line only above results
        console.print(f"[dim]model {escape(predictor.describe())}; positive: {escape(predictor.calls_rule())}[/]",
                      highlight=False)
        if low := predictor.low_thresholds():
            console.print(f"[dim]note: {escape(low)}[/]", highlight=False, soft_wrap=True)
        for res in (r for r in results if "error" not in r):
            _print_diagnoses(res, top)
        if out:  # one record with --out: its table above, and where its row went
            console.print(f"→ [bold]{escape(str(out))}[/]", highlight=False)
    if failed:
        raise typer.Exit(1)


def _print_warning_kinds(s: dict) -> None:
    """A batch's warnings, one line per kind (the same warning of other records with another number, lead or
    name in it is the same kind): how many records have it, and one of them as an example."""
    for kind, n in s["warnings"].items():
        example = s["examples"][kind]
        console.print(f"  [yellow]warning[/] in {n} record{'s' if n > 1 else ''}: {escape(kind)} — e.g. "
                      f"{escape(example['record'])}: {escape(example['warning'])}", highlight=False, soft_wrap=True)


def _print_diagnoses(res: dict, top: int) -> None:
    from ecgnet.inference.predictor import shown_diagnoses

    console.print(f"[bold]{escape(res['record'])}[/]")
    for n in res.get("notes", []):
        console.print(f"  [dim]note: {escape(n)}[/]", highlight=False, soft_wrap=True)
    for w in res["warnings"]:
        console.print(f"  [yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    flagged = [f"{q['lead']} {'/'.join(q['flags'])}" for q in res.get("quality", []) if q["flags"]]
    if flagged:  # per-lead signal quality (ecgnet.data.quality)
        console.print(f"  [yellow]quality:[/] {escape(', '.join(flagged))}", highlight=False, soft_wrap=True)
    for d in shown_diagnoses(res, top):
        call = {True: "positive", False: "negative", None: ""}[d["positive"]]
        threshold = "" if d["threshold"] is None else \
            f"{ {True: '≥', False: '<', None: 'thr'}[d['positive']]} {d['threshold']:.3f}"
        console.print(f"  {d['class']:<6} {d['probability']:.3f}  {threshold:<9} "
                      f"{call:<8}  {escape(d['description'])}"
                      .replace("positive", "[green]positive[/]"),
                      highlight=False)
    if res.get("statements"):  # the device's own interpretation, beside ECGNet's (never a model input)
        console.print(f"  device ({escape(res['format'])}) says: {escape(' · '.join(res['statements']))}",
                      highlight=False, soft_wrap=True)  # one line per fact, whatever the width: grep finds it


@app.command()
@friendly
def report(record: Path = typer.Argument(..., help="One ECG file "
                                         "(WFDB, MUSE, Philips, HL7 aECG, DICOM, SCP-ECG, EDF)."),
           pdf: Path = typer.Option(..., "--pdf", help="The PDF to write (one A4 landscape page)."),
           checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
           resample: bool = typer.Option(True, help="Resample a record not at the model's rate (a note says so); "
                                         "--no-resample refuses it instead."),
           site: Optional[str] = typer.Option(None, "--site", help="Apply this site profile of the run: its "
                                              "calibrated probabilities and thresholds (see `ecgnet calibrate`)."),
           age: Optional[float] = typer.Option(None, help="Patient age (models with metadata; default: the file's)."),
           sex: Optional[str] = typer.Option(None, help="male or female (or M/F, not 0/1; default: the file's)."),
           height: Optional[float] = typer.Option(None, help="cm"),
           weight: Optional[float] = typer.Option(None, help="kg"),
           long_records: str = LongRecordsOpt,
           max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt):
    """Print a clinical report: 3×4 leads + rhythm strip at 25 mm/s, 10 mm/mV, with ECGNet's diagnosis.
    The terminal gets the PDF's name, the positive calls and the reader's notes and warnings."""
    from ecgnet.fileio import check_writable
    from ecgnet.report import make_report

    if pdf.suffix.lower() != ".pdf":  # a PDF named report.png opens nowhere
        raise ECGNetError(f"--pdf {pdf}: the report is a PDF; give a name ending in .pdf")
    metadata = patient_options(age=age, sex=sex, height=height, weight=weight)
    check_writable(pdf)  # before the model runs: a folder that is a file, a read-only place
    result = make_report(record, pdf, checkpoint, resample=resample, site=site, long_records=long_records,
                         limits=read_limits(max_seconds, max_signals, max_values), **metadata)
    positives = ", ".join(result["positives"]) or "none"
    console.print(f"Report: [bold]{escape(str(pdf))}[/] (positive: {escape(positives)})", highlight=False)
    for n in result.get("notes", []):  # the reader's routine steps (not on the page), as predict prints them
        console.print(f"  [dim]note: {escape(n)}[/]", highlight=False, soft_wrap=True)
    for w in result.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
