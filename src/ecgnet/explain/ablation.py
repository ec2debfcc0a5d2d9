"""Which modality a fusion model relies on.

* :func:`modality_ablation`: fold-10 macro AUC with every modality, then with each one missing
  (``with model.drop({m})`` — the model's own representation of a missing modality: zeroed channels
  for early fusion, a learned "missing" token for intermediate fusion). The loss in AUC, with a paired
  bootstrap interval (full − dropped, on the same resamples), says how much the model needs it.
* :func:`modality_weights`: the mean gate/attention weight per modality of models that expose them
  (``model.last_weights`` after a forward pass: gated and attention intermediate fusion).

Both evaluate whole records exactly as the benchmark does: the windows of windowed inference
(2.5 s every 1.25 s → 7 per 10 s record, from the run's config). Probabilities are aggregated over the
windows as in evaluation; weights are averaged over a record's windows (each window counts equally),
then over records.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecgnet.config import Config
from ecgnet.data.dataset import Split
from ecgnet.evaluation import metrics as M
from ecgnet.models.windows import aggregate_windows


def _windows(config: Config) -> tuple[int | None, int, str]:
    return config.data.window, config.data.stride, config.data.aggregate


@torch.no_grad()
def predict_with_weights(model: nn.Module, split: Split, config: Config,
                         batch_size: int = 128) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities (n, classes), modality weights (n, modalities) or None) by windowed inference;
    the weights are ``model.last_weights`` averaged over each record's windows."""
    window, stride, aggregate = _windows(config)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probs, weights = [], []
    try:
        for i in range(0, len(split.ecg_ids), batch_size):
            x = torch.as_tensor(np.asarray(split.signal[i:i + batch_size]), device=device)
            m = torch.as_tensor(np.asarray(split.metadata[i:i + batch_size]), device=device)
            if hasattr(model, "last_weights"):
                model.last_weights = None
            # as evaluation does: a late-fusion ensemble (whole_record) windows inside, per member
            probs.append(aggregate_windows(model, x, m, window, stride, aggregate).cpu().numpy())
            lw = getattr(model, "last_weights", None)
            if lw is not None:  # (windows × records, modalities), window-major
                weights.append(lw.float().view(-1, len(x), lw.shape[-1]).mean(0).cpu().numpy())
    finally:
        model.train(was_training)
    complete = weights and len(weights) == len(probs)  # every batch reported weights
    return np.concatenate(probs), (np.concatenate(weights) if complete else None)


def droppable(model: nn.Module) -> bool:
    """True for models that can be evaluated with a modality missing and have more than one."""
    return callable(getattr(model, "drop", None)) and len(getattr(model, "modalities", ())) > 1


def modality_ablation(model: nn.Module, split: Split, config: Config, classes=None, n_boot: int = 1000,
                      ci: float = 0.90, seed: int = 0, batch_size: int = 128) -> dict:
    """Loss in macro AUC (and per-class AUC) on ``split`` when each modality is dropped.

    Returns ``{}`` for models without ``drop`` or with a single modality, else::

        {"n_records", "full": {"macro_auc", "per_class_auc"},
         "drop": {modality: {"macro_auc", "loss", "low", "high", "p_value", "per_class_loss"}},
         "weights": {...} (as modality_weights, when the model exposes gate/attention weights)}

    ``loss`` = macro AUC(all) − macro AUC(without it); ``low``/``high`` its paired-bootstrap
    interval; ``p_value`` the fraction of resamples where dropping it did not hurt (loss ≤ 0).
    """
    if not droppable(model):
        return {}
    classes = [str(c) for c in (classes if classes is not None else range(split.y.shape[1]))]
    y = split.y.astype(int)
    full, weights = predict_with_weights(model, split, config, batch_size)
    full_auc = M.per_class_auc(y, full)
    out = {"n_records": int(len(y)), "windows": "all windows of windowed inference",
           "full": {"macro_auc": float(full_auc.mean()),
                    "per_class_auc": dict(zip(classes, map(float, full_auc)))},
           "drop": {}}
    for modality in model.modalities:
        with model.drop({modality}):
            dropped, _ = predict_with_weights(model, split, config, batch_size)
        auc = M.per_class_auc(y, dropped)
        paired = M.paired_bootstrap(y, full, dropped, n_boot=n_boot, ci=ci, seed=seed)
        out["drop"][modality] = {"macro_auc": float(auc.mean()), "loss": paired["diff"], "low": paired["low"],
                                 "high": paired["high"], "p_value": paired["p_value"],
                                 "per_class_loss": dict(zip(classes, map(float, full_auc - auc)))}
    if weights is not None:
        out["weights"] = _summarise_weights(weights, y, classes, model.modalities)
    return out


def _summarise_weights(weights: np.ndarray, y: np.ndarray, classes, modalities) -> dict:
    out = {"all": dict(zip(modalities, map(float, weights.mean(0))))}
    for k, c in enumerate(classes):
        pos = y[:, k] == 1
        if pos.any():
            out[c] = dict(zip(modalities, map(float, weights[pos].mean(0))))
    return out


def modality_weights(model: nn.Module, split: Split, config: Config, classes=None,
                     batch_size: int = 128) -> dict:
    """``{"all" | class: {modality: mean weight}}`` of models whose forward sets ``last_weights``
    (gated / attention fusion); ``{}`` for others (including concat fusion, whose ``last_weights`` is None).

    "all" averages over every record of ``split``; each class over the records positive for it.
    A record's weight is the mean over its inference windows (all of them, see the module docstring).
    """
    if not hasattr(model, "last_weights") or not getattr(model, "modalities", None):
        return {}
    classes = [str(c) for c in (classes if classes is not None else range(split.y.shape[1]))]
    _, weights = predict_with_weights(model, split, config, batch_size)
    if weights is None:
        return {}
    return _summarise_weights(weights, split.y.astype(int), classes, model.modalities)
