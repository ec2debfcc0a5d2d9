"""The `ecgnet` command: parses options, calls the library, prints with rich. What a command does lives in the
library (each command imports it by name); what stays here is checking option values and printing.

Errors of user input (:class:`ECGNetError`), a full disk and an unwritable folder are printed as one line
on stderr with exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from ecgnet.runs.bundled import DEFAULT_MODEL, resolve_checkpoint
from ecgnet import strictjson
from ecgnet.data.patient import PatientError, check_patient
from ecgnet.cli_help import Typer
from ecgnet.errors import ECGNetError

app = Typer(help="ECGNet: multimodal 12-lead ECG diagnosis on PTB-XL.", no_args_is_help=True,
            pretty_exceptions_enable=False, add_completion=False)
data_app = Typer(help="Get, check and inspect the PTB-XL dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# Piped output (make, logs) gets 120 columns instead of rich's 80, so tables are not truncated.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


def _patient_options(**fields) -> dict:
    """--age/--sex/--height/--weight checked (:func:`~ecgnet.data.patient.check_patient`); an error names the option."""
    try:
        return check_patient(**fields)
    except PatientError as e:  # its message starts with the field's name
        raise ECGNetError(f"--{e}") from None


CHECKPOINT_HELP = "Run directory, its model.safetensors, or a bundled model's name (see `ecgnet models`)."
DataOpt = typer.Option(None, "--data", envvar="ECGNET_DATA", help="PTB-XL folder (PhysioNet layout).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
# The read budget (ecgnet.data.limits; docs/reliability.md): what a record may declare, checked before decoding.
MaxSecondsOpt = typer.Option(600.0, "--max-seconds", help="Refuse records longer than this many seconds "
                             "(10 min; raise it for long-term recordings).")
MaxSignalsOpt = typer.Option(24, "--max-signals", help="Refuse records declaring more signals (leads).")
MaxValuesOpt = typer.Option(7_200_000, "--max-values", help="Refuse records of more samples × signals "
                            "(7.2 M: 10 min at 1 kHz on 12 leads).")
LongRecordsOpt = typer.Option("segments", "--long-records", help="Records over 10 s: 'segments' (10 s segments, "
                              "averaged), 'first' (the first 10 s) or 'windows' (max over all windows).")


def _read_limits(max_seconds: float, max_signals: int, max_values: int):
    from ecgnet.data.limits import ReadLimits

    return ReadLimits(max_signals=max_signals, max_seconds=max_seconds, max_values=max_values)


def _print_unreadable(unreadable: list[dict], shown: int = 3) -> None:
    """The first few unreadable records of an evaluation and why (all are listed in its report)."""
    for u in unreadable[:shown]:
        console.print(f"[yellow]unreadable:[/] {escape(str(u['error']))}", highlight=False, soft_wrap=True)
    if len(unreadable) > shown:
        console.print(f"… and {len(unreadable) - shown} more unreadable records (listed in the report)",
                      highlight=False)


def friendly(fn):
    """Turn ECGNetError — and a full disk or an unwritable folder (ecgnet.oserrors) — into one clear
    line and exit status 2; Ctrl-C into one line and exit status 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ecgnet.oserrors import disk_error

        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as e:  # Ctrl-C: one line (what stopped, how to go on), exit 130 as shells do
            err.print(f"[bold red]interrupted[/]{': ' + escape(str(e)) if str(e) else ''}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(130) from None
        except (ECGNetError, OSError) as e:
            message = e if isinstance(e, ECGNetError) else disk_error(e)
            if message is None:
                raise
            err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
    return wrapper


def _print_version(value: bool):
    if value:
        from ecgnet import __version__

        console.print(f"ecgnet {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit.")):
    from ecgnet.quiet import quiet_dependencies

    quiet_dependencies()  # progress and results only: no vendor tips or dependencies' deprecation notices


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
def data_verify(folder: Optional[Path] = typer.Argument(None, help="A PTB-XL folder with SHA256SUMS.txt "
                                                      "(default: $ECGNET_DATA)."),
                with_500hz: bool = typer.Option(False, "--with-500hz", help="Also check records500/."),
                cache: bool = typer.Option(False, "--cache", help="Check every byte of the signal caches in "
                                           "$ECGNET_CACHE against their index's SHA-256."),
                progress: bool = ProgressOpt):
    """Check a folder against its SHA256SUMS.txt (missing, extra and corrupt files), and/or the signal cache."""
    from ecgnet.data.download import verify
    from ecgnet.data.signals import verify_caches

    if folder is None and not cache:  # the folder every other command reads
        if not os.environ.get("ECGNET_DATA"):
            raise ECGNetError("data verify: name a PTB-XL folder (or set ECGNET_DATA), or pass --cache to check "
                              "the signal cache")
        folder = Path(os.environ["ECGNET_DATA"])
    reports = ([verify(folder, include_500hz=with_500hz, progress=progress)] if folder else []) + \
        ([verify_caches(progress=progress)] if cache else [])
    for report in reports:
        console.print(escape(report.summary()))
    if not all(r.ok for r in reports):
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
def manifest(source: Path = typer.Argument(..., help="A Challenge-style folder (WFDB headers with #Dx SNOMED CT "
                                           "codes, searched recursively) or a PTB-XL folder."),
             out: Path = typer.Option(..., "--out", "-o", help="The manifest CSV to write (record paths relative to it)."),
             task: Optional[str] = typer.Option(None, help="PTB-XL only: the task whose labels to write "
                                                "(default superdiagnostic)."),
             sampling_rate: Optional[int] = typer.Option(None, "--sampling-rate", help="PTB-XL only: 100 "
                                                         "(default) or 500 Hz records."),
             labels: Optional[str] = typer.Option(None, "--labels", help="Challenge folders: 'superclasses' (one "
                                        "column per PTB-XL superclass, mapped from the SNOMED CT codes) or 'snomed' "
                                        "(a labels column of each record's codes, for --label-map to turn into "
                                        "your own classes; default superclasses)."),
             label_map: Optional[Path] = typer.Option(None, "--label-map", help="Check the written manifest with "
                                                  "this label map (YAML or CSV).")):
    """Write a manifest (one CSV row per labelled record) from a Challenge-style folder or PTB-XL.

    Edit it, or write your own: see docs/own_data.md in the repository. Train on it with
    `ecgnet train --manifest M.csv`.
    """
    from ecgnet.data.collections.make import make_manifest

    result, collection = make_manifest(source, out, task, sampling_rate, labels, label_map)
    if "codes" in result and label_map is None:  # SNOMED CT codes: what a label map would map
        _print_codes(result, out)
    else:
        console.print(f"{result['records']} records, classes {escape(', '.join(collection.classes))} → "
                      f"[bold]{escape(str(out))}[/]")
        console.print(collection.counts().to_string(), highlight=False)
    for b in result.get("blanked", []):
        console.print(f"{escape(b['record'])}: {b['column']} {b['value']:g} is implausible, written empty (unknown)",
                      highlight=False)
    if result["left_out"]:
        example = os.path.relpath(Path(out).parent / result["left_out"][0]["record"])  # the CSV's path, from here
        console.print(f"{len(result['left_out'])} records left out ({escape(result['left_out'][0]['why'])}), e.g. "
                      f"{escape(example)}", highlight=False, soft_wrap=True)


