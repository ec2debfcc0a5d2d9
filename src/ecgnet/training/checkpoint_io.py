"""Lightning checkpoints that a kill cannot leave half-written or out of step with each other.

Lightning 2.6 writes a local checkpoint through an fsspec transaction: a temporary file in the
*system* temporary folder, then ``shutil.move`` onto the target — a copy, not a rename, whenever that
folder is on another file system, so a kill during the copy leaves half a ``last.ckpt``, and a kill
before it leaves the temporary file behind. :class:`AtomicCheckpointIO` writes beside the target
(:func:`ecgnet.fileio.atomic_path`), flushes it to the disk, then renames it.

A new best checkpoint is written as ``best.ckpt.staged-step-N`` and renamed to ``best.ckpt`` only after
``last.ckpt`` of the same step is written (ModelCheckpoint writes the best first). Otherwise a kill
between the two writes would leave a ``best.ckpt`` from an epoch that ``last.ckpt`` — where a resumed
run continues from — never reached, while its record of the best score still named the older best.
When ``last.ckpt`` is loaded to resume, a staged file of its step is committed, any other discarded.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ecgnet.fileio import atomic_path, remove_leftovers

BEST, LAST = "best.ckpt", "last.ckpt"
STAGED = re.compile(r"^(?P<name>.+\.ckpt)\.staged-step-(?P<step>\d+)$")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written beside their target and renamed; ``best.ckpt`` moves in step with ``last.ckpt``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        path = Path(path)
        step = int(checkpoint.get("global_step", 0))
        if path.name == BEST:
            write_checkpoint(checkpoint, path.with_name(f"{BEST}.staged-step-{step}"))
            return
        write_checkpoint(checkpoint, path)
        if path.name == LAST:
            commit_staged(path.parent, step)

    def load_checkpoint(self, path, *args: Any, **kwargs: Any) -> dict:
        checkpoint = super().load_checkpoint(path, *args, **kwargs)
        if Path(path).name == LAST:  # resuming: finish what the killed session was doing
            commit_staged(Path(path).parent, int(checkpoint.get("global_step", 0)))
            remove_leftovers(Path(path).parent)
        return checkpoint


def write_checkpoint(checkpoint: dict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)  # serialised first: a full disk is then an OSError of the write
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        f.flush()
        os.fsync(f.fileno())


def commit_staged(folder: Path, step: int) -> None:
    """Rename the checkpoints staged at ``step`` onto their names; delete those of other steps."""
    for staged in sorted(folder.glob("*.staged-step-*")):
        match = STAGED.match(staged.name)
        if match is None:
            continue
        try:
            if int(match["step"]) == step:
                os.replace(staged, folder / match["name"])
            else:
                staged.unlink()
        except FileNotFoundError:  # another process of a distributed run got there first
            pass


def clear_checkpoints(folder: Path) -> None:
    """A fresh start: the checkpoints of an earlier training in this folder go (else ModelCheckpoint
    would write ``best-v1.ckpt`` beside a stale ``best.ckpt``)."""
    if not folder.is_dir():
        return
    for path in [*folder.glob("*.ckpt"), *folder.glob("*.staged-step-*")]:
        path.unlink(missing_ok=True)
    remove_leftovers(folder)
