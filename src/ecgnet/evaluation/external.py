"""Evaluate a superdiagnostic run on an external, Challenge-style labelled dataset (``ecgnet
evaluate-external DIR``): how a model trained on PTB-XL transfers to other hospitals and devices.

Every ``.hea`` below DIR is read as ``predict`` reads it (resampled to the model's rate, long records
averaged over 10 s segments) and labelled from its ``#Dx:`` SNOMED CT codes with the package's mapping
(:mod:`ecgnet.data.external`). Records the model cannot read, and records with no superdiagnostic label,
are counted and listed — never silently dropped. The fold-9 thresholds of the run are applied unchanged.

An external dataset is a test set: nothing here may choose a model, threshold or mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.inference.batch import predict_many
from ecgnet.data.collect import find_records
from ecgnet.data.external import SUPERCLASSES, external_labels
from ecgnet.errors import ECGNetError
from ecgnet.evaluation import metrics as M
from ecgnet.fileio import atomic_path, write_json
from ecgnet.inference.predictor import Predictor


def evaluate_external(checkpoint: str | Path, dataset: Path, out_dir: Path, n_boot: int = 1000, seed: int = 0,
                      long_records: str = "segments", progress: bool = True) -> dict:
    """Predict and score every record of ``dataset``; write predictions.csv, metrics.json and a report."""
    predictor = Predictor(checkpoint, long_records=long_records)
    classes = predictor.classes
    if not set(classes) <= set(SUPERCLASSES):
        raise ECGNetError(f"{checkpoint}: predicts {len(classes)} classes of the '{predictor.info.get('task')}' "
                          f"task; external evaluation maps SNOMED CT codes to the superclasses {', '.join(SUPERCLASSES)}")
    headers = find_records([dataset])
    if not headers:
        raise ECGNetError(f"{dataset}: no WFDB records (.hea) found")
    table = _predictions_table(predictor, headers, Path(dataset), progress)
    scored = table[(table["error"] == "") & table["labeled"]]
    result = {"run": predictor.info["name"], "dataset": str(dataset), "n_records": len(table),
              "n_scored": len(scored), "long_records": long_records,
              "protocol": _PROTOCOL.replace("averaged over consecutive 10 s segments", _LONG[long_records]),
              "unreadable": table.loc[table["error"] != "", ["record", "error"]].to_dict("records"),
              "unlabeled": table.loc[(table["error"] == "") & ~table["labeled"], "record"].tolist(),
              "untrusted_amplitude": int((~scored["amplitude_trusted"]).sum()),
              **score(scored, classes, predictor.thresholds, n_boot, seed)}
    result["per_source"] = {src: score(part, classes, None, n_boot, seed)
                            for src, part in scored.groupby("source", sort=True)}
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    write_json(out_dir / "metrics.json", result)
    from ecgnet.evaluation.external_report import write_external_report

    result["report"] = str(write_external_report(out_dir, result))
    return result


def _predictions_table(predictor: Predictor, headers: list[Path], dataset: Path, progress: bool) -> pd.DataFrame:
    """One row per header (its path relative to ``dataset``): source, labels, probabilities, warnings, error."""
    classes = predictor.classes
    rows = []
    results = predict_many(predictor, headers, resample=True, progress=progress)
    for header, res in zip(headers, results):
        try:
            labels = external_labels([header], classes)
            y, codes, unmapped = labels.y[0], labels.codes[0], labels.unmapped[0]
            error = res.get("error", "")
        except ECGNetError as e:
            y, codes, unmapped, error = np.zeros(len(classes)), [], [], str(e)
        probs = {d["class"]: d["probability"] for d in res.get("diagnoses", [])}
        rows.append({"record": _relative(header, dataset), "source": header.parent.name, "labeled": bool(y.any()),
                     **{f"y_{c}": int(v) for c, v in zip(classes, y)},
                     **{f"p_{c}": probs.get(c, np.nan) for c in classes},
                     "amplitude_trusted": res.get("amplitude_trusted", False),
                     "codes": ";".join(codes), "unmapped": ";".join(unmapped),
                     "warnings": ";".join(res.get("warnings", [])), "error": error})
    return pd.DataFrame(rows)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside (so reports do not carry one machine's folders)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def score(table: pd.DataFrame, classes: list[str], thresholds: dict | None, n_boot: int, seed: int) -> dict:
    """Macro and per-class AUC with 90 % bootstrap intervals over the classes that have positives and
    negatives here; sensitivity/specificity at the fold-9 thresholds when given."""
    y = table[[f"y_{c}" for c in classes]].to_numpy(int)
    p = table[[f"p_{c}" for c in classes]].to_numpy(float)
    n_pos = y.sum(0)
    ok = [k for k in range(len(classes)) if 0 < n_pos[k] < len(y)]
    per_class = {c: {"auc": None, "low": None, "high": None, "n_positive": int(n_pos[k])} for k, c in enumerate(classes)}
    out = {"n": int(len(y)), "classes_scored": [classes[k] for k in ok], "per_class": per_class,
           "macro_auc": None}
    if not ok:
        return out
    for k in ok:
        point, low, high = _ci(y[:, [k]], p[:, [k]], n_boot, seed)
        per_class[classes[k]].update(auc=point, low=low, high=high)
        if thresholds:
            calls = p[:, k] >= thresholds[classes[k]]
            per_class[classes[k]].update(sensitivity=float(calls[y[:, k] == 1].mean()),
                                         specificity=float((~calls[y[:, k] == 0]).mean()))
    point, low, high = _ci(y[:, ok], p[:, ok], n_boot, seed)
    out["macro_auc"] = {"value": point, "low": low, "high": high, "ci": 0.9, "n_boot": n_boot}
    return out


def _ci(y, p, n_boot, seed) -> tuple[float, float | None, float | None]:
    """Point and interval; no interval when too few positives for valid resamples."""
    try:
        return M.bootstrap_ci(y, p, M.macro_auc, n_boot=n_boot, seed=seed)
    except ValueError:
        return M.macro_auc(y, p), None, None


_LONG = {"segments": "averaged over consecutive 10 s segments", "first": "scored on their first 10 s",
         "windows": "scored as the maximum over all their windows"}
_PROTOCOL = ("Records resampled to the model's rate; records longer than 10 s averaged over consecutive 10 s "
             "segments; labels from #Dx SNOMED CT codes via ecgnet/data/snomed_ptbxl.csv (NORM only when every "
             "code is a sinus rhythm); records without any superclass left out, as in the PTB-XL benchmark; "
             "AUC intervals: 90 % percentile bootstrap over records; thresholds: the run's fold-9 thresholds.")
