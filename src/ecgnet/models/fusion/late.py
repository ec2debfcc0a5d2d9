"""Late fusion: one trained model per modality (its own run), their probabilities combined.

- ``average``: the mean of the members' probabilities;
- ``stacking``: per class, a logistic regression on the members' logits, fitted on fold 9 only — the
  members were trained on folds 1–8 and never saw it; fold 10 stays untouched. Because the stack is
  fitted on fold 9, its own fold-9 score is in-sample; :meth:`LateFusion.fit_on_validation` therefore
  also gives out-of-fold fold-9 logits (5-fold cross-fitting), which model selection uses instead.

Each member predicts whole records with its own window settings, so this model takes whole records
(``whole_record = True``). A dropped member is left out of the average, or replaced by its mean
fold-9 logit in the stack.

The members come built (:class:`Member`: a model and its window settings): where they are stored and how
they are loaded is the run directory's business (:mod:`ecgnet.runs.members`), not the model's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ecgnet.models.fusion.branches import DroppableModalities
from ecgnet.models.registry import register
from ecgnet.models.windows import aggregate_windows, sigmoid

METHODS = ("average", "stacking")
CV_FOLDS = 5


class Member(NamedTuple):
    """A trained model and how it scores a record: ``window`` samples every ``stride``, ``aggregate`` over them."""
    model: nn.Module
    window: int | None
    stride: int
    aggregate: str


def _stack_class(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(weights, bias) of one class's logistic regression on the members' logits ``z`` (records, members);
    with only one label value present, the plain mean of the members' logits."""
    from sklearn.linear_model import LogisticRegression  # fitting only: not on predict's import path

    if y.min() == y.max():
        return np.full(z.shape[1], 1.0 / z.shape[1]), 0.0
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(z, y)
    return lr.coef_[0], float(lr.intercept_[0])


def cross_fitted_logits(z: np.ndarray, y: np.ndarray, folds: int = CV_FOLDS, seed: int = 0) -> np.ndarray:
    """(records, classes) out-of-fold stacked logits: each record scored by stacks fitted without it
    (stratified per class; a class with fewer than 2 positives or negatives gets the members' mean)."""
    from sklearn.model_selection import StratifiedKFold

    out = z.mean(1)
    for c in range(y.shape[1]):
        k = int(min(folds, y[:, c].sum(), (1 - y[:, c]).sum()))
        if k < 2:
            continue
        for fit, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(z, y[:, c]):
            w, b = _stack_class(z[fit, :, c], y[fit, c])
            out[held, c] = z[held, :, c] @ w + b
    return out


class LateFusion(DroppableModalities, nn.Module):
    whole_record = True

    def __init__(self, num_classes: int, members: dict[str, Member], method: str = "stacking"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
        self.method, self.modalities = method, tuple(members)
        self.members, self.windows = nn.ModuleDict(), {}
        for modality, member in members.items():
            if not isinstance(member, Member):
                raise ValueError(f"late_fusion member '{modality}' must be built (a Member), not {member!r}: "
                                 "a run's members are built by ecgnet.runs (load_run / build_run_model)")
            self.windows[modality] = (member.window, member.stride, member.aggregate)
            self.members[modality] = member.model
        m = len(self.modalities)
        self.register_buffer("weight", torch.full((num_classes, m), 1.0 / m))  # stacking coefficients
        self.register_buffer("bias", torch.zeros(num_classes))
        self.register_buffer("mean_logit", torch.zeros(m, num_classes))  # stands in for a dropped member

    def member_logits(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        """(batch, members, classes) logits of each member's aggregated record probability."""
        out = []
        for modality, model in self.members.items():
            window, stride, aggregate = self.windows[modality]
            p = aggregate_windows(model, signal, metadata, window, stride, aggregate)
            out.append(torch.logit(p.clamp(1e-6, 1 - 1e-6)))
        return torch.stack(out, dim=1)

    @staticmethod
    def average_logits(logits: torch.Tensor) -> torch.Tensor:
        """(batch, classes) logit of the mean of the members' probabilities, from (batch, members, classes)."""
        return torch.logit(sigmoid(logits).mean(1).clamp(1e-6, 1 - 1e-6))

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        logits = self.member_logits(signal, metadata)
        keep = torch.tensor([m not in self.dropped for m in self.modalities], device=logits.device)
        if self.method == "average":
            return self.average_logits(logits[:, keep])
        logits = torch.where(keep[None, :, None], logits, self.mean_logit[None])
        return (logits * self.weight.T[None]).sum(1) + self.bias

    @torch.no_grad()
    def fit_on_validation(self, signal: np.ndarray, metadata: np.ndarray, y: np.ndarray,
                          batch_size: int = 256) -> np.ndarray:
        """Fit the stack on fold 9 (no-op for ``average`` but for the missing-member logits). Returns
        fold-9 logits that did not see their own record: out-of-fold for stacking (cross-fitted), the
        model's own for averaging (which fits nothing)."""
        self.eval()
        z = torch.cat([self.member_logits(torch.as_tensor(signal[i:i + batch_size]),
                                          torch.as_tensor(metadata[i:i + batch_size]))
                       for i in range(0, len(signal), batch_size)])
        self.mean_logit.copy_(z.mean(0))
        if self.method == "average":
            return self.average_logits(z).numpy()
        z, y = z.numpy().astype(np.float64), np.asarray(y)
        for c in range(y.shape[1]):
            w, b = _stack_class(z[:, :, c], y[:, c])
            self.weight[c] = torch.as_tensor(w, dtype=torch.float32)
            self.bias[c] = b
        return cross_fitted_logits(z, y)


@register("late_fusion")
def late_fusion(num_classes: int, members: dict | None = None, method: str = "stacking") -> nn.Module:
    """Trained models ({name: :class:`Member`}, built by :func:`ecgnet.runs.directory.build_run_model` from the
    config's {name: run directory}) combined by averaging or stacking."""
    if not members:
        raise ValueError("late_fusion needs members: {name: run directory}")
    return LateFusion(num_classes, members, method)