def _print_codes(result: dict, out: Path, shown: int = 15) -> None:
    codes = result["codes"]
    console.print(f"{result['records']} records, {len(codes)} SNOMED CT codes → [bold]{escape(str(out))}[/]")
    for e in codes[:shown]:
        name = f"{e['name']} ({e['abbreviation']})" if e["name"] else ""
        console.print(f"  {e['code']:<10} {e['records']:>6}  {escape(name)}", highlight=False)
    if len(codes) > shown:
        console.print(f"  … and {len(codes) - shown} more codes", highlight=False)
    console.print("Map the codes to your classes with a label map (docs/own_data.md), e.g. a YAML file of lines "
                  "'164889003: AF' and '\"*\": null' (every other code ignored); check it with --label-map, "
                  "train with --manifest and --label-map.", highlight=False)


@app.command()
@friendly
def train(config: Optional[Path] = typer.Option(None, "--config", "-c", help="Experiment YAML (a checkout's "
                                                "configs/, or `ecgnet models --config NAME` for a shipped model's); "
                                                "optional with --from (the run's config is the base)."),
          data: Optional[Path] = DataOpt,
          manifest: Optional[Path] = typer.Option(None, "--manifest", help="Train on your own labelled records: a "
                                                  "manifest CSV (docs/own_data.md; `ecgnet manifest` writes one)."),
          label_map: Optional[Path] = typer.Option(None, "--label-map", help="YAML or CSV mapping the manifest's "
                                                   "codes to classes."),
          skip_bad: bool = typer.Option(False, "--skip-bad", help="List and leave out bad manifest rows and "
                                        "unreadable records instead of stopping."),
          start_from: Optional[str] = typer.Option(None, "--from", help="Fine-tune a trained model: a bundled "
                                                   "model's name (see `ecgnet models`) or a run directory."),
          mode: Optional[str] = typer.Option(None, "--mode", help="With --from: 'full' (every layer trains; the "
                                             "default when the classes are the model's own) or 'head' (only the "
                                             "output layer; the default for new classes)."),
          folds: Optional[int] = typer.Option(None, "--folds", help="Cross-validate: K patient-grouped folds "
                                              "(the manifest's fold column if it has one); then train on all."),
          leave_out: Optional[str] = typer.Option(None, "--leave-out", help="Cross-validate leaving one 'source' "
                                                  "out at a time; then train on all."),
          workers: Optional[int] = typer.Option(None, "--workers", help="Processes building the signal cache."),
          runs_dir: Path = typer.Option(Path("runs"), help="Where runs/<name>/ is written."),
          resume: bool = typer.Option(False, help="Continue from runs/<name>/checkpoints/last.ckpt; with --folds or "
                                      "--leave-out, reuse the folds that finished and continue the one cut off."),
          overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.epochs=2 "
                                              "(repeatable; validated like the file; the run saves the merged config)."),
          n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
          forgetting: bool = typer.Option(False, "--forgetting", help="With --from: also score the final model and "
                                          "the run it started from on PTB-XL fold 10 (needs the PTB-XL folder: "
                                          "--data or ECGNET_DATA): what fine-tuning forgot."),
          max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt,
          progress: bool = ProgressOpt):
    """Train on folds 1–8, select on fold 9, evaluate on folds 9 and 10 — or on your own manifest, fine-tuned
    from a shipped model (--from), cross-validated (--folds K, --leave-out source)."""
    if manifest is not None or start_from is not None or folds is not None or leave_out is not None or forgetting:
        from ecgnet.training.collection_command import format_summary, train_command

        summary = train_command(config, overrides, manifest, label_map, skip_bad, start_from, mode, folds, leave_out,
                                data, runs_dir, n_boot, workers, progress, resume,
                                log=lambda line: console.print(escape(line), highlight=False, soft_wrap=True),
                                forgetting=forgetting, limits=_read_limits(max_seconds, max_signals, max_values))
        if summary is not None:  # None: a non-zero rank of a distributed run (rank 0 reports)
            console.print(escape(format_summary(summary)), highlight=False)
        return
    if config is None:
        raise ECGNetError("train: give --config C.yaml (or --from NAME|RUN to fine-tune a trained model)")
    from ecgnet.config import load_config
    from ecgnet.data.ptbxl import data_root
    from ecgnet.evaluation.report import format_table
    from ecgnet.training.fit import train as fit

    cfg = load_config(config, overrides)
    if resume:
        from ecgnet.runs.directory import check_resumable_run

        check_resumable_run(runs_dir / cfg.name)
    run_dir, results = fit(cfg, data_root(data), runs_dir, resume=resume, n_boot=n_boot, progress=progress)
    if results is None:  # a non-zero rank of a distributed run: rank 0 reports
        return
    console.print(format_table(results["test"], title=f"{cfg.name} — fold 10 (test)"))
    console.print(f"Run written to [bold]{run_dir}[/]")


