"""NT-Xent (normalised temperature-scaled cross entropy; Chen et al. 2020, SimCLR).

For a batch of N records with projections ``za`` and ``zb`` of their two views, each of the 2N views
must pick its partner among the 2N − 1 others by cosine similarity divided by the temperature. With
unrelated (random, high-dimensional) embeddings every similarity is about 0 and the loss about
log(2N − 1); identical views push it down towards 0 as the temperature falls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Mean NT-Xent over the 2N views of (N, dim) projections ``za`` and ``zb`` (row i of each: one record)."""
    n = za.shape[0]
    with torch.autocast(za.device.type, enabled=False):  # similarities in float32 even under bf16-mixed
        z = F.normalize(torch.cat([za, zb]).float(), dim=1)
        logits = z @ z.T / temperature
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
        partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
        return F.cross_entropy(logits, partner)
