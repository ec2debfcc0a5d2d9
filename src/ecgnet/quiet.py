"""Keep the terminal for progress and results: silence the dependencies' chatter, keep real warnings.

Silenced, deliberately and by name:
- Lightning's INFO lines ("GPU available: False", "💡 Tip: … litlogger", "Loading `train_dataloader` …",
  "`Trainer.fit` stopped: `max_epochs` reached") — ECGNet prints its own summary;
- deprecation notices raised *inside* dependencies about their own use of other libraries (wfdb's
  pandas ``inplace=``, Lightning's torch ``LeafSpec``): nothing a user can act on;
- Lightning's advice to add DataLoader workers: ECGNet's data is an in-memory array, workers cost more
  than they give on 2 cores (``training.num_workers`` sets them);
- Lightning's "checkpoint directory exists and is not empty": ECGNet clears stale checkpoints itself
  before a fresh fit (``training/checkpoint_io.py``) and keeps the run's ``config.yaml`` there;
- Lightning's "fewer training batches than the logging interval": a small collection (a site's 60
  records) has one or two batches; the epoch metrics are logged all the same;
- Lightning's "experiment logs directory … previous log files will be deleted" on --resume: the run's
  ``logs/metrics.csv`` is written whole from the checkpoints' epoch history (``training/resume.py``).

Everything else — ECGNet's own warnings, and any other warning from a dependency — still shows.
"""

from __future__ import annotations

import logging
import warnings

_DEPENDENCIES = r"(wfdb|lightning|pytorch_lightning|lightning_fabric|torch|pandas|sklearn)(\..*)?"


def quiet_dependencies() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_DEPENDENCIES)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")