@app.command()
@friendly
def distill(teacher: str = typer.Option(..., "--teacher", help="The teacher: a run directory or a shipped "
                                        "model's name, e.g. ensemble_greedy. It replaces any teacher the "
                                        "student config names (training.distill_teacher)."),
            student: Path = typer.Option(..., "--student", help="The student's experiment YAML, e.g. "
                                         "configs/distill_long_time.yaml in a checkout, or `ecgnet models --config "
                                         "distill_long_time > s.yaml`."),
            data: Optional[Path] = DataOpt,
            runs_dir: Path = typer.Option(Path("runs"), help="Where runs/<name>/ is written."),
            overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set "
                                                "training.distill_weight=0.7 (repeatable)."),
            bf16: bool = typer.Option(False, "--bf16", help="Compute the teacher's soft targets under CPU bfloat16 "
                                      "autocast (faster on CPUs with bf16 units; probabilities differ by < 0.01)."),
            unlabelled: Optional[Path] = typer.Option(None, "--unlabelled", help="A manifest CSV of unlabelled ECGs "
                                                      "(a 'record' column; any format) that also learn the teacher's "
                                                      "probabilities. Never records a result is measured on."),
            n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
            progress: bool = ProgressOpt):
    """Knowledge distillation: the student config learns the teacher's probabilities and the labels on folds
    1–8 (the teacher's soft targets are computed once and cached), selects on fold 9, is evaluated on 9 and 10.
    With --unlabelled, the manifest's records join the training set with the teacher's probabilities only."""
    from ecgnet.data.ptbxl import data_root
    from ecgnet.distill.run import distill as run_distill
    from ecgnet.evaluation.report import format_table

    run_dir, results = run_distill(resolve_checkpoint(teacher), student, data_root(data), runs_dir, overrides, bf16=bf16,
                                   n_boot=n_boot, progress=progress, unlabelled=unlabelled)
    if results is None:
        return
    console.print(format_table(results["test"], title=f"{run_dir.name} — fold 10 (test)"))
    console.print(f"Run written to [bold]{run_dir}[/]")


