"""Evaluate a superdiagnostic run on an external, Challenge-style labelled dataset (``ecgnet
evaluate-external DIR``): how a model trained on PTB-XL transfers to other hospitals and devices.

This is ``ecgnet evaluate RUN --manifest`` on the manifest ``ecgnet manifest DIR`` writes
(:func:`ecgnet.data.collections.make.challenge_manifest`: labels from the ``#Dx:`` SNOMED CT codes with the
package's mapping, :mod:`ecgnet.data.external`; ``source`` = the record's folder), kept as
``OUT/manifest.csv`` so the evaluation can be repeated with ``ecgnet evaluate``. Every record is read as
``predict`` reads it (resampled to the model's rate, long records averaged over 10 s segments). Records
the model cannot read, and records with no superdiagnostic label, are counted and listed — never
silently dropped. The run's thresholds (fold 9's for a PTB-XL run) are applied unchanged.

An external dataset is a test set: nothing here may choose a model, threshold or mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.data.collections import read_manifest
from ecgnet.data.collections.make import challenge_manifest
from ecgnet.data.external import SUPERCLASSES
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.labelled import predict_collection, record_paths
from ecgnet.evaluation.scoring import score
from ecgnet.fileio import atomic_path, write_json
from ecgnet.inference.predictor import Predictor
from ecgnet.runs.origin import made_by


def evaluate_external(checkpoint: str | Path, dataset: Path, out_dir: Path, n_boot: int = 1000, seed: int = 0,
                      long_records: str = "segments", progress: bool = True,
                      limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Predict and score every record of ``dataset``; write manifest.csv, predictions.csv, metrics.json and
    a report (external.html / .md) into ``out_dir``."""
    predictor = Predictor(checkpoint, long_records=long_records)
    classes = predictor.classes
    if not set(classes) <= set(SUPERCLASSES):
        task = predictor.info.get("task")
        of = f"of the '{task}' task" if task else f"of its own ({', '.join(classes[:6])}{' …' if len(classes) > 6 else ''})"
        raise ECGNetError(f"{checkpoint}: predicts {len(classes)} classes {of}; external evaluation maps SNOMED CT "
                          f"codes to the superclasses {', '.join(SUPERCLASSES)}"
                          + ("" if task else " — score it with `ecgnet evaluate RUN --manifest M.csv --label-map MAP` "
                             "(`ecgnet manifest DIR --labels snomed` writes the manifest of its codes)"))
    dataset, out_dir = Path(dataset), Path(out_dir)
    made = challenge_manifest(dataset, out_dir / "manifest.csv")  # raises when the folder holds no record
    collection = read_manifest(out_dir / "manifest.csv")
    table, _ = predict_collection(predictor, collection, progress, limits=limits)
    table = _external_table(table, collection, made["left_out"], out_dir, dataset, classes)
    scored = table[(table["error"] == "") & table["labeled"]]
    y, p = (scored[[f"{k}_{c}" for c in classes]].to_numpy(float) for k in "yp")
    result = {"run": predictor.info["name"], "dataset": str(dataset), "n_records": len(table),
              "n_scored": len(scored), "long_records": long_records,
              "protocol": _PROTOCOL.replace("averaged over consecutive 10 s segments", _LONG[long_records])
              .replace("chosen on fold 9.", f"chosen on {predictor.thresholds_from}."),
              "thresholds_from": predictor.thresholds_from,
              "unreadable": table.loc[table["error"] != "", ["record", "error"]].to_dict("records"),
              "unlabeled": table.loc[~table["labeled"], "record"].tolist(),
              "untrusted_amplitude": int((~scored["amplitude_trusted"].astype(bool)).sum()),
              **score(y, p, classes, predictor.thresholds, n_boot, seed),
              "made_by": made_by(predictor.run.weights_sha256, predictor.engine_name)}
    sources = scored["source"].to_numpy()
    result["per_source"] = {s: score(y[sources == s], p[sources == s], classes, predictor.thresholds, n_boot, seed)
                            for s in sorted(set(sources))}
    with atomic_path(out_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    write_json(out_dir / "metrics.json", result)
    from ecgnet.evaluation.external_report import write_external_report

    result["report"] = str(write_external_report(out_dir, result))
    return result


def _external_table(table: pd.DataFrame, collection, left_out: list[dict], out_dir: Path, dataset: Path,
                    classes: list[str]) -> pd.DataFrame:
    """The manifest's predictions plus a row for each record left out of it (no superclass), records named
    relative to ``dataset``, in path order."""
    table = table.copy()
    table["record"] = [_relative(p, dataset) for p in record_paths(collection)]
    table["labeled"] = True
    extra = pd.DataFrame([{"record": _relative(out_dir / r["record"], dataset), "source": Path(r["record"]).parent.name,
                           "labeled": False, **{f"y_{c}": 0 for c in classes}, **{f"p_{c}": np.nan for c in classes},
                           "amplitude_trusted": None, "warnings": "", "error": "", "codes": r["codes"]}  # not read
                          for r in left_out])
    table = pd.concat([table, extra], ignore_index=True) if len(extra) else table
    table["error"] = table["error"].fillna("")
    columns = ["record", "source", "labeled", *(f"y_{c}" for c in classes), *(f"p_{c}" for c in classes),
               "amplitude_trusted", "warnings", "error"]
    return table[columns].sort_values("record", kind="stable").reset_index(drop=True)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside (so reports do not carry one machine's folders)."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


_LONG = {"segments": "averaged over consecutive 10 s segments", "first": "scored on their first 10 s",
         "windows": "scored as the maximum over all their windows"}
_PROTOCOL = ("Records resampled to the model's rate; records longer than 10 s averaged over consecutive 10 s "
             "segments; labels from #Dx SNOMED CT codes via ecgnet/data/snomed_ptbxl.csv (NORM only when every "
             "code is a sinus rhythm); records without any superclass left out, as in the PTB-XL benchmark; "
             "AUC intervals: 90 % percentile bootstrap over records; thresholds: the run's, chosen on fold 9.")
