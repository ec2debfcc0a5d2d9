"""``ecgnet evaluate`` (PTB-XL's test fold or a manifest), ``calibrate`` (a site's operating points),
``evaluate-external`` (a Challenge-style folder) and ``compare`` (runs side by side)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ecgnet.errors import ECGNetError
from ecgnet.runs.bundled import DEFAULT_MODEL, resolve_checkpoint
from ecgnet.cli.common import (
    CHECKPOINT_HELP, DataOpt, LongRecordsOpt, MaxSecondsOpt, MaxSignalsOpt, MaxValuesOpt, ProgressOpt,
    exit_if_unreadable, print_skipped, print_unreadable, read_limits, app, console, err, friendly,
)


@app.command()
@friendly
def evaluate(run: Optional[str] = typer.Argument(None, help=f"The run (default: --checkpoint). {CHECKPOINT_HELP}"),
             checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
             manifest: Optional[Path] = typer.Option(None, "--manifest", help="Evaluate on your own labelled records "
                                                     "(a manifest CSV, `ecgnet docs own_data`) instead of PTB-XL's "
                                                     "folds."),
             label_map: Optional[Path] = typer.Option(None, "--label-map", help="With --manifest: YAML or CSV mapping "
                                                      "its codes to classes."),
             skip_bad: bool = typer.Option(False, "--skip-bad", help="With --manifest: list and leave out bad rows "
                                           "and unreadable records, and exit 0 (without it a bad row stops evaluate, "
                                           "and an unreadable record makes its exit status 1)."),
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
    terminal, predictions/metrics/report on disk.

    Exit status: 0 when every record was scored; 1 when some record of the manifest could not be read (each is
    listed, the others are scored and written, and the last line counts them; 0 with --skip-bad, which leaves
    them out); 2 for a usage error (bad option, run or manifest; a bad manifest row without --skip-bad).
    """
    from ecgnet.evaluation.evaluate import evaluate_run
    from ecgnet.evaluation.report import format_table

    if manifest is not None:
        if split != "test":  # was ignored: every record of a manifest is scored
            raise ECGNetError(f"--split {split} chooses one of PTB-XL's folds; with --manifest every record of the "
                              "manifest is scored (give a manifest of the records to score)")
        from ecgnet.evaluation.scoring import format_auc
        from ecgnet.evaluation.manifest_evaluation import evaluate_manifest
        from ecgnet.evaluation.scoring import few_cases

        result = evaluate_manifest(run or checkpoint, manifest, out, label_map, skip_bad, site, n_boot=n_boot,
                                   progress=progress, limits=read_limits(max_seconds, max_signals, max_values),
                                   long_records=long_records)
        skipped, unreadable = result["skipped_rows"], result["unreadable"]
        left_out = ([f"{len(skipped)} manifest rows skipped"] if skipped else []) + (
            [f"{len(unreadable)} unreadable" + (", left out with --skip-bad" if skip_bad else "")] if unreadable else [])
        console.print(f"{escape(result['run'])} on {escape(str(manifest))}: {result['n_scored']} of "
                      f"{result['n_records']} records scored" + (f" ({'; '.join(left_out)})" if left_out else "")
                      + f"; thresholds: {escape(str(result['thresholds_from']))}")
        print_skipped(skipped)
        print_unreadable(unreadable)
        if result["classes_missing"]:
            console.print(f"not labelled in the manifest (skipped): {', '.join(result['classes_missing'])}")
        if result["classes_ignored"]:
            console.print(f"not predicted by the run (ignored): {escape(', '.join(result['classes_ignored']))}")
        for warning in result["class_warnings"]:
            err.print(f"warning: {escape(warning)}", highlight=False)
        console.print(f"macro AUC {format_auc(result['macro_auc'])}")
        for c, e in result["per_class"].items():
            ba = "" if e.get("balanced_accuracy") is None else f"balanced accuracy {e['balanced_accuracy']:.3f}"
            console.print(f"  {c:<5} {format_auc(e):<24} n {e['n']:<5} positive {e['n_positive']:<5} {ba}",
                          highlight=False)
        if few := few_cases(result):
            console.print(f"[yellow]warning:[/] {escape(few)}", highlight=False)
        console.print(f"Report: [bold]{escape(result['report'])}[/]")
        exit_if_unreadable(unreadable, result["n_records"], manifest, skip_bad, "were scored")
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
    console.print(format_table(metrics, title=f"{checkpoint.name} — "
                               f"{'fold 10 (test)' if split == 'test' else 'fold 9 (val)'}"))
    console.print(f"Report: [bold]{report}[/]")


