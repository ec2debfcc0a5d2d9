"""Multi-task training with an auxiliary label set (``training.auxiliary_task``, e.g. ``all``): a
second linear head on the model's embedding learns the other task's statements from the same records,
so the encoder is shaped by the finer labels (all 71 statements for the 5 superclasses) while the
model's own head keeps predicting the run's task.

The auxiliary head exists only during training: the run saves, evaluates and ships the model as built
(same classes, weights and cost as without it). The loss is ``main + weight · auxiliary``, each the
config's loss on its own targets; a training record without any statement of the auxiliary task has
all-zero auxiliary targets. ``training.hierarchy_weight`` adds a penalty on auxiliary subclasses more
probable than their superclass (training/hierarchy.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ecgnet.errors import ECGNetError
from ecgnet.training import hierarchy
from ecgnet.training.losses import make_loss


class WithAuxiliaryHead(nn.Module):
    """``model`` plus a head for the auxiliary task on ``model.forward_features``; ``forward`` is the
    model's, ``forward_train`` returns both tasks' logits side by side."""

    def __init__(self, model: nn.Module, num_auxiliary: int, dropout: float = 0.25):
        super().__init__()
        self.model = model
        self.auxiliary = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.num_features, num_auxiliary))

    def forward(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.model(signal, metadata)

    def forward_train(self, signal: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        features = self.model.forward_features(signal, metadata)
        return torch.cat([self.model.forward_head(features), self.auxiliary(features)], dim=1)


class AuxiliaryLoss(nn.Module):
    """``main(logits[:, :n], y[:, :n]) + weight · auxiliary(logits[:, n:], y[:, n:])``."""

    def __init__(self, main: nn.Module, auxiliary: nn.Module, num_main: int, weight: float):
        super().__init__()
        self.main, self.auxiliary, self.num_main, self.weight = main, auxiliary, num_main, weight

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = self.num_main
        return self.main(logits[:, :n], y[:, :n]) + self.weight * self.auxiliary(logits[:, n:], y[:, n:])


def attach(model: nn.Module, data, train_split, config):
    """(model with the auxiliary head, training split whose targets are main ‖ auxiliary, loss)."""
    t = config.training
    if not hasattr(model, "num_features"):
        raise ECGNetError(f"model '{config.model.name}' exposes no embedding (num_features) for an auxiliary head")
    y_aux = data.task_targets(t.auxiliary_task, train_split.ecg_ids)
    loss = AuxiliaryLoss(make_loss(t.loss, train_split.y, t.focal_gamma), make_loss(t.loss, y_aux, t.focal_gamma),
                         train_split.y.shape[1], t.auxiliary_weight)
    split = replace(train_split, y=np.concatenate([train_split.y, y_aux], axis=1))
    if t.hierarchy_weight is not None:  # child (auxiliary) classes under the superclasses (checked by the config)
        parents = hierarchy.dataset_parent_index(data, t.auxiliary_task)
        loss = hierarchy.HierarchyLoss(loss, parents, train_split.y.shape[1], t.hierarchy_weight)
    return WithAuxiliaryHead(model, y_aux.shape[1]), split, loss
