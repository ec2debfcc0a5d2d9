"""Metadata modality: age, sex, height, weight (standardised on the training folds) and their four
is-missing flags, (batch, 8).

The features are already scaled by the data pipeline, so the frontend is the identity; it exists so
every modality has a frontend and models are assembled the same way for all of them.
"""

from __future__ import annotations

import torch
from torch import nn


class MetadataFrontend(nn.Module):
    out_features = 8

    def forward(self, metadata: torch.Tensor) -> torch.Tensor:
        return metadata
