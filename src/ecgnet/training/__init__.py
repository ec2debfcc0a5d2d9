"""Training: the Lightning module (the science: loss, optimiser, validation metric) and `fit` (the run).

Read in this order:

- ``module.py``        the LightningModule: loss on random crops, AdamW + one-cycle, fold-9 macro AUC;
- ``fit.py``           one config end to end on PTB-XL (folds 1–8 train, fold 9 selects) → a run directory;
                       ``fit_lightning`` is the one Trainer every path below goes through;
- ``losses.py``, ``sampling.py``, ``soft_targets.py``, ``auxiliary.py``, ``hierarchy.py``, ``swa.py``
                       the options of ``training.*`` a config switches on (imbalance, the epoch's draw,
                       mixup/cutmix, an auxiliary head, weight averaging);
- ``collection.py``    the same loop on any labelled collection (a manifest, or PTB-XL as one): a split,
                       cross-validation (``--folds``, ``--leave-out``), then the final model;
  ``collection_command.py`` (what ``ecgnet train --manifest/--from`` checks and prints),
  ``collection_scoring.py`` (scoring small collections), ``cv_report.py`` (``RUN/cv/``),
  ``once_report.py`` (a run trained once on a manifest: its val/test rows scored so, and its report);
- ``finetune.py``      starting from a shipped run: its head kept or replaced, ``--mode head|full``, the
                       small-data schedule, weight interpolation; ``forgetting.py``: PTB-XL fold 10 after it;
- ``resume.py``, ``checkpoint_io.py``, ``interrupt.py``, ``distributed.py``
                       engineering: resuming bit for bit, atomic checkpoints, Ctrl-C, several GPUs.
"""