@app.command()
@friendly
def pretrain(config: Path = typer.Option(..., "--config", "-c", help="Pretraining YAML (configs/pretrain_*.yaml "
                                         "in a checkout)."),
             data: Optional[Path] = DataOpt,
             runs_dir: Path = typer.Option(Path("runs"), help="Where runs/<name>/ is written."),
             overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set "
                                                 "training.epochs=2 (repeatable)."),
             progress: bool = ProgressOpt):
    """Self-supervised (SimCLR) pretraining of the time encoder on folds 1–8; fine-tune with training.init_from."""
    from ecgnet.data.ptbxl import data_root
    from ecgnet.pretrain.config import load_pretrain_config
    from ecgnet.pretrain.run import pretrain as run_pretraining

    encoder = run_pretraining(load_pretrain_config(config, overrides), data_root(data), runs_dir, progress=progress)
    info = json.loads((encoder.parent / "pretrain.json").read_text())
    if info.get("epochs"):  # how far it got: the contrastive loss against that of views that share nothing
        last = info["epochs"][-1]
        console.print(f"epoch {last['epoch']}: contrastive loss {last['loss']:.3f} (views of unrelated ECGs: "
                      f"{info['loss_of_unrelated_views']:.3f}), {info['pretraining_seconds']:.0f} s")
    console.print(f"Encoder written to [bold]{escape(str(encoder))}[/]")


@app.command()
@friendly
def sweep(config: Path = typer.Option(..., "--config", "-c", help="Base experiment YAML (a checkout's configs/, "
                                      "or `ecgnet models --config NAME`)."),
          space: Path = typer.Option(..., "--space", help="Search space YAML: dotted config key → {type: float|int|"
                                     "categorical, low, high, log, step | choices} (a checkout's configs/sweeps/)."),
          trials: int = typer.Option(..., "--trials", help="Trials the study should have (finished or running): "
                                     "a rerun tops the study up to N; workers on one study share the N. "
                                     "0 only rewrites the report from the study."),
          study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the config's name); "
                                              "trials run in <runs-dir>/sweeps/<study>/trial_NNN."),
          storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: "
                                                "sqlite:///<runs-dir>/sweeps/<study>/study.db; resumable)."),
          overrides: list[str] = typer.Option([], "--set", help="Override a config value for every trial, e.g. a "
                                              "reduced budget: --set training.epochs=5 (repeatable)."),
          runs_dir: Path = typer.Option(Path("runs"), help="The study folder is <runs-dir>/sweeps/<study>/."),
          data: Optional[Path] = DataOpt,
          timeout: Optional[float] = typer.Option(None, help="Start no trial after this many seconds."),
          prune: bool = typer.Option(True, "--prune/--no-prune",
                                     help="Median pruning on the fold-9 macro AUC of each epoch."),
          startup_trials: int = typer.Option(3, min=0, help="Trials sampled at random and never pruned, before TPE "
                                             "and the pruner take over."),
          warmup_epochs: int = typer.Option(2, min=0, help="Epochs of every trial that are never pruned."),
          sampler_seed: Optional[int] = typer.Option(None, help="Seed the sampler (reproducible with one worker)."),
          report_dir: Optional[Path] = typer.Option(None, help="Also write the report (and best.yaml) here, "
                                                    "e.g. reports/sweep/<study>."),
          n_boot: int = typer.Option(200, min=1, help="Bootstrap resamples for each trial run's intervals."),
          progress: bool = ProgressOpt):
    """Hyper-parameter search with Optuna: one run per trial, pruned and selected on fold 9 only.

    The study folder gets best.yaml (the base config with the best values), summary.json, report.md and plots.
    """
    from ecgnet.sweep.study import run_sweep

    summary = run_sweep(config, space, trials, data, study=study, storage=storage, runs_dir=runs_dir,
                        overrides=overrides, timeout=timeout, progress=progress, n_boot=n_boot,
                        prune=prune, startup_trials=startup_trials, warmup_epochs=warmup_epochs,
                        sampler_seed=sampler_seed, report_dir=report_dir,
                        log=lambda line: console.print(escape(line), highlight=False, soft_wrap=True))
    best = summary["best"]
    console.print(f"Best: trial {best['number']}, fold-9 macro AUC {best['fold9_macro_auc']:.4f}" if best
                  else "No complete trial yet.", highlight=False)
    console.print(f"Report: [bold]{escape(summary['report'])}[/]")


