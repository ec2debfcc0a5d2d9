"""SimCLR on a single-branch model: frontend → encoder features → projection MLP → NT-Xent between the two
views of each record. Only the frontend and encoder are kept afterwards; the projection MLP is discarded
(the features before it transfer better; Chen et al. 2020) and the model's classification head is never
trained (fine-tuning starts it fresh).

The two views go through the network as one batch of 2N crops, so batch norm sees both (as in SimCLR).
AdamW with a one-cycle schedule (warm-up, then cosine annealing), as in supervised training.
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch import nn

from ecgnet.pretrain.config import PretrainConfig
from ecgnet.pretrain.loss import nt_xent
from ecgnet.pretrain.views import augment_view


class Projector(nn.Sequential):
    """features → hidden (batch norm, ReLU) → the space where the contrastive loss is computed."""

    def __init__(self, in_features: int, hidden: int, out: int):
        super().__init__(nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, out))


class SimCLRModule(L.LightningModule):
    def __init__(self, model: nn.Module, config: PretrainConfig):
        super().__init__()
        self.model, self.config = model, config  # model: a UnimodalModel; its head stays untouched
        s = config.simclr
        self.projector = Projector(model.encoder.num_features, s.projection_hidden, s.projection_dim)
        self.history: list[dict] = []  # per epoch: mean loss and seconds (pretrain.json)
        self._losses, self._epoch_start = [], None

    def training_step(self, batch, batch_idx):
        a, b = batch
        s = self.config.simclr
        views = augment_view(torch.cat([a, b]), s.augment, s.augment_p, s.lead_mask_p, self.config.data.sampling_rate)
        za, zb = self.projector(self.model.forward_features(views)).chunk(2)
        loss = nt_xent(za, zb, s.temperature)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(a))
        self._losses.append(loss.detach())
        return loss

    def on_train_epoch_start(self):
        self._losses, self._epoch_start = [], time.perf_counter()

    def on_train_epoch_end(self):
        self.history.append({"epoch": self.current_epoch + 1, "loss": round(torch.stack(self._losses).mean().item(), 5),
                             "steps": len(self._losses), "seconds": round(time.perf_counter() - self._epoch_start, 1)})

    def configure_optimizers(self):
        t = self.config.training
        head = {id(p) for p in self.model.encoder.head.parameters()}
        params = [p for p in self.parameters() if id(p) not in head]
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, pct_start=t.warmup_fraction,
                                                    total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
