"""The command line of a report script and the line its output opens with. ``-h``/``--help`` prints the
script's docstring (its usage) and exits 0 before anything is read or written; an unknown option or a wrong
number of arguments is one line on stderr and exit 2 (scripts once took ``--help`` for a run name, or
ignored it and rewrote their committed results). :func:`made_by` says how the output was made: the
revision and the ``python -m …`` command, with ``> FILE`` when standard output is a file of the checkout.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def fail(message: str) -> None:
    """One line on stderr, exit 2 (a usage error), naming the script as provenance does (``python -m reports.…``)."""
    from ecgnet.runs.origin import command

    print(f"{command(sys.argv[:1])}: {message} (--help says how to run it)", file=sys.stderr)
    raise SystemExit(2)


def arguments(doc: str | None, least: int = 0, most: int | None = 0, options: tuple[str, ...] = ()) -> list[str]:
    """``sys.argv[1:]``, checked: between ``least`` and ``most`` (None: no limit) positional arguments, and
    no option other than ``options`` (passed on, e.g. to a benchmark's own parser)."""
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print((doc or "").strip())
        raise SystemExit(0)
    unknown = [a for a in argv if a.startswith("-") and a not in options]
    if unknown:
        fail(f"unknown option {unknown[0]}")
    given = len([a for a in argv if a not in options])
    if given < least or (most is not None and given > most):
        wanted = f"{least}" if most == least else f"{least} or more" if most is None else f"{least} to {most}"
        fail(f"{given} argument{'s' * (given != 1)} given, {wanted} expected")
    return argv


def command(doc: str | None, commands: dict[str, Callable], default: Callable | None = None):
    """Run the sub-command ``sys.argv[1]`` names (its arguments after it), or ``default`` without one; --help,
    an unknown sub-command or the wrong number of its arguments as :func:`arguments` (a typo ran ``default``,
    which trains and rewrites committed results)."""
    argv = arguments(doc, 0 if default else 1, None)
    if not argv:
        return default()
    name, rest = argv[0], argv[1:]
    if name not in commands:
        fail(f"unknown command {name!r} (one of {', '.join(commands)})")
    try:
        inspect.signature(commands[name]).bind(*rest)
    except TypeError:
        fail(f"{name}: {len(rest)} argument{'s' * (len(rest) != 1)} given")
    return commands[name](*rest)


def made_by() -> str:
    """``Revision abc1234[ with uncommitted changes to …]; command `python -m … [> FILE]```."""
    from ecgnet.runs import provenance

    origin = provenance()
    dirty = f" with uncommitted changes to {', '.join(origin['git_dirty_files'])}" if origin["git_dirty"] else ""
    try:  # the file standard output was sent to, when it is one of the checkout (the output being re-made)
        out = " > " + Path(os.readlink("/proc/self/fd/1")).relative_to(REPO).as_posix()
    except (OSError, ValueError):
        out = ""
    return f"Revision {(origin['git_revision'] or 'unknown')[:7]}{dirty}; command `{origin['command']}{out}`"
