"""Probabilities for whole records from a model trained on crops: slide a window over the record
(``window`` samples every ``stride``) and aggregate the windows' probabilities per record — the
maximum by default, as in the PTB-XL benchmark. Training's validation, late fusion's members, the
exporter and every inference engine window a record with these functions; records longer than 10 s are
:mod:`ecgnet.inference.windows`' business."""

from __future__ import annotations

import torch
from torch import nn

from ecgnet.data.signals import window_starts  # noqa: F401  (the one rule, shared with the 10 s segments)

AGGREGATES = ("max", "mean")  # over a record's windows


def sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """``torch.sigmoid``; while a model is exported, written out as 1 / (1 + exp(−x)): ONNX Runtime's Sigmoid is
    off by up to 1.7e-7 absolute (measured with onnxruntime 1.32: 2 % at a probability of 2e-6, 47 % at x = −16,
    0 returned below x ≈ −20), which a late-fusion stack's logit of its members' probabilities turned into 3e-3
    on a record's probability."""
    if torch.compiler.is_exporting():
        return 1 / (1 + torch.exp(-logits))
    return torch.sigmoid(logits)


def aggregate_windows(model: nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                      window: int | None, stride: int, aggregate: str = "max") -> torch.Tensor:
    """(batch, 12, samples) → (batch, classes) probabilities, aggregated over the windows
    (differentiable; models with ``whole_record = True`` window internally and see the record).
    ``aggregate``: 'max' (the benchmark's) or 'mean' over the windows."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    if getattr(model, "whole_record", False):
        return sigmoid(model(signal, metadata))
    samples = signal.shape[-1]
    window = window or samples
    starts = window_starts(samples, window, stride)
    crops = torch.cat([signal[..., s:s + window] for s in starts])  # (windows × batch, 12, window)
    probs = sigmoid(model(crops, metadata.repeat(len(starts), 1)))
    probs = probs.view(len(starts), signal.shape[0], -1)
    return probs.amax(0) if aggregate == "max" else probs.mean(0)


@torch.no_grad()
def windowed_proba(model: nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                   window: int | None, stride: int, aggregate: str = "max") -> torch.Tensor:
    """:func:`aggregate_windows` without gradients, for prediction."""
    return aggregate_windows(model, signal, metadata, window, stride, aggregate)
