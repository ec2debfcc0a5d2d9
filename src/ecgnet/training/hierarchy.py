"""Hierarchical consistency of the outputs (``training.hierarchy_weight``): with an auxiliary head on a
finer diagnostic label set (``training.auxiliary_task`` subdiagnostic or diagnostic) under the
superclass task, a child label should never be more probable than its parent.

PTB-XL's superclass of a record is positive iff one of its diagnostic statements (or subclasses) under
it is (``scp_statements.csv``: ``diagnostic_class`` above ``diagnostic_subclass`` above the statement),
so a coherent model has ``P(parent) ≥ P(child)`` for every child. The training loss gains

    hierarchy_weight · mean over records and children of relu(σ(z_child) − σ(z_parent(child)))²

on the main head's logits ``z_parent`` and the auxiliary head's ``z_child``: zero for a coherent
prediction, a squared hinge otherwise, pulling both heads (and the shared encoder) towards each other.
The related idea of building the constraint into the outputs is Giunchiglia & Lukasiewicz 2020,
"Coherent hierarchical multi-label classification networks" (NeurIPS); here it is only a soft penalty
during training, so the saved model is the plain superclass model, as with ``auxiliary_task`` alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecgnet.data.ptbxl import make_labels
from ecgnet.errors import ECGNetError

# the column of scp_statements.csv naming each diagnostic task's class (None: the statement code itself),
# finest first
LEVELS = {"diagnostic": None, "subdiagnostic": "diagnostic_subclass", "superdiagnostic": "diagnostic_class"}


def parent_index(statements: pd.DataFrame, child_task: str, child_classes: list[str], parent_task: str,
                 parent_classes: list[str]) -> np.ndarray:
    """For each class of ``child_task`` (in ``child_classes`` order), the index in ``parent_classes`` of
    the ``parent_task`` class above it, from the diagnostic statements of ``scp_statements.csv``."""
    order = list(LEVELS)
    if child_task not in LEVELS or parent_task not in LEVELS or order.index(child_task) >= order.index(parent_task):
        raise ECGNetError(f"no label hierarchy from '{child_task}' up to '{parent_task}': the child must be a "
                          f"finer diagnostic task ({' < '.join(order)})")
    diagnostic = statements[statements["diagnostic"] == 1]
    child = diagnostic.index.to_series() if LEVELS[child_task] is None else diagnostic[LEVELS[child_task]]
    parent = diagnostic[LEVELS[parent_task]]
    out = np.empty(len(child_classes), dtype=np.int64)
    for i, c in enumerate(child_classes):
        above = set(parent[child == c].dropna())
        if len(above) != 1 or next(iter(above)) not in parent_classes:
            raise ECGNetError(f"{child_task} class '{c}' has no single {parent_task} class among "
                              f"{', '.join(parent_classes)} (scp_statements.csv gives {sorted(above) or 'none'})")
        out[i] = parent_classes.index(next(iter(above)))
    return out


def dataset_parent_index(data, child_task: str) -> np.ndarray:
    """:func:`parent_index` from ``child_task``'s classes (in the order ``data.task_targets`` gives its
    targets) up to the classes of the task of ``data`` (a :class:`ecgnet.data.dataset.PTBXL`)."""
    db, statements = data.tables
    child_classes = make_labels(db, statements, child_task).classes
    return parent_index(statements, child_task, child_classes, data.labels.task, data.classes)


def hierarchy_penalty(parent_logits: torch.Tensor, child_logits: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
    """``mean(relu(σ(z_child) − σ(z_parent[:, parent]))²)`` over records and children."""
    p_parent = torch.sigmoid(parent_logits.float())[:, parent]
    return torch.relu(torch.sigmoid(child_logits.float()) - p_parent).square().mean()


class HierarchyLoss(nn.Module):
    """``base(logits, y) + weight · hierarchy_penalty(logits[:, :n], logits[:, n:], parent)`` on the main ‖
    auxiliary logits of :class:`ecgnet.training.auxiliary.WithAuxiliaryHead`."""

    def __init__(self, base: nn.Module, parent: np.ndarray, num_main: int, weight: float):
        super().__init__()
        self.base, self.num_main, self.weight = base, num_main, weight
        self.register_buffer("parent", torch.as_tensor(parent, dtype=torch.long), persistent=False)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = self.num_main
        return self.base(logits, y) + self.weight * hierarchy_penalty(logits[:, :n], logits[:, n:], self.parent)
