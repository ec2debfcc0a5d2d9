"""Ctrl-C during a Lightning fit, said in words: Lightning shuts down gracefully, then calls ``sys.exit(1)``
without a word (its notice goes to a logger the CLI quiets) — a status that means "some inputs failed".
:func:`interruptible` turns that into a KeyboardInterrupt carrying what stopped and how to go on, which
the CLI prints as one line with exit status 130.
"""

from __future__ import annotations

import contextlib

import lightning as L


@contextlib.contextmanager
def interruptible(trainer: L.Trainer, message: str):
    """Ctrl-C during ``trainer.fit``: Lightning shuts down gracefully, then exits with status 1 and says
    nothing; this turns that into a KeyboardInterrupt carrying ``message`` (the CLI prints it, exit 130)."""
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt(message) from None
        raise