@app.command()
@friendly
def evaluate(run: Optional[str] = typer.Argument(None, help=f"The run (default: --checkpoint). {CHECKPOINT_HELP}"),
             checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
             manifest: Optional[Path] = typer.Option(None, "--manifest", help="Evaluate on your own labelled records "
                                                     "(a manifest CSV, docs/own_data.md) instead of PTB-XL's folds."),
             label_map: Optional[Path] = typer.Option(None, "--label-map", help="With --manifest: YAML or CSV mapping "
                                                      "its codes to classes."),
             skip_bad: bool = typer.Option(False, "--skip-bad", help="With --manifest: list and leave out bad rows."),
             site: Optional[str] = typer.Option(None, "--site", help="With --manifest: apply this site profile's "
                                                "calibration and thresholds (see `ecgnet calibrate`)."),
             split: str = typer.Option("test", help="test (fold 10) or val (fold 9)."),
             data: Optional[Path] = DataOpt,
             out: Optional[Path] = typer.Option(None, help="Output folder (default: outputs/<run name>, or "
                                                "outputs/<run name>/<manifest name> with --manifest)."),
             n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
             long_records: str = LongRecordsOpt,
             max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt,
             progress: bool = ProgressOpt):
    """Evaluate a trained run on PTB-XL's test fold, or on any labelled manifest (--manifest): table on the
    terminal, predictions/metrics/report on disk."""
    from ecgnet.evaluation.evaluate import evaluate_run
    from ecgnet.evaluation.report import format_table

    if manifest is not None:
        from ecgnet.evaluation.scoring import format_auc
        from ecgnet.evaluation.manifest_evaluation import evaluate_manifest
        from ecgnet.evaluation.scoring import few_cases

        result = evaluate_manifest(run or checkpoint, manifest, out, label_map, skip_bad, site, n_boot=n_boot,
                                   progress=progress, limits=_read_limits(max_seconds, max_signals, max_values),
                                   long_records=long_records)
        skipped = result["skipped_rows"]
        console.print(f"{escape(result['run'])} on {escape(str(manifest))}: {result['n_scored']} of "
                      f"{result['n_records']} records scored" + (f" ({len(skipped)} manifest rows skipped)" if skipped else "")
                      + f"; thresholds: {escape(str(result['thresholds_from']))}")
        for row in skipped:
            err.print(f"skipped {escape(row['row'])}: {escape(row['why'])}", highlight=False)
        _print_unreadable(result["unreadable"])
        if result["classes_missing"]:
            console.print(f"not labelled in the manifest (skipped): {', '.join(result['classes_missing'])}")
        if result["classes_ignored"]:
            console.print(f"not predicted by the run (ignored): {escape(', '.join(result['classes_ignored']))}")
        for warning in result["class_warnings"]:
            err.print(f"warning: {escape(warning)}", highlight=False)
        console.print(f"macro AUC {format_auc(result['macro_auc'])}")
        for c, e in result["per_class"].items():
            ba = "" if e.get("balanced_accuracy") is None else f"balanced accuracy {e['balanced_accuracy']:.3f}"
            console.print(f"  {c:<5} {format_auc(e):<24} n {e['n']:<5} positive {e['n_positive']:<5} {ba}", highlight=False)
        if few := few_cases(result):
            console.print(f"[yellow]warning:[/] {escape(few)}", highlight=False)
        console.print(f"Report: [bold]{escape(result['report'])}[/]")
        return
    if site is not None:
        raise ECGNetError("--site applies to --manifest evaluation (PTB-XL's folds use the run's own thresholds)")
    if split not in ("test", "val"):
        raise ECGNetError(f"--split must be 'test' or 'val', not '{split}'")
    checkpoint = resolve_checkpoint(run or checkpoint)
    from ecgnet.data.ptbxl import DATA_ENV, data_root
    from ecgnet.runs.describe import run_summary

    trained = run_summary(checkpoint if checkpoint.is_dir() else checkpoint.parent)["manifest"]
    if trained and not (data or os.environ.get(DATA_ENV)):  # a run of the user's own data, no PTB-XL: manifests first
        try:
            data_root(data)
        except ECGNetError as e:
            raise ECGNetError(f"{e} — or score this run on a labelled manifest: --manifest M.csv (it was trained on "
                              f"{trained})") from None
    metrics, report = evaluate_run(checkpoint, data, split, out, n_boot=n_boot, progress=progress)
    console.print(format_table(metrics, title=f"{checkpoint.name} — {'fold 10 (test)' if split == 'test' else 'fold 9 (val)'}"))
    console.print(f"Report: [bold]{report}[/]")


