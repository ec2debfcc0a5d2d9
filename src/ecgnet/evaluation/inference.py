"""Probabilities for whole records from a model trained on crops: slide a window over the record
(``window`` samples every ``stride``) and aggregate the windows' probabilities per record — the
maximum by default, as in the PTB-XL benchmark."""

from __future__ import annotations

import numpy as np
import torch
from rich.progress import Progress
from torch import nn


def window_starts(samples: int, window: int, stride: int) -> list[int]:
    """Window starts covering the whole record; the last window ends at the record's end."""
    if window >= samples:
        return [0]
    starts = list(range(0, samples - window + 1, stride))
    if starts[-1] != samples - window:
        starts.append(samples - window)
    return starts


def aggregate_windows(model: nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                      window: int | None, stride: int, aggregate: str = "max") -> torch.Tensor:
    """(batch, 12, samples) → (batch, classes) probabilities, aggregated over the windows
    (differentiable; models with ``whole_record = True`` window internally and see the record)."""
    if getattr(model, "whole_record", False):
        return torch.sigmoid(model(signal, metadata))
    samples = signal.shape[-1]
    window = window or samples
    starts = window_starts(samples, window, stride)
    crops = torch.cat([signal[..., s:s + window] for s in starts])  # (windows × batch, 12, window)
    probs = torch.sigmoid(model(crops, metadata.repeat(len(starts), 1)))
    probs = probs.view(len(starts), signal.shape[0], -1)
    return probs.amax(0) if aggregate == "max" else probs.mean(0)


@torch.no_grad()
def windowed_proba(model: nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                   window: int | None, stride: int, aggregate: str = "max") -> torch.Tensor:
    """:func:`aggregate_windows` without gradients, for prediction."""
    return aggregate_windows(model, signal, metadata, window, stride, aggregate)


def predict_proba(model: nn.Module, signal: np.ndarray, metadata: np.ndarray, window: int | None,
                  stride: int, aggregate: str = "max", batch_size: int = 256,
                  progress: bool = False, description: str = "Predicting") -> np.ndarray:
    """(n, 12, samples) mV + (n, 8) metadata → (n, classes) probabilities, in evaluation mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(description, total=len(signal))
        for i in range(0, len(signal), batch_size):
            x = torch.as_tensor(np.asarray(signal[i:i + batch_size]), device=device)
            m = torch.as_tensor(np.asarray(metadata[i:i + batch_size]), device=device)
            out.append(windowed_proba(model, x, m, window, stride, aggregate).cpu().numpy())
            bar.advance(task, len(x))
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
