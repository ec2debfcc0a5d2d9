"""The `ecgnet` command: parses options, calls the library, prints with rich. No logic lives here.

Errors of user input (:class:`ECGNetError`) are printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from ecgnet.errors import ECGNetError

app = typer.Typer(help="ECGNet: multimodal 12-lead ECG diagnosis on PTB-XL.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Get, check and inspect the PTB-XL dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# Piped output (make, logs) gets 120 columns instead of rich's 80, so tables are not truncated.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)

DEFAULT_RUN = Path(__file__).resolve().parents[2] / "runs" / "baseline_time"
DataOpt = typer.Option(None, "--data", envvar="ECGNET_DATA", help="PTB-XL folder (PhysioNet layout).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def friendly(fn):
    """Turn ECGNetError into one clear line and exit status 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ECGNetError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
    return wrapper


@data_app.command("download")
@friendly
def data_download(dest: Path = typer.Argument(..., help="Folder to download into (created)."),
                  url: str = typer.Option(None, help="Release URL (default: PhysioNet PTB-XL 1.0.1)."),
                  with_500hz: bool = typer.Option(False, "--with-500hz", help="Also the 500 Hz records (~1.7 GB)."),
                  workers: int = typer.Option(4, help="Parallel downloads."), progress: bool = ProgressOpt):
    """Download PTB-XL, verify every checksum, resume after interruption."""
    from ecgnet.data.download import DEFAULT_URL, download

    report = download(dest, url or DEFAULT_URL, include_500hz=with_500hz, workers=workers, progress=progress)
    console.print(report.summary())
    console.print(f"Use it with: [bold]export ECGNET_DATA={dest.resolve()}[/]")