@app.command()
@friendly
def calibrate(run: str = typer.Argument(..., help=CHECKPOINT_HELP),
              manifest: Path = typer.Option(..., "--manifest", help="The site's labelled records (a manifest CSV)."),
              site: str = typer.Option(..., "--site", help="The profile's name (letters, digits, '_', '.', '-'); "
                                       "use it with predict/serve/evaluate --site."),
              method: str = typer.Option("youden", help="Thresholds: youden (max sensitivity + specificity), f1 "
                                         "(max F1), sensitivity (the highest reaching --target-sensitivity) or run "
                                         "(keep the run's decisions; recalibrate the probabilities only)."),
              target_sensitivity: float = typer.Option(0.9, "--target-sensitivity", help="For --method sensitivity."),
              shrinkage: Optional[float] = typer.Option(None, help="Pull each fitted threshold toward the run's: the "
                                                        "site's weight is m / (m + SHRINKAGE), m = the class's positives "
                                                        "or negatives, whichever are fewer; 0 keeps the site's thresholds "
                                                        "as fitted. Default: the value chosen on PTB-XL (docs/own_data.md) "
                                                        "for youden and f1, 0 for sensitivity; printed below."),
              calibration: str = typer.Option("temperature", help="Probabilities: temperature (one temperature per "
                                              "class), isotonic, or none."),
              source: Optional[str] = typer.Option(None, "--source", help="Only the manifest's records of this source."),
              folds: int = typer.Option(5, help="Cross-fitting folds of the report (held-out before/after)."),
              copy_to: Optional[Path] = typer.Option(None, "--copy-to", help="Calibrate a copy of the run made here "
                                                     "(needed for a bundled model, which lives inside the package)."),
              label_map: Optional[Path] = typer.Option(None, "--label-map", help="YAML or CSV mapping the manifest's "
                                                       "codes to classes."),
              skip_bad: bool = typer.Option(False, "--skip-bad", help="List and leave out bad manifest rows."),
              n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
              seed: int = typer.Option(0, help="Seed of the folds and the bootstrap."),
              long_records: str = LongRecordsOpt,
              max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt,
              progress: bool = ProgressOpt):
    """Operating points for a site: per-class thresholds and probability calibration fitted on the site's
    labelled records, stored in the run as RUN/profiles/SITE.json, with a report scored on held-out records."""
    from ecgnet.evaluation.calibrate_site import calibrate_command
    from ecgnet.evaluation.recalibration import carry_threshold

    profile = calibrate_command(run, manifest, site, label_map, skip_bad, copy_to, progress, method=method,
                                target_sensitivity=target_sensitivity, shrinkage=shrinkage, calibration=calibration,
                                folds=folds, source=source, n_boot=n_boot, seed=seed, long_records=long_records,
                                limits=_read_limits(max_seconds, max_signals, max_values))
    ev = profile["evaluation"]
    shrunk = f" (shrinkage {profile['shrinkage']:g})" if profile.get("shrinkage") is not None else ""
    skipped = profile["manifest"]["rows_skipped"]
    console.print(f"Site profile [bold]{escape(site)}[/] for {escape(profile['run'])}: {profile['manifest']['records_used']} "
                  f"records" + (f" ({len(skipped)} manifest rows skipped)" if skipped else "")
                  + f", {method} thresholds{shrunk}, {calibration} calibration")
    for row in skipped:
        err.print(f"skipped {escape(row['row'])}: {escape(row['why'])}", highlight=False)
    if profile["manifest"].get("classes_missing"):
        console.print(f"not labelled in the manifest (the run's thresholds kept): "
                      f"{escape(', '.join(profile['manifest']['classes_missing']))}")
    if profile["manifest"].get("classes_ignored"):
        console.print(f"not predicted by the run (ignored): {escape(', '.join(profile['manifest']['classes_ignored']))}")
    for c in profile["classes"]:
        e, fitted = ev["per_class"][c], profile["fitted"][c]
        raw = profile["run_thresholds"][c]  # on the run's probabilities; the site's are on calibrated ones
        carried = carry_threshold(raw, profile["calibrators"][c])
        line = f"  {c:<5} threshold {carried:.3f} → {profile['thresholds'][c]:.3f}" + (
            f" (calibrated scale; the run's {raw:.3f} before calibration)" if abs(carried - raw) >= 5e-4 else "")
        if "before" in e:
            line += (f"   held-out balanced accuracy {e['before']['balanced_accuracy']:.3f} → "
                     f"{e['after']['balanced_accuracy']:.3f}, ECE {e['ece_before']:.3f} → {e['ece_after']:.3f}")
        console.print(escape(line if fitted is True else f"{line}   (not fitted: {fitted})"), highlight=False)
    for line in ev.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    console.print(f"Profile: [bold]{escape(profile['path'])}[/]  Report: [bold]{escape(profile['report'])}[/]")
    console.print(f"Use it: ecgnet predict RECORDS --checkpoint {escape(str(Path(profile['path']).parents[1]))} "
                  f"--site {escape(site)}", highlight=False)