@app.command()
@friendly
def calibrate(run: str = typer.Argument(..., help=CHECKPOINT_HELP),
              manifest: Optional[Path] = typer.Option(None, "--manifest", help="The site's labelled records (a "
                                                      "manifest CSV), records the run has not trained on."),
              from_cv: bool = typer.Option(False, "--from-cv", help="Instead of --manifest: fit on the run's "
                                           "cross-validation (RUN/cv/predictions.csv: each record's probability from "
                                           "the fold model that did not train on it) — for a site whose labelled "
                                           "records all trained the run (train --manifest M.csv --folds K)."),
              site: str = typer.Option(..., "--site", help="The profile's name (letters, digits, '_', '.', '-'); "
                                       "use it with predict/serve/evaluate --site."),
              method: str = typer.Option("youden", help="Thresholds: youden (max sensitivity + specificity), f1 "
                                         "(max F1), sensitivity (the highest reaching --target-sensitivity) or run "
                                         "(keep the run's decisions; recalibrate the probabilities only)."),
              target_sensitivity: float = typer.Option(0.9, "--target-sensitivity", help="For --method sensitivity."),
              shrinkage: Optional[float] = typer.Option(None, help="Pull each fitted threshold toward the run's: the "
                                                        "site's weight is m / (m + SHRINKAGE), m = the class's "
                                                        "positives or negatives, whichever are fewer; 0 keeps the "
                                                        "site's thresholds as fitted. Default: the value chosen on "
                                                        "PTB-XL (`ecgnet docs own_data`) for youden and f1, 0 for "
                                                        "sensitivity; printed below."),
              calibration: str = typer.Option("temperature", help="Probabilities: temperature (one temperature per "
                                              "class), isotonic, or none."),
              source: Optional[str] = typer.Option(None, "--source", help="Only the manifest's records "
                                                   "of this source."),
              folds: int = typer.Option(5, help="Cross-fitting folds of the report (held-out before/after)."),
              copy_to: Optional[Path] = typer.Option(None, "--copy-to", help="Calibrate a copy of the run made here "
                                                     "(needed for a bundled model, which lives inside the package)."),
              label_map: Optional[Path] = typer.Option(None, "--label-map", help="YAML or CSV mapping the manifest's "
                                                       "codes to classes."),
              skip_bad: bool = typer.Option(False, "--skip-bad", help="List and leave out bad manifest rows and "
                                            "unreadable records, and exit 0 (without it a bad row stops calibrate, "
                                            "and an unreadable record makes its exit status 1)."),
              n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
              seed: int = typer.Option(0, help="Seed of the folds and the bootstrap."),
              long_records: str = LongRecordsOpt,
              max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt, max_values: int = MaxValuesOpt,
              progress: bool = ProgressOpt):
    """Operating points for a site: per-class thresholds and probability calibration fitted on the site's
    labelled records (--manifest), or on the run's out-of-fold predictions of them (--from-cv), stored in the run
    as RUN/profiles/SITE.json, with a report scored on held-out records.

    Exit status: 0 when every record was used; 1 when some record of the manifest could not be read (the profile
    is fitted on the others and written; 0 with --skip-bad); 2 for a usage error.
    """
    from ecgnet.evaluation.calibrate_site import calibrate_command
    from ecgnet.evaluation.recalibration import carry_threshold

    profile = calibrate_command(run, manifest, site, label_map, skip_bad, copy_to, progress, method=method,
                                target_sensitivity=target_sensitivity, shrinkage=shrinkage, calibration=calibration,
                                folds=folds, source=source, n_boot=n_boot, seed=seed, long_records=long_records,
                                limits=read_limits(max_seconds, max_signals, max_values), from_cv=from_cv)
    ev = profile["evaluation"]
    shrunk = f" (shrinkage {profile['shrinkage']:g})" if profile.get("shrinkage") is not None else ""
    skipped, unreadable = profile["manifest"]["rows_skipped"], profile["manifest"].get("unreadable", [])
    fitted_on = profile.get("fitted_on") or {}
    oof = fitted_on.get("probabilities") == "out-of-fold"
    console.print(f"Site profile [bold]{escape(site)}[/] for {escape(profile['run'])}: "
                  f"{profile['manifest']['records_used']} records"
                  + (f" (out-of-fold predictions of {fitted_on.get('fold_models') or 'the'} fold models, "
                     f"{escape(fitted_on['predictions'])})" if oof else "")
                  + (f" ({len(skipped)} manifest rows skipped)" if skipped else "")
                  + (f" ({len(unreadable)} unreadable, left out"
                     + (" with --skip-bad)" if skip_bad else ")") if unreadable else "")
                  + f", {method} thresholds{shrunk}, {calibration} calibration")
    print_skipped(skipped)
    print_unreadable(unreadable)  # fitted without them: named, as evaluate names them
    if profile.get("replaces"):
        r = profile["replaces"]
        console.print(f"[yellow]replaced[/] the earlier profile '{escape(site)}'"
                      + (f" (fitted on {r['records']} records, {r['date']})" if r.get("records") is not None else ""),
                      highlight=False, soft_wrap=True)
    if oof:  # what was fitted on, and the approximation, before the figures
        console.print(f"note: fitted on {escape(fitted_on['statement'])}", highlight=False, soft_wrap=True)
    if profile["manifest"].get("classes_missing"):
        console.print(f"not labelled in {'cv/predictions.csv' if oof else 'the manifest'} (the run's thresholds kept): "
                      f"{escape(', '.join(profile['manifest']['classes_missing']))}")
    if profile["manifest"].get("classes_ignored"):
        console.print(f"not predicted by the run (ignored): "
                      f"{escape(', '.join(profile['manifest']['classes_ignored']))}")
    for line in ev.get("warnings", []):  # before the figures they qualify ("the figures below are optimistic")
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    for c in profile["classes"]:
        e, fitted = ev["per_class"][c], profile["fitted"][c]
        raw = profile["run_thresholds"][c]  # on the run's probabilities; the site's are on calibrated ones
        carried = carry_threshold(raw, profile["calibrators"][c])
        line = f"  {c:<5} threshold: run {carried:.3f} → site {profile['thresholds'][c]:.3f}" + (
            f" (on the calibrated probability; the run's is {raw:.3f} on its own)" if abs(carried - raw) >= 5e-4 else "")
        if "before" in e:
            line += (f"   held-out balanced accuracy {e['before']['balanced_accuracy']:.3f} → "
                     f"{e['after']['balanced_accuracy']:.3f}, ECE {e['ece_before']:.3f} → {e['ece_after']:.3f}")
        if profile["calibrators"][c].get("not_fitted"):
            line += f"   (not calibrated: {profile['calibrators'][c]['not_fitted']})"
        console.print(escape(line if fitted is True else f"{line}   (not fitted: {fitted})"), highlight=False)
    console.print(f"Profile: [bold]{escape(profile['path'])}[/]  Report: [bold]{escape(profile['report'])}[/]")
    console.print(f"Use it: ecgnet predict RECORDS --checkpoint {escape(str(Path(profile['path']).parents[1]))} "
                  f"--site {escape(site)}", highlight=False)
    exit_if_unreadable(unreadable, profile["manifest"]["records_used"] + len(unreadable), manifest, skip_bad,
                       "fitted the profile")


