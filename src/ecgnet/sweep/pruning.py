"""Pruning: a Lightning callback that reports each epoch's fold-9 macro AUC to the Optuna trial and stops
the trial when the study's pruner says so (own code: no optuna-integration dependency)."""

from __future__ import annotations

import lightning as L
import optuna

MONITOR = "val_macro_auc"  # logged by ClassifierModule at the end of each validation epoch (fold 9)


class PruningCallback(L.Callback):
    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = MONITOR):
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_validation_end runs after the module's on_validation_epoch_end has logged the epoch's AUC
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            # Lightning re-raises it out of trainer.fit (and out of train()); the study records PRUNED
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: fold-9 macro AUC {float(value):.4f}")
