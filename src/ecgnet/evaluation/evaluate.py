"""Evaluate a model on the benchmark protocol and write the files every evaluation leaves behind.

Fold 9 is predicted first: its probabilities choose the per-class thresholds (never fold 10). Each
fold gets ``<out>/<split>/predictions.csv`` and ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ecgnet.errors import ECGNetError
from ecgnet.config import Config
from ecgnet.data.dataset import PTBXL
from ecgnet.evaluation import metrics as M
from ecgnet.fileio import write_json
from ecgnet.inference.batch import predict_proba
from ecgnet.runs.describe import trained_manifest


def predict_split(model: torch.nn.Module, data: PTBXL, split: str, config: Config,
                  progress: bool = True,
                  columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ecg_ids, labels, probabilities) of one split; ``columns``: the model's output for each of the data's classes
    (a run whose classes are the task's in another order)."""
    s = data.split(split)
    probs = predict_proba(model, s.signal, s.metadata, config.data.window, config.data.stride,
                          config.data.aggregate, progress=progress, description=f"Predicting {split}")
    return s.ecg_ids, s.y, probs if columns is None else probs[:, columns]


def evaluate_model(model: torch.nn.Module, data: PTBXL, config: Config, out_dir: Path,
                   splits: tuple[str, ...] = ("val", "test"), n_boot: int = 1000,
                   progress: bool = True,
                   columns: np.ndarray | None = None) -> tuple[dict[str, dict], dict[str, tuple]]:
    """(metrics per split, (ecg_ids, labels, probabilities) per split), thresholds from the validation split
    (PTB-XL's fold 9, or a collection's validation rows); the files are written under ``out_dir/<split>/``."""
    results, predictions = {}, {}
    for split in dict.fromkeys(("val", *splits)):  # val first: it sets the thresholds
        predictions[split] = predict_split(model, data, split, config, progress, columns)
    _, y_val, p_val = predictions["val"]
    thresholds = M.choose_thresholds(y_val, p_val)
    for split in splits:
        ids, y, p = predictions[split]
        result = M.evaluate(y, p, data.classes, thresholds=thresholds, n_boot=n_boot, seed=config.seed)
        result["split"] = split
        origin = getattr(data, "validation_name", "fold 9 (val)")  # PTB-XL's fold 9, or a collection's rows
        result["thresholds_from"] = origin + (" — the same records: optimistic" if split == "val" else "")
        M.write_predictions(out_dir / split / "predictions.csv", ids, p, data.classes)
        write_json(out_dir / split / "metrics.json", result)
        results[split] = result
    return results, predictions


def evaluate_run(checkpoint: Path, data_root: Path | None, split: str = "test", out_dir: Path | None = None,
                 n_boot: int = 1000, progress: bool = True) -> tuple[dict, Path]:
    """Re-evaluate a saved run on ``split``; writes predictions, metrics and a report into ``out_dir``
    (default ``outputs/<run name>``). Returns (metrics of the split, report path)."""
    from ecgnet.data.ptbxl import data_root as find_root
    from ecgnet.evaluation.report import write_run_report
    from ecgnet.runs import load_run

    model, config, info = load_run(checkpoint)
    data = PTBXL(find_root(data_root), config.data.task, config.data.sampling_rate)
    classes = list(info.get("classes") or data.classes)
    if sorted(classes) != sorted(data.classes):  # a fine-tune on a site's own classes (or some of PTB-XL's)
        trained = trained_manifest(info)
        raise ECGNetError(f"{checkpoint}: predicts {', '.join(classes)}"
                          + (f" (trained on {trained})" if trained else "")
                          + f", not the {len(data.classes)} classes of PTB-XL's '{config.data.task}' task: score it on "
                          "labelled records of its classes with --manifest M.csv")
    columns = None if classes == list(data.classes) else np.array([classes.index(c) for c in data.classes])
    out_dir = Path(out_dir or Path("outputs") / config.name)
    results, predictions = evaluate_model(model, data, config, out_dir, splits=tuple(dict.fromkeys(("val", split))),
                                          n_boot=n_boot, progress=progress, columns=columns)
    _, y, p = predictions[split]
    report = write_run_report(out_dir, y, p, data.classes, results[split],
                              results["val"] if split == "test" else None,
                              report_info(info))
    return results[split], report


REPORT_INFO = ("name", "task", "model", "parameters", "seed", "train_records", "epochs_run", "best_epoch",
               "best_val_macro_auc", "training_seconds", "git_revision", "command", "date")


def report_info(info: dict) -> dict:
    """The run facts a report lists (:data:`REPORT_INFO`), and for a run trained on a manifest its collection
    and split in place of a PTB-XL task, and what fine-tuning kept, froze and interpolated."""
    out = {k: info[k] for k in REPORT_INFO if k in info}
    collection = info.get("collection")
    if collection:
        out.pop("task", None)
        out["collection"] = f"{collection.get('name')} ({collection.get('records')} records: {collection.get('manifest')})"
        if info.get("split"):
            out["split"] = info["split"]
    tuned = info.get("finetune")
    if isinstance(tuned, dict):
        out["fine-tuned from"] = tuned.get("from")
        for key in ("mode", "head", "frozen", "interpolation"):
            if tuned.get(key):
                out[f"fine-tuning: {key}"] = tuned[key]
    return out