@app.command("evaluate-external")
@friendly
def evaluate_external(dataset: Path = typer.Argument(..., help="A Challenge-style dataset folder (WFDB headers "
                                                             "with #Dx SNOMED CT codes), searched recursively."),
                      checkpoint: str = typer.Option(DEFAULT_MODEL, help=CHECKPOINT_HELP),
                      out: Optional[Path] = typer.Option(None, help="Output folder (default: "
                                                         "outputs/<run>/external/<dataset>)."),
                      n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
                      skip_bad: bool = typer.Option(False, "--skip-bad", help="Exit 0 although some records could "
                                                    "not be read (listed and left unscored either way; without it "
                                                    "the exit status is 1)."),
                      long_records: str = LongRecordsOpt,
                      max_seconds: float = MaxSecondsOpt, max_signals: int = MaxSignalsOpt,
                      max_values: int = MaxValuesOpt, progress: bool = ProgressOpt):
    """Transfer beyond PTB-XL: per-class AUC with intervals on an external labelled dataset, per source.

    Exit status: 0 when every record was read; 1 when some record could not be read (each is listed, the others
    are scored and written, and the last line counts them; 0 with --skip-bad); 2 for a usage error.
    """
    from ecgnet.evaluation.external import evaluate_external as run
    from ecgnet.evaluation.scoring import format_auc

    name = Path(str(checkpoint)).name
    result = run(checkpoint, dataset, out or Path("outputs") / name / "external" / dataset.resolve().name,
                 n_boot=n_boot, long_records=long_records, progress=progress,
                 limits=read_limits(max_seconds, max_signals, max_values))
    console.print(f"{escape(result['run'])} on {escape(str(dataset))}: {result['n_scored']} of "
                  f"{result['n_records']} records scored ({len(result['unreadable'])} unreadable, "
                  f"{len(result['unlabeled'])} without a superclass)")
    print_unreadable(result["unreadable"])
    console.print(f"macro AUC {format_auc(result['macro_auc'])}")
    for c, e in result["per_class"].items():
        console.print(f"  {c:<5} {format_auc(e):<24} n positive {e['n_positive']}", highlight=False)
    console.print(f"Report: [bold]{escape(result['report'])}[/]")
    read = result["n_records"] - len(result["unlabeled"])  # a record without a superclass is not read
    exit_if_unreadable(result["unreadable"], read, dataset, skip_bad, "were scored")


@app.command()
@friendly
def compare(run_dirs: Optional[list[Path]] = typer.Argument(None, help="Runs to compare: run directories "
                                                               "(runs/<name>) or bundled model names."),
            baseline: str = typer.Option(DEFAULT_MODEL, help="Run (or bundled model) the others are tested against "
                                         "(paired bootstrap on fold 10)."),
            out: Path = typer.Option(Path("outputs/comparison"), help="Folder for comparison.json/.md/.html."),
            data: Optional[Path] = DataOpt,
            explain: bool = typer.Option(True, "--explain/--no-explain",
                                         help="Attributions and lead importance for the best run (by fold-9 AUC)."),
            ablation_records: Optional[int] = typer.Option(None, help="Fold-10 records for modality ablation "
                                                           "(default all; 0 skips it)."),
            explain_records: int = typer.Option(16, min=1, help="Fold-10 records per class "
                                                "for the lead-importance table."),
            n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the intervals."),
            render_only: Optional[Path] = typer.Option(None, "--render-only", metavar="OUT",
                                                       help="Only redraw the report in OUT from its comparison.json "
                                                       "(nothing recomputed)."),
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
