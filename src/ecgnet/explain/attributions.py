"""Integrated Gradients (captum) over the input ECG and over the frequency representation.

* :func:`time_attributions`: IG of one class's **logit** w.r.t. the input signal (mV, leads × time),
  baseline a flat 0 mV signal (metadata held fixed). It explains one inference window of the length
  the model was trained on (2.5 s by default): frequency and spectrogram models depend on the crop
  length, and whole-record predictions are the maximum over such windows, so by default the window
  whose probability for the class is highest — the one that decided the prediction — is explained.
  ``window=None`` explains the full record in one pass (only meaningful for length-agnostic models,
  e.g. the time ResNet).
* :func:`frequency_attributions`: Layer IG on the output of the model's :class:`FrequencyFrontend`
  (per-lead log-magnitude spectrum), integrating from the spectrum of the 0 mV baseline to the
  record's: leads × frequency bins, with the bins' frequencies in Hz.
* :func:`lead_importance`: per class, mean |IG| per lead over fold-10 records positive for the class,
  normalised to sum to 1 over the leads.

Completeness: time attributions sum to logit(input) − logit(baseline) up to the integral's approximation
error, which captum reports as the convergence delta (kept in the results; it shrinks as the steps grow).
A frequency attribution's delta is that sum against the whole model's logit gap: in a
model with other branches (time, spectrogram, metadata) it holds what those branches contribute too (−4.6 to
−9.5 in the fusion comparison), not an approximation error. A model with several frequency frontends (an
ensemble) has the first one explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients
from matplotlib.colors import TwoSlopeNorm
from torch import nn

from ecgnet.data.dataset import Split
from ecgnet.data.ptbxl import META_FEATURES
from ecgnet.data.signals import LEADS
from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.models.windows import window_starts
from ecgnet.plotting import plt


@dataclass
class TimeAttribution:
    values: np.ndarray  # (leads, window): IG per input sample, in logit units
    signal: np.ndarray  # (leads, window) the explained window, mV
    start: int  # first sample of the window in the record
    target: int
    logit: float  # target logit on the window
    baseline_logit: float  # target logit on the 0 mV baseline
    delta: float  # captum's convergence delta: sum(values) − (logit − baseline_logit)


@dataclass
class FrequencyAttribution:
    values: np.ndarray  # (leads, bins): IG per spectrum bin (magnitude, + phase channels when present)
    frequencies: np.ndarray  # (bins,) Hz
    start: int
    target: int
    delta: float


def _as_batch(signal, metadata) -> tuple[torch.Tensor, torch.Tensor]:
    """One record as a batch of one, checked: ``signal`` (12, samples) mV, ``metadata`` the 8 features
    (:meth:`~ecgnet.inference.predictor.Predictor.metadata_vector`; all unknown: ``metadata_vector()``)."""
    if metadata is None:
        raise ValueError(f"metadata must be the record's {len(META_FEATURES)} features (Predictor.metadata_vector(); "
                         "all unknown: metadata_vector() with no arguments), not None")
    x, m = np.asarray(signal, dtype=np.float32), np.asarray(metadata, dtype=np.float32)
    x, m = (x[0] if x.ndim == 3 and len(x) == 1 else x), (m[0] if m.ndim == 2 and len(m) == 1 else m)
    if x.ndim != 2 or x.shape[0] != len(LEADS):
        raise ValueError(f"signal must be one record of shape ({len(LEADS)}, samples), leads first; got {x.shape}")
    if m.shape != (len(META_FEATURES),):
        raise ValueError(f"metadata must have shape ({len(META_FEATURES)},): {', '.join(META_FEATURES)}; got {m.shape}")
    if not (np.isfinite(x).all() and np.isfinite(m).all()):
        raise ValueError("signal and metadata must be finite (no NaN or infinity)")
    return torch.as_tensor(x)[None], torch.as_tensor(m)[None]


def _class_index(target_class, n_classes: int) -> int:
    """``target_class`` as an index into the model's ``n_classes`` outputs, else a ValueError."""
    if isinstance(target_class, (bool, np.bool_)) or not isinstance(target_class, (int, np.integer)):
        raise ValueError(f"target_class must be a class index (an int; the run's classes name them), "
                         f"not {target_class!r}")
    if not 0 <= target_class < n_classes:
        raise ValueError(f"target_class {target_class} is not a class of the model: 0–{n_classes - 1}")
    return int(target_class)


def _forward(model: nn.Module):
    def fn(signal, metadata):
        return model(signal, metadata)
    return fn


@torch.no_grad()
def best_window(model: nn.Module, signal, metadata, target_class: int, window: int | None = 250,
                stride: int = 125) -> int:
    """Start of the inference window with the highest logit for ``target_class`` (record (12, samples))."""
    x, m = _as_batch(signal, metadata)
    if window is None or window >= x.shape[-1]:
        return 0
    starts = window_starts(x.shape[-1], window, stride)
    logits = model(torch.cat([x[..., s:s + window] for s in starts]), m.repeat(len(starts), 1))
    return int(starts[int(logits[:, _class_index(target_class, logits.shape[1])].argmax())])