@app.command()
@friendly
def predict(records: list[Path] = typer.Argument(..., help="ECG files (WFDB .hea/.dat/.mat or record names, "
                                                 "GE MUSE, Philips, HL7 aECG or GE CardioSoft XML, DICOM, SCP-ECG, "
                                                 "EDF/BDF), folders (searched recursively) or PhysioNet RECORDS lists."),
            checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
            top: int = typer.Option(3, min=0, help="How many diagnoses to print per record (every positive is "
                                    "printed, then the most probable others up to this many)."),
            resample: bool = typer.Option(True, help="Resample records not at the model's rate (a note says so); "
                                          "--no-resample refuses them instead."),
            age: Optional[float] = typer.Option(None, help="Patient age (models with metadata; default: the header's #Age)."),
            sex: Optional[str] = typer.Option(None, help="male or female (or M/F, not 0/1; default: the header's #Sex)."),
            height: Optional[float] = typer.Option(None, help="cm"), weight: Optional[float] = typer.Option(None, help="kg"),
            out: Optional[Path] = typer.Option(None, "--out", help="Write one CSV row per record here."),
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

    metadata = _patient_options(age=age, sex=sex, height=height, weight=weight)  # inf, nan, -1, 1e9, 'x': exit 2
    predictor = Predictor(checkpoint, long_records=long_records, engine=engine, site=site)
    results = predict_many(predictor, headers, resample=resample, progress=progress and not as_json,
                           limits=_read_limits(max_seconds, max_signals, max_values),
                           on_error=lambda _, msg: err.print(f"[bold red]error:[/] {escape(msg)}",
                                                             highlight=False, soft_wrap=True), **metadata)
    failed = sum("error" in r for r in results)
    if out:
        write_results_csv(out, results, predictor.classes)
    if as_json:
        print(strictjson.dumps(results, indent=2))  # no NaN/Infinity: strict JSON
    elif out and len(results) > 1:
        s = summary(results)
        kinds = "; ".join(f"{k}: {n}" for k, n in s["warnings"].items())
        console.print(f"{s['diagnosed']} of {s['records']} records diagnosed ({s['with_warnings']} with warnings"
                      f"{' — ' + escape(kinds) if kinds else ''}; {s['failed']} failed) → [bold]{escape(str(out))}[/]",
                      highlight=False)
    elif failed < len(results):  # the header line only above results
        console.print(f"[dim]model {escape(predictor.describe())}; positive: {escape(predictor.calls_rule())}[/]",
                      highlight=False)
        for res in (r for r in results if "error" not in r):
            _print_diagnoses(res, top)
        if out:  # one record with --out: its table above, and where its row went
            console.print(f"→ [bold]{escape(str(out))}[/]", highlight=False)
    if failed:
        raise typer.Exit(1)


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
                      f"{call:<8}  {escape(d['description'])}".replace("positive", "[green]positive[/]"),
                      highlight=False)
    if res.get("statements"):  # the device's own interpretation, beside ECGNet's (never a model input)
        console.print(f"  device ({escape(res['format'])}) says: {escape(' · '.join(res['statements']))}",
                      highlight=False, soft_wrap=True)  # one line per fact, whatever the width: grep finds it


@app.command()
@friendly
def report(record: Path = typer.Argument(..., help="One ECG file (WFDB, MUSE, Philips, HL7 aECG, DICOM, SCP-ECG, EDF)."),
           pdf: Path = typer.Option(..., "--pdf", help="The PDF to write (one A4 landscape page)."),
           checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
           resample: bool = typer.Option(True, help="Resample a record not at the model's rate (a note says so); "
                                         "--no-resample refuses it instead."),
           site: Optional[str] = typer.Option(None, "--site", help="Apply this site profile of the run: its "
                                              "calibrated probabilities and thresholds (see `ecgnet calibrate`)."),
           age: Optional[float] = typer.Option(None, help="Patient age (models with metadata; default: the file's)."),
           sex: Optional[str] = typer.Option(None, help="male or female (or M/F, not 0/1; default: the file's)."),
           height: Optional[float] = typer.Option(None, help="cm"), weight: Optional[float] = typer.Option(None, help="kg"),
           long_records: str = LongRecordsOpt,
           max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt):
    """Print a clinical report: 3×4 leads + rhythm strip at 25 mm/s, 10 mm/mV, with ECGNet's diagnosis.
    The terminal gets the PDF's name, the positive calls and the reader's notes and warnings."""
    from ecgnet.fileio import check_writable
    from ecgnet.report import make_report

    if pdf.suffix.lower() != ".pdf":  # a PDF named report.png opens nowhere
        raise ECGNetError(f"--pdf {pdf}: the report is a PDF; give a name ending in .pdf")
    metadata = _patient_options(age=age, sex=sex, height=height, weight=weight)
    check_writable(pdf)  # before the model runs: a folder that is a file, a read-only place
    result = make_report(record, pdf, checkpoint, resample=resample, site=site, long_records=long_records,
                         limits=_read_limits(max_seconds, max_signals, max_values), **metadata)
    positives = ", ".join(result["positives"]) or "none"
    console.print(f"Report: [bold]{escape(str(pdf))}[/] (positive: {escape(positives)})", highlight=False)
    for n in result.get("notes", []):  # the reader's routine steps (not on the page), as predict prints them
        console.print(f"  [dim]note: {escape(n)}[/]", highlight=False, soft_wrap=True)
    for w in result.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)