@data_app.command("verify")
@friendly
def data_verify(folder: Path = typer.Argument(..., help="A PTB-XL folder with SHA256SUMS.txt."),
                with_500hz: bool = typer.Option(False, "--with-500hz", help="Also check records500/."),
                progress: bool = ProgressOpt):
    """Check a folder against its SHA256SUMS.txt: missing, extra and corrupt files."""
    from ecgnet.data.download import verify

    report = verify(folder, include_500hz=with_500hz, progress=progress)
    console.print(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("info")
@friendly
def data_info(data: Optional[Path] = DataOpt):
    """Records and class counts per task and split, under the benchmark's label rules."""
    from rich.table import Table

    from ecgnet.data import ptbxl

    root = ptbxl.data_root(data)
    db, statements = ptbxl.read_database(root), ptbxl.read_statements(root)
    table = Table("task", "classes", "records", "train (1–8)", "val (9)", "test (10)", title=str(root))
    for task in ptbxl.TASKS:
        labels = ptbxl.make_labels(db, statements, task)
        table.add_row(task, str(len(labels.classes)), str(len(labels.ecg_ids)),
                      *(str(int(labels.split(s).sum())) for s in ("train", "val", "test")))
    console.print(table)


@app.command()
@friendly
def train(config: Path = typer.Option(..., "--config", "-c", help="Experiment YAML (see configs/)."),
          data: Optional[Path] = DataOpt,
          runs_dir: Path = typer.Option(Path("runs"), help="Where runs/<name>/ is written."),
          resume: bool = typer.Option(False, help="Continue from runs/<name>/checkpoints/last.ckpt."),
          n_boot: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
          progress: bool = ProgressOpt):
    """Train on folds 1–8, select on fold 9, evaluate on folds 9 and 10."""
    from ecgnet.config import load_config
    from ecgnet.data.ptbxl import data_root
    from ecgnet.evaluation.report import format_table
    from ecgnet.training.fit import train as fit

    cfg = load_config(config)
    run_dir, results = fit(cfg, data_root(data), runs_dir, resume=resume, n_boot=n_boot, progress=progress)
    console.print(format_table(results["test"], title=f"{cfg.name} — fold 10 (test)"))
    console.print(f"Run written to [bold]{run_dir}[/]")


@app.command()
@friendly
def evaluate(checkpoint: Path = typer.Option(DEFAULT_RUN, help="Run directory or its model.safetensors."),
             split: str = typer.Option("test", help="test (fold 10) or val (fold 9)."),
             data: Optional[Path] = DataOpt,
             out: Optional[Path] = typer.Option(None, help="Output folder (default: outputs/<run name>)."),
             n_boot: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
             progress: bool = ProgressOpt):
    """Evaluate a trained run: table on the terminal, predictions/metrics/report on disk."""
    from ecgnet.evaluation.evaluate import evaluate_run
    from ecgnet.evaluation.report import format_table

    if split not in ("test", "val"):
        raise ECGNetError(f"--split must be 'test' or 'val', not '{split}'")
    metrics, report = evaluate_run(checkpoint, data, split, out, n_boot=n_boot, progress=progress)
    console.print(format_table(metrics, title=f"{checkpoint.name} — {'fold 10 (test)' if split == 'test' else 'fold 9 (val)'}"))
    console.print(f"Report: [bold]{report}[/]")


@app.command()
@friendly
def predict(records: list[Path] = typer.Argument(..., help="WFDB records (.hea) with the 12 standard leads."),
            checkpoint: Path = typer.Option(DEFAULT_RUN, help="Run directory or its model.safetensors."),
            top: int = typer.Option(3, help="How many diagnoses to print per record."),
            resample: bool = typer.Option(False, help="Resample records not at the model's rate."),
            age: Optional[float] = typer.Option(None, help="Patient age (used by models with metadata)."),
            sex: Optional[str] = typer.Option(None, help="male or female."),
            height: Optional[float] = typer.Option(None, help="cm"), weight: Optional[float] = typer.Option(None, help="kg"),
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Diagnose your own ECGs: the top diagnoses with their probabilities."""
    from ecgnet.predict import Predictor

    predictor = Predictor(checkpoint)
    results = [predictor.predict_file(r, resample=resample, age=age, sex=sex, height=height, weight=weight)
               for r in records]
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for res in results:
        console.print(f"[bold]{escape(res['record'])}[/]")
        for d in res["diagnoses"][:top]:
            flag = "[green]positive[/]" if d["positive"] else ""
            console.print(f"  {d['class']:<6} {d['probability']:.3f}  {escape(d['description'])}  {flag}")


@app.command()
@friendly
def compare(run_dirs: list[Path] = typer.Argument(..., help="Run directories to compare (runs/<name>)."),
            baseline: Path = typer.Option(DEFAULT_RUN, help="Run the others are tested against (paired bootstrap on fold 10)."),
            out: Path = typer.Option(Path("outputs/comparison"), help="Folder for comparison.json/.md/.html."),
            data: Optional[Path] = DataOpt,
            explain: bool = typer.Option(True, "--explain/--no-explain",
                                         help="Attributions and lead importance for the best run (by fold-9 AUC)."),
            ablation_records: Optional[int] = typer.Option(None, help="Fold-10 records for modality ablation (default all; 0 skips it)."),
            explain_records: int = typer.Option(16, help="Fold-10 records per class for the lead-importance table."),
            n_boot: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
            progress: bool = ProgressOpt):
    """Compare trained runs: accuracy vs a baseline (paired bootstrap), complexity, modality ablation, attributions."""
    from ecgnet.evaluation.compare import compare as compare_runs
    from ecgnet.evaluation.compare_report import format_comparison

    result = compare_runs(run_dirs, baseline, data, out, explain=explain, n_boot=n_boot, progress=progress,
                          ablation_records=ablation_records, explain_records=explain_records)
    console.print(format_comparison(result))
    for line in result["conclusion"]:
        console.print(f"• {escape(line)}", highlight=False)
    console.print(f"Report: [bold]{escape(str(out / 'comparison.html'))}[/]")


if __name__ == "__main__":
    app()