@torch.no_grad()
def decisive_window(model: nn.Module, signal, metadata, target_class: int, window: int, stride: int,
                    segments: list[tuple[int, int]]) -> tuple[int, int]:
    """(window start, its segment's start): the window with the highest logit for ``target_class`` among those
    the predictor scores — each 10 s segment ``(start, length)`` on its own grid (a long record's last segment
    ends with the record, so its windows are not on the first segments' grid)."""
    x, m = _as_batch(signal, metadata)
    candidates = [(seg + s, seg) for seg, length in segments
                  for s in (window_starts(length, window, stride) if window < length else [0])]
    logits = model(torch.cat([x[..., s:s + window] for s, _ in candidates]), m.repeat(len(candidates), 1))
    return candidates[int(logits[:, _class_index(target_class, logits.shape[1])].argmax())]


def _window(model, signal, metadata, target_class, window, start, stride):
    x, m = _as_batch(signal, metadata)
    with torch.no_grad():
        _class_index(target_class, model(x[..., :window or x.shape[-1]], m).shape[1])
    if window is None or window >= x.shape[-1]:
        return x, m, 0
    if start is None:
        start = best_window(model, x[0], m[0], target_class, window, stride)
    start = int(start)
    if not 0 <= start <= x.shape[-1] - window:
        raise ValueError(f"window [{start}, {start + window}) is outside the record of {x.shape[-1]} samples")
    return x[..., start:start + window].contiguous(), m, start


def time_attributions(model: nn.Module, signal, metadata, target_class: int, window: int | None = 250,
                      start: int | None = None, stride: int = 125, n_steps: int = 50) -> TimeAttribution:
    """IG of ``target_class``'s logit w.r.t. one window of the record ``signal`` (12, samples) mV with
    ``metadata`` (8,); ``start=None`` picks the window with the highest logit (see module docstring)."""
    model.eval()
    x, m, start = _window(model, signal, metadata, target_class, window, start, stride)
    baseline = torch.zeros_like(x)
    ig = IntegratedGradients(_forward(model))
    attr, delta = ig.attribute(x, baselines=baseline, target=int(target_class), additional_forward_args=(m,),
                               n_steps=n_steps, return_convergence_delta=True)
    with torch.no_grad():
        logit = float(model(x, m)[0, target_class])
        base_logit = float(model(baseline, m)[0, target_class])
    return TimeAttribution(attr[0].detach().numpy(), x[0].numpy(), start, int(target_class), logit, base_logit,
                           float(delta.reshape(-1)[0]))


def find_frequency_frontend(model: nn.Module) -> FrequencyFrontend | None:
    """The model's first :class:`FrequencyFrontend` submodule, or None."""
    return next((mod for mod in model.modules() if isinstance(mod, FrequencyFrontend)), None)


def frequency_attributions(model: nn.Module, signal, metadata, target_class: int, window: int | None = 250,
                           start: int | None = None, stride: int = 125, fs: float = 100,
                           n_steps: int = 50) -> FrequencyAttribution | None:
    """Layer IG on the FrequencyFrontend output → (leads, bins) with the bins' frequencies; None if the
    model has no frequency frontend or does not use it (e.g. the frequency modality dropped).

    With ``phase=True`` frontends the magnitude, cos- and sin-phase channels of a lead are summed, so
    a bin's value is the attribution of that bin of that lead as a whole.
    """
    frontend = find_frequency_frontend(model)
    if frontend is None:
        return None
    model.eval()
    x, m, start = _window(model, signal, metadata, target_class, window, start, stride)
    calls = []
    hook = frontend.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            model(x, m)
    finally:
        hook.remove()
    if not calls:  # the frontend is not used (e.g. the frequency modality dropped): nothing to attribute
        return None
    lig = LayerIntegratedGradients(_forward(model), frontend)
    attr, delta = lig.attribute(x, baselines=torch.zeros_like(x), target=int(target_class),
                                additional_forward_args=(m,), n_steps=n_steps, return_convergence_delta=True)
    values = attr[0].detach().numpy()
    leads = frontend.n_leads
    if values.shape[0] != leads:
        values = values.reshape(-1, leads, values.shape[-1]).sum(0)
    return FrequencyAttribution(values, FrequencyFrontend.frequencies(x.shape[-1], fs), start, int(target_class),
                                float(delta.reshape(-1)[0]))