@app.command("evaluate-external")
@friendly
def evaluate_external(dataset: Path = typer.Argument(..., help="A Challenge-style dataset folder (WFDB headers "
                                                             "with #Dx SNOMED CT codes), searched recursively."),
                      checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
                      out: Optional[Path] = typer.Option(None, help="Output folder (default: outputs/<run>/external/<dataset>)."),
                      n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
                      long_records: str = LongRecordsOpt,
                      max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt,
                      max_values: int = MaxValuesOpt, progress: bool = ProgressOpt):
    """Transfer beyond PTB-XL: per-class AUC with intervals on an external labelled dataset, per source."""
    from ecgnet.evaluation.external import evaluate_external as run
    from ecgnet.evaluation.scoring import format_auc

    name = Path(str(checkpoint)).name
    result = run(checkpoint, dataset, out or Path("outputs") / name / "external" / dataset.resolve().name,
                 n_boot=n_boot, long_records=long_records, progress=progress,
                 limits=_read_limits(max_seconds, max_signals, max_values))
    console.print(f"{escape(result['run'])} on {escape(str(dataset))}: {result['n_scored']} of "
                  f"{result['n_records']} records scored ({len(result['unreadable'])} unreadable, "
                  f"{len(result['unlabeled'])} without a superclass)")
    _print_unreadable(result["unreadable"])
    console.print(f"macro AUC {format_auc(result['macro_auc'])}")
    for c, e in result["per_class"].items():
        console.print(f"  {c:<5} {format_auc(e):<24} n positive {e['n_positive']}", highlight=False)
    console.print(f"Report: [bold]{escape(result['report'])}[/]")


@app.command()
@friendly
def compare(run_dirs: Optional[list[Path]] = typer.Argument(None, help="Runs to compare: run directories "
                                                               "(runs/<name>) or bundled model names."),
            baseline: str = typer.Option(DEFAULT_MODEL, help="Run (or bundled model) the others are tested against (paired bootstrap on fold 10)."),
            out: Path = typer.Option(Path("outputs/comparison"), help="Folder for comparison.json/.md/.html."),
            data: Optional[Path] = DataOpt,
            explain: bool = typer.Option(True, "--explain/--no-explain",
                                         help="Attributions and lead importance for the best run (by fold-9 AUC)."),
            ablation_records: Optional[int] = typer.Option(None, help="Fold-10 records for modality ablation (default all; 0 skips it)."),
            explain_records: int = typer.Option(16, min=1, help="Fold-10 records per class for the lead-importance table."),
            n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
            render_only: Optional[Path] = typer.Option(None, "--render-only", metavar="OUT",
                                                       help="Only redraw the report in OUT from its comparison.json (nothing recomputed)."),
            progress: bool = ProgressOpt):
    """Compare trained runs: accuracy vs a baseline (paired bootstrap), complexity, modality ablation, attributions."""
    from ecgnet.evaluation.compare import compare as compare_runs
    from ecgnet.evaluation.compare_report import format_comparison, render_comparison

    if render_only is not None:
        console.print(f"Report: [bold]{escape(str(render_comparison(render_only, data)))}[/]")
        return
    if not run_dirs:
        raise ECGNetError("compare: name the run directories (or re-render a report with --render-only OUT)")
    result = compare_runs([resolve_checkpoint(r) for r in run_dirs], resolve_checkpoint(baseline), data, out,
                          explain=explain, n_boot=n_boot,
                          progress=progress, ablation_records=ablation_records, explain_records=explain_records)
    console.print(format_comparison(result))
    for line in result["conclusion"]:
        console.print(f"• {escape(line)}", highlight=False)
    console.print(f"Report: [bold]{escape(str(out / 'comparison.html'))}[/]")


@app.command("export")
@friendly
def export_run(checkpoint: str = typer.Argument(..., help=CHECKPOINT_HELP),
               fmt: str = typer.Option("onnx", "--format", help="Only onnx for now."),
               out: Optional[Path] = typer.Option(None, "--out", help="Where to write it (default: RUN/model.onnx, "
                                                  "or RUN/model.int8.onnx with --quantize int8)."),
               quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: static int8 quantization of "
                                                      "the encoders' convolutions, calibrated on 128 records of "
                                                      "PTB-XL's training folds (needs --data); see predict --engine onnx-int8."),
               site: Optional[str] = typer.Option(None, "--site", help="Carry this site profile's calibration and "
                                                  "thresholds in the metadata (ecgnet.site; see `ecgnet calibrate`)."),
               data: Optional[Path] = DataOpt):
    """Export a run for ONNX Runtime, with its classes, thresholds (and where they were chosen) and
    preprocessing in the metadata."""
    from ecgnet.export import export

    if quantize == "int8":  # minutes without a word otherwise, the first time
        err.print("note: int8 is calibrated on 128 records of PTB-XL's training folds; the first time, PTB-XL's signal "
                  "cache is built for it (about 1 GB in $ECGNET_CACHE, a few minutes)", highlight=False)
    console.print(f"Exported to [bold]{escape(str(export(checkpoint, fmt, out, quantize, data, site)))}[/]")


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

    limits = ServeLimits(read=_read_limits(max_seconds, max_signals, max_values), max_concurrent=max_concurrent)
    web = create_app(ModelStore.discover([checkpoint], runs_dir, site=site), data_root=data, runs_dir=runs_dir, serve_limits=limits,
                     allowed_hosts=trusted_hosts(allowed_host, bind_host=host))
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


if __name__ == "__main__":
    app()
