"""Training's progress in a log: one line per epoch (a progress bar written to a file is one frozen frame)."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import torch

from ecgnet.training.progress import EpochLines, progress_callbacks


def test_each_epoch_is_one_line_with_the_best_so_far(capsys):
    lines = EpochLines()
    for epoch, auc in enumerate((0.81, 0.85, 0.84)):
        trainer = SimpleNamespace(is_global_zero=True, sanity_checking=False, current_epoch=epoch, max_epochs=20,
                                  callback_metrics={"train_loss": torch.tensor(0.3 - epoch / 100),
                                                    "val_macro_auc": torch.tensor(auc)})
        lines.on_train_epoch_start(trainer, None)
        lines.on_train_epoch_end(trainer, None)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("epoch 1/20: train loss 0.3000, val macro AUC 0.8100 (best 0.8100, epoch 1), ")
    assert err[2].startswith("epoch 3/20: train loss 0.2800, val macro AUC 0.8400 (best 0.8500, epoch 2), ")
    other_rank = SimpleNamespace(is_global_zero=False, sanity_checking=False, current_epoch=3, max_epochs=20,
                                 callback_metrics={})
    lines.on_train_epoch_end(other_rank, None)
    assert capsys.readouterr().err == ""  # rank 0 speaks for a distributed run


def test_no_bar_when_not_a_terminal_and_nothing_when_asked(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file, as under nohup
    shown, bar = progress_callbacks(True)
    assert [type(c) for c in shown] == [EpochLines] and bar is False
    assert progress_callbacks(False) == ([], False)


def test_a_terminal_gets_the_bar_and_a_line_per_epoch_without_v_num(monkeypatch):
    """On a terminal the bar showed 'Epoch 0/0 … v_num: logs' and no line for a finished epoch (a wheel-user
    audit): each finished epoch keeps its line, the bar drops the logger's version."""
    from rich.console import Console

    from ecgnet.training.progress import EpochBar

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    shown, bar = progress_callbacks(True)
    assert [type(c) for c in shown] == [EpochBar, EpochLines] and bar is True
    monkeypatch.setattr("lightning.pytorch.callbacks.RichProgressBar.get_metrics",
                        lambda self, trainer, module: {"v_num": "logs", "train_loss": 0.5})
    assert shown[0].get_metrics(None, None) == {"train_loss": 0.5}


def test_the_bar_counts_epochs_from_1_as_the_lines_do():
    """Lightning's bar said 'Epoch 0/2' under the line 'epoch 1/3' (a review)."""
    from types import SimpleNamespace

    from ecgnet.training.progress import EpochBar

    bar = EpochBar()
    bar._trainer = SimpleNamespace(max_epochs=3)
    assert bar._get_train_description(0).strip() == "Epoch 1/3"


def test_the_bar_overrides_a_method_lightning_still_calls():
    """EpochBar overrides RichProgressBar's private _get_train_description (pyproject allows any lightning >= 2.3):
    if a Lightning release renames it, the bar silently says 'Epoch 0/2' again — this fails instead."""
    import inspect

    from lightning.pytorch.callbacks import RichProgressBar

    assert "_get_train_description" in inspect.getsource(RichProgressBar.on_train_epoch_start)
