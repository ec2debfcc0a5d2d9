"""What every command shares: the ``ecgnet`` application and its ``data`` group, the consoles, the options
several commands take (checkpoint, data folder, progress, read budget, long records), the patient options'
check, and :func:`friendly`, which turns a user's error into one line and exit status 2."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console
from rich.markup import escape

from ecgnet.data.patient import PatientError, check_patient
from ecgnet.errors import ECGNetError
from ecgnet.cli.help import Typer

app = Typer(help="ECGNet: multimodal 12-lead ECG diagnosis, trained on PTB-XL, fine-tuned and validated on your own "
                 "ECGs.", no_args_is_help=True,
            pretty_exceptions_enable=False, add_completion=False)
data_app = Typer(help="Get, check and inspect the PTB-XL dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# Piped output (make, logs) gets 120 columns instead of rich's 80, so tables are not truncated, and lines are not
# wrapped: a message, a path or a listed record stays one line in a log (wrapped at 80, one error took three).
console = Console(width=None if sys.stdout.isatty() else 120, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120, soft_wrap=not sys.stderr.isatty())


def patient_options(**fields) -> dict:
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


def read_limits(max_seconds: float, max_signals: int, max_values: int):
    from ecgnet.data.limits import ReadLimits

    return ReadLimits(max_signals=max_signals, max_seconds=max_seconds, max_values=max_values)


UNREADABLE_SHOWN = 3  # unreadable records named on the terminal; the report lists them all


def print_unreadable(unreadable: list[dict], shown: int = UNREADABLE_SHOWN) -> None:
    """The first few unreadable records of an evaluation and why (all are listed in its report)."""
    for u in unreadable[:shown]:
        console.print(f"[yellow]unreadable:[/] {escape(str(u['error']))}", highlight=False, soft_wrap=True)
    if len(unreadable) > shown:
        console.print(f"… and {len(unreadable) - shown} more unreadable records (listed in the report)",
                      highlight=False)


def exit_if_unreadable(unreadable: list[dict], n_records: int, manifest, skip_bad: bool, what: str) -> None:
    """As ``predict``: exit status 1 — after the results for the other records were written — when some record of
    ``manifest`` could not be read, unless ``--skip-bad`` asked for them to be left out. ``what`` the others did
    ('were scored', 'fitted the profile')."""
    if not unreadable or skip_bad:
        return
    n = len(unreadable)
    listed = "named above" if n <= UNREADABLE_SHOWN else f"the first {UNREADABLE_SHOWN} named above"
    err.print(f"error: {n} of {n_records} records of {escape(str(manifest))} could not be read ({listed}, all in the "
              f"report); the other {n_records - n} {what} — --skip-bad leaves unreadable records out",
              highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def print_skipped(skipped: list[dict]) -> None:
    """The manifest rows left out with --skip-bad, one line each on stderr: 'skipped line N (RECORD): why'."""
    for row in skipped:
        err.print(escape(f"skipped {row['row']}: {row['why']}"), highlight=False, soft_wrap=True)


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
