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
    window = window or signal.shape[-1]
    crops, count = _crops(signal, window, stride)  # (windows × batch, 12, window)
    probs = sigmoid(model(crops, metadata.repeat(count, 1)))
    probs = probs.view(count, signal.shape[0], -1)
    return probs.amax(0) if aggregate == "max" else probs.mean(0)


def _crops(signal: torch.Tensor, window: int, stride: int) -> tuple[torch.Tensor, int]:
    """(windows × batch, 12, window) crops at :func:`window_starts` (window-major) and how many windows.

    While a model is exported with a dynamic time axis (``samples`` symbolic), the same crops as one gather
    whose size follows the record's length: the starts are min(i × stride, samples − window) for
    i < ceil((samples − window) / stride) + 1, which is :func:`window_starts` (the last window ends at the
    record's end, and is not repeated when it falls on the stride) for any ``samples`` ≥ ``window``. So a
    late-fusion graph takes segments of any length from its window up — 10 s, a shorter record, or a longer one
    whole (``--long-records windows``) — (the Python list of starts had fixed the exported time axis at the
    example's length); torch, and an export of a fixed length, keep the slices."""
    samples = signal.shape[-1]
    if not torch.compiler.is_exporting() or isinstance(samples, int):
        starts = window_starts(samples, window, stride)
        return torch.cat([signal[..., s:s + window] for s in starts]), len(starts)
    count = (samples - window + stride - 1) // stride + 1
    starts = torch.clamp(torch.arange(count, device=signal.device) * stride, max=samples - window)
    index = starts[:, None] + torch.arange(window, device=signal.device)[None]  # (windows, window)
    crops = signal[:, :, index].permute(2, 0, 1, 3)  # (windows, batch, 12, window)
    return crops.reshape(-1, signal.shape[1], window), count


@torch.no_grad()
def windowed_proba(model: nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                   window: int | None, stride: int, aggregate: str = "max") -> torch.Tensor:
    """:func:`aggregate_windows` without gradients, for prediction."""
    return aggregate_windows(model, signal, metadata, window, stride, aggregate)
