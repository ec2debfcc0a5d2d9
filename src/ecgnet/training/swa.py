"""Stochastic weight averaging (Izmailov et al. 2018) as ECGNet selects models: the plain average of the
weights at the end of every epoch from ``training.swa_start_epoch`` on (batch-norm statistics averaged
alike), validated on fold 9 like any model, so checkpointing and early stopping watch the average.

Lightning's ``StochasticWeightAveraging`` swaps the average in only when fitting ends, after the last
fold-9 check, which would bypass selection; its ``WeightAveraging`` base (also behind
``EMAWeightAveraging``) validates the average every epoch. Here the average is updated after each epoch's
last optimizer step, so the epoch's own validation sees it; before the first averaged epoch, fold 9 and
the checkpoints see the weights as trained. The one-cycle schedule is kept: the averaged epochs are those
of its decay.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import WeightAveraging


class EpochWeightAveraging(WeightAveraging):
    def __init__(self, start_epoch: int):
        super().__init__(use_buffers=True)  # no avg_fn: the running equal-weight mean
        self.start_epoch = start_epoch  # 1-based, as in the config
        self._trainer = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._trainer = trainer

    def should_update(self, step_idx=None, epoch_idx=None) -> bool:
        t = self._trainer
        if step_idx is None or t is None:
            return False
        last_of_epoch = (step_idx + 1) % max(1, t.num_training_batches // t.accumulate_grad_batches) == 0
        return last_of_epoch and t.current_epoch + 1 >= self.start_epoch

    def averaging(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    # Until the first update the "average" is the model as built: validate and save the weights as trained.
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._swapped = self.averaging()
        if self._swapped:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if getattr(self, "_swapped", False):
            super().on_validation_epoch_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if self.averaging():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.averaging():
            super().on_train_end(trainer, pl_module)
