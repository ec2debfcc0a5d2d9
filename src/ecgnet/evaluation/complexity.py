"""What a model costs: multiply–accumulates per ECG, single-thread CPU latency, training time.

* MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass (MACs = FLOPs / 2).
  It counts the matrix products and convolutions (linear layers, convolutions, attention); the FFTs of
  the frequency and spectrogram frontends are added with the usual radix-2 estimate (:func:`fft_flop`:
  5 n log2 n FLOPs per complex transform of length n, half that for a real input). Element-wise work
  (batch norm, activations, windowing, log, pooling) is not counted; it is small next to the convolutions.
  A whole record is evaluated as ``windows`` overlapping crops (10 s at 100 Hz, 2.5 s windows every
  1.25 s → 7), so MACs per ECG = MACs per window × windows.
* Latency is the wall-clock median of whole-record windowed inference (:func:`windowed_proba`) of one
  ECG with ``threads`` torch threads — what a user of ``ecgnet predict`` on one record waits for the
  model (data loading excluded). It is noisy on a shared machine: compare models measured together.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ecgnet.models.windows import window_starts, windowed_proba

aten = torch.ops.aten


def _inputs(samples: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 12, samples, generator=g) * 0.2,  # ~ECG amplitude in mV
            torch.randn(batch, 8, generator=g))


def fft_flop(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of a real-to-complex FFT (``aten._fft_r2c``, which ``torch.fft.rfft`` and ``torch.stft`` call)
    over ``dim`` of an input of ``x_shape``: per transformed dimension of length n, 2.5 n log2 n for
    each of the numel / n signals — the radix-2 count of a complex FFT (5 n log2 n), halved for real input."""
    numel = math.prod(x_shape)
    total = 0.0
    for d in dim:
        n = x_shape[d]
        total += 2.5 * n * math.log2(n) * numel / n if n > 1 else 0.0
    return int(total)


def complex_fft_flop(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of a complex FFT (``aten._fft_c2c`` / ``aten._fft_c2r``): twice the real-input count."""
    return 2 * fft_flop(x_shape, dim)


FFT_FLOPS = {aten._fft_r2c: fft_flop, aten._fft_c2c: complex_fft_flop, aten._fft_c2r: complex_fft_flop}


def count_macs(model: nn.Module, samples: int = 250, windows: int = 7) -> dict:
    """{"per_window", "per_ecg", "samples", "windows"}: MACs of one forward pass on a
    (1, 12, ``samples``) crop with (1, 8) metadata, and × ``windows`` for a whole record.

    The pass runs with autograd enabled (nothing is backpropagated): in no-grad evaluation PyTorch
    swaps Transformer layers for a fused kernel that the counter does not see.
    """
    was_training = model.training
    model.eval()
    signal, metadata = _inputs(samples)
    try:
        with FlopCounterMode(display=False, custom_mapping=FFT_FLOPS) as counter:
            model(signal, metadata)
    finally:
        model.train(was_training)
    per_window = int(counter.get_total_flops()) // 2
    return {"per_window": per_window, "per_ecg": per_window * int(windows), "samples": int(samples),
            "windows": int(windows)}


def n_windows(samples: int = 1000, window: int | None = 250, stride: int = 125) -> int:
    """How many windows windowed inference evaluates on a record of ``samples``."""
    return len(window_starts(samples, window or samples, stride))


def latency_ms(model: nn.Module, threads: int = 1, repeats: int = 20, warmup: int = 3, samples: int = 1000,
               window: int | None = 250, stride: int = 125, aggregate: str = "max") -> float:
    """Median milliseconds to get whole-record probabilities for one (1, 12, ``samples``) ECG with
    ``threads`` torch CPU threads (restored afterwards), model on the CPU in evaluation mode."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    was_training, previous = model.training, torch.get_num_threads()
    model.eval()
    signal, metadata = _inputs(samples)
    times = []
    torch.set_num_threads(threads)
    try:
        for i in range(warmup + repeats):
            start = time.perf_counter()
            windowed_proba(model, signal, metadata, window, stride, aggregate)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return 1000 * statistics.median(times)


def model_cost(model: nn.Module, config, latency_repeats: int = 20) -> dict:
    """A run's model at inference, with its config's windows: parameters, MACs per window and per 10 s ECG,
    windows, and the median 1-thread whole-record latency (:func:`latency_ms`)."""
    window, stride, samples = config.data.window, config.data.stride, 10 * config.data.sampling_rate
    macs = count_macs(model, window or samples, n_windows(samples, window, stride))
    return {"parameters": sum(p.numel() for p in model.parameters()), "macs_per_window": macs["per_window"],
            "macs_per_ecg": macs["per_ecg"], "windows": macs["windows"],
            "latency_ms": latency_ms(model, threads=1, repeats=latency_repeats, samples=samples, window=window,
                                     stride=stride, aggregate=config.data.aggregate)}


def epoch_seconds(run_dir: str | Path) -> float | None:
    """Mean training-epoch wall time from ``run_dir/logs/metrics.csv`` (None if it is absent)."""
    path = Path(run_dir) / "logs" / "metrics.csv"
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    if "epoch_seconds" not in df:
        return None
    values = pd.to_numeric(df["epoch_seconds"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None