def lead_importance(model: nn.Module, split: Split, classes, n_per_class: int = 16, window: int | None = 250,
                    stride: int = 125, n_steps: int = 32, seed: int = 0, lead_names=LEADS) -> dict:
    """Per class: mean |IG| of each lead over up to ``n_per_class`` fold-10 records positive for it
    (random, ``seed``), each explained on its highest-logit window, normalised to sum to 1 over leads.

    Cost ≈ classes × n_per_class × n_steps forward+backward passes of one window.
    Returns ``{"leads", "classes", "importance": {class: {lead: share}}, "n_records": {class: n}, ...}``.
    """
    model.eval()
    classes = [str(c) for c in classes]
    rng = np.random.default_rng(seed)
    ig = IntegratedGradients(_forward(model))
    importance, counts = {}, {}
    for k, c in enumerate(classes):
        pos = np.flatnonzero(split.y[:, k] == 1)
        if len(pos) == 0:
            continue
        rows = np.sort(rng.choice(pos, min(n_per_class, len(pos)), replace=False))
        xs, ms = [], []
        for r in rows:
            x, m, _ = _window(model, split.signal[r], split.metadata[r], k, window, None, stride)
            xs.append(x)
            ms.append(m)
        x, m = torch.cat(xs), torch.cat(ms)
        attr = ig.attribute(x, baselines=torch.zeros_like(x), target=k, additional_forward_args=(m,),
                            n_steps=n_steps, internal_batch_size=max(n_steps, 64))
        per_lead = attr.detach().abs().mean(dim=(0, 2)).numpy()
        total = per_lead.sum()
        share = per_lead / total if total > 0 else np.full_like(per_lead, 1 / len(per_lead))
        importance[c] = dict(zip(lead_names, map(float, share)))
        counts[c] = int(len(rows))
    return {"method": "Integrated Gradients (baseline 0 mV), mean |attribution| per lead, share of the class total",
            "window": window, "n_steps": n_steps, "leads": list(lead_names), "classes": list(importance),
            "importance": importance, "n_records": counts}


# --- figures ------------------------------------------------------------------------------

def _norm(values: np.ndarray) -> TwoSlopeNorm:
    vmax = float(np.abs(values).max()) or 1.0
    return TwoSlopeNorm(0.0, -vmax, vmax)


def plot_time_heatmap(signal, attributions, lead_names=LEADS, title: str = "", fs: float = 100, start: int = 0):
    """12 lead traces (black), each over its attribution (red: raises the class logit, blue: lowers it)."""
    signal, attributions = np.asarray(signal), np.asarray(attributions)
    if signal.ndim != 2 or signal.shape != attributions.shape:
        raise ValueError(f"signal {signal.shape} and attributions {attributions.shape} must have the same "
                         "(leads, samples) shape")
    leads, samples = signal.shape
    t = (start + np.arange(samples)) / fs
    fig, axes = plt.subplots(leads, 1, figsize=(9, 1.0 * leads + 1), sharex=True)
    axes = np.atleast_1d(axes)
    norm = _norm(attributions)
    image = None
    for i, ax in enumerate(axes):
        lo, hi = float(signal[i].min()), float(signal[i].max())
        pad = 0.1 * (hi - lo) + 1e-3
        image = ax.imshow(attributions[i][None, :], aspect="auto", cmap="RdBu_r", norm=norm,
                          extent=(t[0], t[-1] + 1 / fs, lo - pad, hi + pad), interpolation="nearest", alpha=0.85)
        ax.plot(t, signal[i], c="k", lw=0.8)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(str(lead_names[i]), rotation=0, ha="right", va="center")
        ax.set_yticks([])
    axes[-1].set_xlabel("time in the record (s)")
    fig.subplots_adjust(top=0.95, hspace=0.15)
    fig.suptitle(title, y=0.985)
    fig.colorbar(image, ax=list(axes), shrink=0.6, pad=0.01, label="IG attribution (logit units)")
    return fig


def plot_frequency_heatmap(attributions, frequencies, lead_names=LEADS, title: str = ""):
    """Leads × frequency heatmap of attributions on the log-magnitude spectrum."""
    attributions, frequencies = np.asarray(attributions), np.asarray(frequencies)
    step = frequencies[1] - frequencies[0] if len(frequencies) > 1 else 1.0
    fig, ax = plt.subplots(figsize=(9, 4.2))
    image = ax.imshow(attributions, aspect="auto", cmap="RdBu_r", norm=_norm(attributions), interpolation="nearest",
                      extent=(frequencies[0] - step / 2, frequencies[-1] + step / 2, len(attributions) - 0.5, -0.5))
    ax.set_yticks(range(len(attributions)), [str(n) for n in lead_names[:len(attributions)]])
    ax.set(xlabel="frequency (Hz)", title=title)
    fig.colorbar(image, ax=ax, label="IG attribution (logit units)")
    fig.tight_layout()
    return fig


def plot_lead_importance(table: dict, title: str = "Lead importance (share of |IG| per class)"):
    """Class × lead heatmap of :func:`lead_importance`, values annotated."""
    classes, leads = table["classes"], table["leads"]
    values = np.array([[table["importance"][c][lead] for lead in leads] for c in classes])
    fig, ax = plt.subplots(figsize=(0.65 * len(leads) + 2.5, 0.5 * len(classes) + 1.6))
    image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(leads)), leads)
    ax.set_yticks(range(len(classes)), [f"{c} (n={table['n_records'][c]})" for c in classes])
    for i in range(len(classes)):
        for j in range(len(leads)):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] < 0.6 * values.max() else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share")
    fig.tight_layout()
    return fig
