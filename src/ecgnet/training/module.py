"""The Lightning module: a multi-label loss (BCE, weighted BCE or focal) on random crops (augmented, mixed
by mixup or CutMix, label-smoothed or with an auxiliary task's head if the config says so), AdamW with a
one-cycle schedule, and the fold-9 macro AUC over sliding windows as the validation metric (what
checkpointing and early stopping watch), computed over exactly the fold's records however many processes
score it (:mod:`ecgnet.training.distributed`). A manifest's validation records over or under 10 s
(``val_records``) are scored as the run is scored afterwards, each as ``predict`` scores it
(:func:`ecgnet.inference.batch.predict_proba`: the mean over a long record's 10 s segments, a short one at
its own length), so the epoch kept is chosen on the figures that are reported."""

from __future__ import annotations

import time

import lightning as L
import torch

from ecgnet.config import Config
from ecgnet.data.augment import augment
from ecgnet.evaluation.scoring import masked_macro_auc
from ecgnet.models.windows import windowed_proba
from ecgnet.training.distributed import merge_ranks
from ecgnet.training.soft_targets import cutmix, mixup, smooth_labels


class ClassifierModule(L.LightningModule):
    """``val_records``: the validation split's :class:`~ecgnet.data.dataset.SignalRows` when some record's row is
    not all of it (a manifest's record over or under 10 s); None: each validation batch's rows are the records."""

    def __init__(self, model: torch.nn.Module, config: Config, loss: torch.nn.Module, val_records=None):
        super().__init__()
        self.model, self.config, self.loss = model, config, loss
        self.val_records = val_records
        self.window, self.stride = config.data.window, config.data.stride
        self._val_probs, self._val_y, self._val_index = [], [], []
        self._epoch_start = None

    def forward(self, signal, metadata):
        return self.model(signal, metadata)

    def training_step(self, batch, batch_idx):
        signal, metadata, y, t = batch["signal"], batch["metadata"], batch["y"], self.config.training
        if self.config.data.augment:
            signal = augment(signal, self.config.data.augment, self.config.data.sampling_rate)
        if t.mixup_alpha:
            signal, metadata, y = mixup(signal, metadata, y, t.mixup_alpha)
        if t.cutmix_alpha:
            signal, metadata, y = cutmix(signal, metadata, y, t.cutmix_alpha)
        if t.label_smoothing:
            y = smooth_labels(y, t.label_smoothing)
        logits = getattr(self.model, "forward_train", self.model)(signal, metadata)  # training/auxiliary.py
        loss = self.loss(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def on_train_epoch_start(self):
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self):
        self.log("epoch_seconds", time.perf_counter() - self._epoch_start)

    def validation_step(self, batch, batch_idx):
        if self.val_records is None:
            probs = windowed_proba(self.model, batch["signal"], batch["metadata"], self.window, self.stride,
                                   self.config.data.aggregate)
        else:  # the batch's records read from the cache as the final scoring reads them (validation sets are small)
            from ecgnet.inference.batch import predict_proba

            records = self.val_records.take(batch["index"].cpu().numpy())
            metadata = batch["metadata"].float().cpu().numpy()  # bf16-true: Lightning made the batch bf16
            probs = torch.from_numpy(predict_proba(self.model, records, metadata, self.window, self.stride,
                                                   self.config.data.aggregate)).to(batch["y"].device)
        self._val_probs.append(probs.float())
        self._val_y.append(batch["y"].float())  # 0/1/NaN, exact in bf16; numpy has no bf16
        self._val_index.append(batch["index"])

    def on_validation_epoch_end(self):
        parts = [torch.cat(part) for part in (self._val_index, self._val_probs, self._val_y)]
        self._val_index, self._val_probs, self._val_y = [], [], []
        if self.trainer.world_size > 1:  # every process scores the whole fold from all processes' rows
            parts = [self.all_gather(part) for part in parts]
        index, p, y = (part.cpu().numpy() for part in parts)
        p, y = merge_ranks(index, p, y, expected=len(self.trainer.val_dataloaders.dataset))
        self.log("val_records", float(len(y)), sync_dist=True)  # the same on every process
        auc = masked_macro_auc(y, p, empty=0.5)  # 0.5: no class scorable (a tiny validation set)
        self.log("val_macro_auc", float(auc), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        t = self.config.training
        opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr,
                                                    total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
