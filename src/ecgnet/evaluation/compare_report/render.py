"""Re-rendering a report from its comparison.json (``ecgnet compare --render-only OUT``): nothing recomputed,
the ROC curves from the runs' saved fold-10 predictions, the attribution heatmaps reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgnet.errors import ECGNetError
from ecgnet.evaluation.compare_report.common import MANY_CLASSES
from ecgnet.evaluation.compare_report.conclusion import conclusion
from ecgnet.evaluation.compare_report.roc import _roc_runs
from ecgnet.evaluation.compare_report.writer import write_comparison_report


def _run_dir(run: dict, out_dir: Path) -> Path | None:
    """A run's directory as saved in the comparison (relative to where compare ran: the working
    directory, else the repository holding ``out_dir``)."""
    p = Path(run["run_dir"])
    for candidate in (p, *(parent / p for parent in Path(out_dir).resolve().parents)):
        if (candidate / "test" / "predictions.csv").is_file():
            return candidate
    return None


def _saved_roc_inputs(result: dict, out_dir: Path, data_root) -> tuple:
    """(fold-10 labels, {run: probabilities}) of the ROC runs, from their saved predictions and PTB-XL."""
    from ecgnet.data import ptbxl
    from ecgnet.evaluation import metrics as M

    root = ptbxl.data_root(data_root)
    labels = ptbxl.make_labels(ptbxl.read_database(root), ptbxl.read_statements(root), result["task"])
    if list(labels.classes) != list(result["classes"]):
        raise ECGNetError(f"the classes of task '{result['task']}' in {root} differ from the report's")
    mask = labels.split("test")
    ids, y = labels.ecg_ids[mask], labels.y[mask].astype(int)
    row = {int(e): i for i, e in enumerate(ids)}
    probs = {}
    for run in result["runs"]:
        if run["name"] not in _roc_runs(result):
            continue
        d = _run_dir(run, out_dir)
        if d is None:
            raise ECGNetError(f"{run['run_dir']}/test/predictions.csv not found")
        pids, p, _ = M.read_predictions(d / "test" / "predictions.csv", result["classes"])
        if sorted(map(int, pids)) != sorted(row):
            raise ECGNetError(f"{d / 'test' / 'predictions.csv'}: its records are not fold 10")
        out = np.empty_like(p)
        out[[row[int(e)] for e in pids]] = p
        probs[run["name"]] = out
    return y, probs


def _saved_explanation_figures(result: dict, out_dir: Path) -> dict:
    """The explain step's PNGs already in ``out_dir/figures`` (they need the model to redraw)."""
    ex, out = result.get("explanation") or {}, {}
    names = {"lead_importance.png": "Lead importance per class (share of mean |IG|)"}
    for c in ex.get("examples") or {}:
        names[f"time_{c}.png"] = f"Integrated Gradients over leads × time for {c}"
        names[f"frequency_{c}.png"] = f"Layer Integrated Gradients over leads × frequency for {c}"
    for name, caption in names.items():
        path = Path(out_dir) / "figures" / name
        if path.is_file():
            out[name] = (caption, path.read_bytes())
    return out


def render_comparison(out_dir: Path, data_root=None) -> Path:
    """Re-render ``out_dir``'s report from its ``comparison.json`` (nothing recomputed): the tables, the
    conclusion and the figures from the saved result, the ROC curves from the runs' saved fold-10
    predictions and the PTB-XL labels (``data_root`` or $ECGNET_DATA; skipped with a note if missing),
    the attribution heatmaps reused from ``figures/``. Returns the HTML path."""
    from ecgnet.runs.describe import run_config, run_strategy

    out_dir = Path(out_dir)
    path = out_dir / "comparison.json"
    if not path.is_file():
        raise ECGNetError(f"{path}: missing — run `ecgnet compare … --out {out_dir}` first")
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not valid JSON ({e})") from None
    for run in result["runs"]:  # reports written before the strategy was saved
        if not run.get("strategy"):
            d = _run_dir(run, out_dir)
            run["strategy"] = run_strategy(run_config(d)) if d is not None else None
    result["conclusion"] = conclusion(result["runs"], result["baseline"], result["best"])
    y = probs = note = None
    if len(result["classes"]) <= MANY_CLASSES:
        try:
            y, probs = _saved_roc_inputs(result, out_dir, data_root)
        except ECGNetError as e:
            note = f"the runs' fold-10 predictions or the labels were not available when rendering ({e})."
    return write_comparison_report(out_dir, result, y, probs, _saved_explanation_figures(result, out_dir), note)
