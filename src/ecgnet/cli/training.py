"""``ecgnet train`` (PTB-XL, or a manifest: fine-tuning, cross-validation), ``distill``, ``pretrain`` and
``sweep``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ecgnet.errors import ECGNetError
from ecgnet.runs.bundled import resolve_checkpoint
from ecgnet.cli.common import (
    DataOpt, MaxSecondsOpt, MaxSignalsOpt, MaxValuesOpt, ProgressOpt,
    read_limits, app, console, friendly,
)


@app.command()
@friendly
def train(config: Optional[Path] = typer.Option(None, "--config", "-c", help="Experiment YAML (a checkout's "
                                                "configs/, or `ecgnet models --config NAME` for a shipped model's); "
                                                "optional with --from (the run's config is the base)."),
          data: Optional[Path] = DataOpt,
          manifest: Optional[Path] = typer.Option(None, "--manifest", help="Train on your own labelled records: a "
                                                  "manifest CSV (`ecgnet docs own_data`; `ecgnet manifest` writes "
                                                  "one)."),
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
                                      "--leave-out, reuse the folds that finished and continue the one cut off; a run "
                                      "whose model was saved and whose reports were not written: write only them."),
          overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.epochs=2 "
                                              "(repeatable; validated like the file; "
                                              "the run saves the merged config)."),
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
                                forgetting=forgetting, limits=read_limits(max_seconds, max_signals, max_values))
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
        from ecgnet.runs.directory import require_started_run

        require_started_run(runs_dir / cfg.name)
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

    run_dir, results = run_distill(resolve_checkpoint(teacher), student, data_root(data), runs_dir, overrides,
                                   bf16=bf16, n_boot=n_boot, progress=progress, unlabelled=unlabelled)
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
