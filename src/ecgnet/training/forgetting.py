"""What a fine-tuned model forgot: macro AUC on PTB-XL's fold 10, beside the run it started from.

``ecgnet train --from RUN --forgetting`` scores the final model and its source on the fold-10 records of
the PTB-XL task the source was trained on, over the classes the fine-tuned model shares with that task,
with 90 % bootstrap intervals and a paired bootstrap of the difference. It needs the PTB-XL folder
(``ECGNET_DATA``); a source not trained on PTB-XL, or no shared class, is one clear error.
"""

from __future__ import annotations

import numpy as np

from ecgnet.errors import ECGNetError
from ecgnet.evaluation import metrics as M


def check_forgetting(source, data_root=None) -> str:
    """The PTB-XL task to score on; one error, before anything is trained, when there is none to score."""
    from ecgnet.data.ptbxl import data_root as ptbxl_root

    if source is None:
        raise ECGNetError("--forgetting compares a fine-tuned model with the run it started from: give --from NAME|RUN")
    task = source.info.get("task")
    if not task:
        raise ECGNetError(f"--forgetting: {source.name} was not trained on a PTB-XL task; nothing to compare with")
    ptbxl_root(data_root)  # the PTB-XL folder must be there
    return task


def forgetting(model, config, scaler, classes: list[str], source, data_root=None, n_boot: int = 1000,
               seed: int = 0, progress: bool = False) -> dict:
    """Fold-10 macro AUC of ``model`` (classes ``classes``) and of ``source`` over their shared classes."""
    from ecgnet.data.collections import ptbxl_collection
    from ecgnet.training.collection_scoring import paired_vs, predict

    task = check_forgetting(source, data_root)
    native = ptbxl_collection(data_root, task)
    shared = [c for c in classes if c in native.classes and c in source.classes]
    if not shared:
        raise ECGNetError(f"--forgetting: none of the classes ({', '.join(classes)}) is one of PTB-XL {task}'s")
    test = native.subset(native.folds == 10).load_signals(config.data.sampling_rate, progress=progress)
    y = test.y[:, [test.classes.index(c) for c in shared]]
    rows = np.arange(len(test))
    p_model = predict(model, test, rows, scaler, config)[:, [classes.index(c) for c in shared]]
    p_source = predict(source.model, test, rows, source.metadata_scaler or scaler,
                       source.config)[:, [source.classes.index(c) for c in shared]]
    auc = {name: dict(zip(("value", "low", "high"), M.bootstrap_ci(y, p, n_boot=n_boot, seed=seed)))
           for name, p in (("fine_tuned", p_model), ("source", p_source))}
    return {"task": task, "split": "PTB-XL fold 10", "records": len(test), "classes": shared, "source": source.name,
            "macro_auc": auc, "fine_tuned_minus_source": paired_vs(y, p_model, p_source, shared, n_boot, seed)}


def forgetting_lines(f: dict) -> list[str]:
    """The report's paragraph."""
    a, d = f["macro_auc"], f["fine_tuned_minus_source"]
    fmt = lambda e: f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"  # noqa: E731
    diff = "" if not d else f"; fine-tuned − source {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] (paired)"
    return [f"What it forgot: macro AUC on {f['split']} ({f['task']}, {f['records']:,} records, classes "
            f"{', '.join(f['classes'])}): fine-tuned {fmt(a['fine_tuned'])}, `{f['source']}` {fmt(a['source'])}{diff}."]
