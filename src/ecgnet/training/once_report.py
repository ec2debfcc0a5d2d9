"""What a run trained once on a collection other than PTB-XL's folds 9 and 10 (a manifest, trained without
``--folds``/``--leave-out``) leaves beside its model: its validation and test rows scored as cross-validation
scores its folds (:func:`ecgnet.training.collection_scoring.score`: unknown labels left out class by class,
intervals over patients where some patient has several records, no interval under
:data:`~ecgnet.evaluation.metrics.MIN_GROUPS` records or patients), written as ``RUN/val/`` and ``RUN/test/``
(``predictions.csv`` as a PTB-XL run's, ``metrics.json``: one schema whether or not a label is blank), and the
run's report (``report.html`` / ``report.md``, figures in ``figures/`` where they can be drawn), worded for the
rows the split chose — "test rows (N records)", not PTB-XL's "test fold (10)".

The thresholds are Youden's J on the validation rows (known labels per class), applied unchanged to the test
rows. ``metrics.json``'s ``warnings`` are what the terminal prints for the split (:func:`split_warnings`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.data.collections.base import Collection
from ecgnet.document import Section, save_png, write_document
from ecgnet.evaluation import metrics as M
from ecgnet.evaluation.calibration import expected_calibration_error, reliability_comparison
from ecgnet.evaluation.evaluate import report_info
from ecgnet.evaluation.scoring import few_cases, format_auc, format_rate
from ecgnet.fileio import write_json
from ecgnet.plotting import auc_figure, roc_figure
from ecgnet.training.collection_scoring import call_rate_warnings, predict, score, youden_thresholds
from ecgnet.training.cv_report import SCORED_ON

SPLITS = {"val": "validation rows", "test": "test rows"}  # as the report and run files name them
VAL_FEW = ("the run's thresholds were chosen on these records — --folds K scores every record out of fold and "
           "chooses them on all")


def few_cases_warning(split: str, m: dict) -> str | None:
    """:func:`~ecgnet.evaluation.scoring.few_cases` of one split's metrics (records counted per class where the
    metrics say, else the split's), with what it means for the thresholds when the split is the validation's."""
    counted = {c: {"n": e.get("n", m.get("n_records", 0)), "n_positive": e.get("n_positive", 0)}
               for c, e in (m.get("per_class") or {}).items() if e.get("auc") is not None}
    few = few_cases({"classes_scored": list(counted), "per_class": counted})
    return None if few is None else few + (f"; {VAL_FEW}" if split == "val" else "")


def split_warnings(split: str, m: dict) -> list[str]:
    """The warnings about one split's scores: its ``warnings`` (written by :func:`score_once`), or for metrics
    written without them the few-cases warning alone."""
    if "warnings" in m:
        return list(m["warnings"])
    few = few_cases_warning(split, m)
    return [few] if few else []


def score_once(run_dir: Path, collection: Collection, assignment: dict, model, data, config, n_boot: int,
               info: dict) -> dict:
    """Score the validation and test rows of a run trained once, write ``RUN/<split>/`` and the run's report;
    return {split: metrics}."""
    run_dir = Path(run_dir)
    classes = collection.classes
    scores, arrays, thresholds = {}, {}, {}
    for split in ("val", "test"):
        rows = assignment.get(split)
        if rows is None or not len(rows):
            continue
        p = predict(model, collection, rows, data.metadata_scaler, config)
        y = collection.y[rows]
        groups = None if collection.interval_groups is None else collection.interval_groups[rows]
        if split == "val":
            thresholds = youden_thresholds(y, p, classes)
        m = score(y, p, classes, thresholds, n_boot, config.seed, groups)
        m.setdefault("mean_balanced_accuracy", None)  # one schema: no class with a threshold scored here → None
        warnings = [w for w in [few_cases_warning(split, m)] if w]
        if split == "val":
            warnings += call_rate_warnings(y, p, thresholds, classes)
            warnings += [f"{c}: no threshold — the validation rows hold no known positive and negative of it, so "
                         "predict makes no call for it (more records of it, or --folds K, which chooses thresholds "
                         "on every record)" for c in classes if c not in thresholds]
        m = {"split": split, "n_records": m.pop("n_records"), "classes": list(classes), **m,
             "thresholds_from": data.validation_name + (" — the same records: optimistic" if split == "val" else ""),
             "no_interval": _no_interval(m, y, groups), "warnings": warnings}
        M.write_predictions(run_dir / split / "predictions.csv", collection.records[rows], p, classes)
        write_json(run_dir / split / "metrics.json", m)
        scores[split], arrays[split] = m, (y, p)
    if "test" in scores:
        write_once_report(run_dir, info, scores, arrays)
    return scores


def _no_interval(m: dict, y: np.ndarray, groups) -> str | None:
    """Why the macro AUC has no interval (None when it has one, or there is no macro AUC)."""
    auc = m.get("macro_auc")
    if not auc or auc.get("low") is not None:
        return None
    units = "patients" if auc.get("resampled") == "patients" else "records"
    n = len(set(map(str, groups))) if units == "patients" else len(y)
    if n < M.MIN_GROUPS:
        return f"{n} {units}, fewer than the {M.MIN_GROUPS} an interval needs"
    return "too few positives or negatives for resamples that keep one of each in every class"


# --- the report ----------------------------------------------------------------------------------------------------

def _title(split: str, m: dict) -> str:
    return f"{SPLITS[split][0].upper()}{SPLITS[split][1:]} ({m['n_records']} records)"


def _summary(m: dict) -> list[list[str]]:
    auc = m.get("macro_auc") or {}
    over = M.resampled_words(auc.get("resampled"))
    interval = (f" ({auc['ci']:.0%} CI, {auc['n_boot']} bootstrap resamples over {over})" if auc.get("low") is not None
                else "" if auc else " (no class has a known positive and negative here)")
    rows = [["Records", str(m["n_records"])], [f"Macro AUC{interval}", format_auc(auc or None)]]
    if m.get("no_interval"):
        rows.append(["No interval", m["no_interval"]])
    rows += [["Classes in the macro AUC", ", ".join(m.get("classes_scored") or []) or "–"],
             ["Mean balanced accuracy", format_rate(m, "mean_balanced_accuracy")],
             ["Thresholds", m.get("thresholds_from") or "–"]]
    return rows


def _per_class(m: dict) -> tuple[list[str], list[list[str]]]:
    header = ["Class", "AUC [90 % CI]", "n known", "n pos.", "Threshold", "Bal. acc.", "Sensitivity", "Specificity"]
    rows = [[c, format_auc(e), str(e["n"]), str(e["n_positive"]),
             *(format_rate(e, k) for k in ("threshold", "balanced_accuracy", "sensitivity", "specificity"))]
            for c, e in m["per_class"].items()]
    return header, rows


def _calibration(y: np.ndarray, p: np.ndarray, classes: list[str]) -> list[list[str]]:
    rows = []
    for k, c in enumerate(classes):
        known = ~np.isnan(y[:, k])
        if not known.any():
            rows.append([c, "–", "–", "–", "–"])
            continue
        yk, pk = y[known, k], p[known, k]
        rows.append([c, f"{expected_calibration_error(yk, pk):.3f}", f"{np.mean((pk - yk) ** 2):.3f}",
                     f"{yk.mean():.3f}", f"{pk.mean():.3f}"])
    return rows


def write_once_report(run_dir: Path, info: dict, scores: dict, arrays: dict) -> Path:
    """``report.html`` and ``report.md`` (+ ``figures/``) of a run trained once on a collection."""
    test = scores["test"]
    classes = list(test["per_class"])
    y_test, p_test = arrays["test"]
    split_said = info.get("split") or "–"
    bullets = [f"split: {split_said}",
               *(f"{SPLITS[s]}: {m['n_records']} records" + (" (early stopping, the checkpoint and the thresholds "
                 "were chosen on them)" if s == "val" else " (scored only; they chose nothing)")
                 for s, m in scores.items()),
               f"scored on: {SCORED_ON}",
               "unknown (blank) labels are left out class by class: n known = the records where the class is known"]
    sections = [Section("Run", ["Key", "Value"], [[str(k), str(v)] for k, v in report_info(info).items()])]
    notes = {"test": "Thresholds chosen on the validation rows (Youden's J), applied unchanged.",
             "val": "Thresholds chosen on these rows (Youden's J): their decisions here are optimistic; the test "
                    "rows use these thresholds."}
    for split in ("test", "val"):
        if split not in scores:
            continue
        m = scores[split]
        sections.append(Section(f"{_title(split, m)}: summary", ["Metric", "Value"], _summary(m)))
        header, rows = _per_class(m)
        sections.append(Section(f"{_title(split, m)}: per class", header, rows, notes[split]))
    sections.append(Section(f"{_title('test', test)}: calibration", ["Class", "ECE", "Brier", "Prevalence",
                                                                     "Mean prediction"],
                            _calibration(y_test, p_test, classes),
                            "Expected calibration error over 10 equal-width bins, on the known labels of each class "
                            "(evaluation/calibration.py)."))
    if info.get("forgetting"):
        from ecgnet.training.forgetting import forgetting_lines

        sections.append(Section("What fine-tuning forgot", paragraphs=forgetting_lines(info["forgetting"])))
    warned = [f"{SPLITS[s]}: {w}." for s, m in scores.items() for w in m.get("warnings", [])]
    if warned:
        sections.append(Section("Warnings", bullets=warned))
    figures = _figures(Path(run_dir) / "figures", scores, y_test, p_test, classes)
    title = str(info.get("name", Path(run_dir).name))
    return write_document(run_dir, "report", title, sections, figures, bullets=("Split", bullets),
                          css="tbody tr:last-child{font-weight:normal}")


def _figures(folder: Path, scores: dict, y: np.ndarray, p: np.ndarray, classes: list[str]) -> dict:
    """ROC curves and per-class AUC with intervals where a class of the test rows is scorable; reliability on
    the test rows' known labels."""
    test = scores["test"]
    scored = test.get("classes_scored") or []
    figures = {}
    if scored:
        figures["roc.png"] = ("ROC curves, test rows (known labels per class)", _roc(scored, classes, y, p, test))
        figures["per_class.png"] = ("Per-class AUC with 90 % intervals, test and validation rows",
                                    _auc(scores, classes))
        figures["calibration.png"] = ("Reliability of the predicted probabilities, test rows (quantile bins)",
                                      reliability_comparison(y, {"test rows": p}, classes, "Reliability, test rows"))
    return {name: (caption, save_png(fig, folder / name)) for name, (caption, fig) in figures.items()}


def _roc(scored, classes, y, p, m):
    curves = []
    for c in scored:
        k = classes.index(c)
        known = ~np.isnan(y[:, k])
        curves.append((f"{c} (AUC {m['per_class'][c]['auc']:.3f}, n={int(known.sum())})", y[known, k], p[known, k]))
    return roc_figure(curves, "ROC curves, test rows")


def _auc(scores, classes):
    series = [(f"{SPLITS[split]} (n={m['n_records']})", m["per_class"], color)
              for (split, m), color in zip(scores.items(), ("C1", "C0"))]
    return auc_figure(series, classes, ylim=(0.0, 1.02))
