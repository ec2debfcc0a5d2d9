"""How training shows its progress: a live bar on a terminal, one line per epoch anywhere else.

Run under ``nohup … > train.log`` (the way long training is run), Rich's progress bar is written once, as
its last frame, so a log said nothing until the run ended. :func:`progress_callbacks` gives the bar on a
terminal, and :class:`EpochLines` everywhere: after each epoch, on stderr (on a terminal, through the bar's
console above it, so on the terminal's output),

    epoch 3/20: train loss 0.2140, val macro AUC 0.9123 (best 0.9150, epoch 2), 41 s
"""

from __future__ import annotations

import sys
import time

from lightning.pytorch.callbacks import Callback, RichProgressBar


def progress_callbacks(progress: bool) -> tuple[list[Callback], bool]:
    """The callbacks showing progress and Lightning's ``enable_progress_bar``: the bar on a terminal, one
    line per epoch elsewhere, nothing with ``progress=False``."""
    from rich.console import Console

    if not progress:
        return [], False
    if Console().is_terminal:  # the bar for the epoch under way, and a line for each one finished above it
        return [EpochBar(), EpochLines()], True
    return [EpochLines()], False


class EpochBar(RichProgressBar):
    """Lightning's bar without its logger's version ('v_num: logs': nothing a user can read)."""

    # a private method of Lightning's (tests/test_progress.py fails if a release stops calling it)
    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's: "Epoch 0/19" for the first of 20
        text = f"Epoch {current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else "")
        return f"{text:{len(self.validation_description)}}"  # as Lightning pads it (no flicker)

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class EpochLines(Callback):
    """One line per finished epoch on stderr (rank 0): the logged training loss and validation metric, the
    best so far, the epoch's seconds. Any metric a module does not log is left out."""

    def __init__(self, monitor: str = "val_macro_auc"):
        self.monitor = monitor
        self.best: tuple[float, int] | None = None
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # after the epoch's validation
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        epoch, metrics = trainer.current_epoch + 1, trainer.callback_metrics
        parts = [f"{_label(name)} {float(metrics[name]):.4f}" for name in ("train_loss", "loss") if name in metrics]
        if self.monitor in metrics:
            value = float(metrics[self.monitor])
            if self.best is None or value > self.best[0]:
                self.best = (value, epoch)
            parts.append(f"{_label(self.monitor)} {value:.4f} (best {self.best[0]:.4f}, epoch {self.best[1]})")
        parts.append(f"{time.perf_counter() - self.start:.0f} s")
        print(f"epoch {epoch}/{trainer.max_epochs}: " + ", ".join(parts), file=sys.stderr, flush=True)


def _label(metric: str) -> str:
    return metric.replace("_", " ").replace(" auc", " AUC")
