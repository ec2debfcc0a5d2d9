"""The end of a training: the model is saved, then its reports are written (a PTB-XL run's val/, test/ and report,
a manifest run's cv/ or scores, forgetting.json). In between, the run is *reports pending*
(:func:`ecgnet.runs.directory.mark_reports_pending`): a session cut off or failed there leaves a trained model that
``ecgnet train … --resume`` completes by writing only the reports — no training, no new session in run.json.

:func:`writing_reports` says so when writing them fails or is interrupted: what went wrong, and the command that
writes them without training again (a full disk once meant training the run again)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from ecgnet.errors import ECGNetError
from ecgnet.oserrors import disk_error
from ecgnet.runs.directory import reports_pending, resume_command


@contextmanager
def writing_reports(run_dir: Path, session: dict):
    """Around the writing of a saved model's reports (``run_dir`` marked reports pending; ``session``: this
    session's provenance): an ECGNetError or OSError becomes one ECGNetError naming the cause and the command
    that writes the reports without training; Ctrl-C says that command; any other error gets it as a note."""
    try:
        yield
    except BaseException as e:
        if not reports_pending(run_dir):  # a sweep's trial: its study goes on, the trial is not completed
            raise
        after = (f"the model is trained and saved; write its reports, without training again, with "
                 f"`{resume_command(run_dir, session.get('command'))}`")
        if isinstance(e, KeyboardInterrupt):
            raise KeyboardInterrupt(f"{run_dir}: stopped while writing its reports; {after}") from None
        if isinstance(e, (ECGNetError, OSError)):
            cause = e if isinstance(e, ECGNetError) else disk_error(e) or f"{type(e).__name__}: {e}"
            raise ECGNetError(f"{run_dir}: writing its reports failed ({cause}); {after} once that is fixed") from e
        if isinstance(e, Exception):
            e.add_note(f"{run_dir}: {after}")
        raise


def say_reports_only(run_dir: Path) -> None:
    """The one line a resumed run whose reports alone are pending prints before writing them."""
    print(f"note: {run_dir}: the model finished training before; writing only its reports (no training)",
          file=sys.stderr)
