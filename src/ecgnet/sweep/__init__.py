"""Hyper-parameter sweeps with Optuna (``ecgnet sweep``): a search space over config keys, one training
run per trial, pruning on the fold-9 macro AUC per epoch, selection on fold 9 only.

- ``space.py``     the search-space file (YAML: dotted config key → distribution), validated;
- ``pruning.py``   the Lightning callback that reports each epoch's fold-9 AUC to the trial and prunes;
- ``objective.py`` one trial: sample → ``--set``-style overrides → a run → its best fold-9 AUC;
- ``storage.py``   the Optuna storage (SQLite by default) that several worker processes share;
- ``study.py``     the study (resumable; remembers its config, --set and space) and the trial loop:
                   ``run_sweep``;
- ``report.py``    after the trials: best.yaml, summary.json, report.md and the plots.
"""
