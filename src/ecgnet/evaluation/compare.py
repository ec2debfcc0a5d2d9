"""Compare trained runs side by side, from their run directories (nothing is retrained).

For every run: fold-10 accuracy (read from ``test/metrics.json``: macro AUC with its bootstrap
interval, per-class AUC, balanced accuracy and accuracy at the fold-9 thresholds, macro F1,
single-label accuracy), a paired bootstrap against the baseline's fold-10 predictions, complexity
(parameters, MACs per ECG, single-thread latency, epoch and training time) and, for fusion models,
modality ablation and gate/attention weights. The "best" run is chosen on **fold 9** (validation macro
AUC, ``val/metrics.json``) — fold 10 is only reported, never used to choose. The best run is then
explained with Integrated Gradients (time heatmaps on one fold-10 ECG per class, frequency heatmaps if
it has a frequency frontend, and a lead-importance table).

Writes ``comparison.json``, ``comparison.md`` (+ ``figures/``) and a self-contained ``comparison.html``.
A run whose model cannot be rebuilt (e.g. late fusion, or missing weights) keeps its accuracy rows and
gets a note instead of the model-based sections.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from ecgnet.errors import ECGNetError
from ecgnet.evaluation import metrics as M
from ecgnet.runs.describe import run_config, run_imbalance, run_modalities, run_strategy, trained_manifest

BEST_RULE = "highest fold-9 (validation) macro AUC; fold 10 is never used to choose"


def _say(progress: bool, message: str) -> None:
    if progress:
        Console(stderr=True).print(f"[dim]compare:[/] {message}", highlight=False)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not valid JSON ({e})") from None


def read_run_outputs(run_dir: Path) -> dict:
    """A run's saved evaluation: run.json (optional), val/test metrics.json, test predictions."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ECGNetError(f"{run_dir}: no such run directory")
    from ecgnet.runs.directory import refuse_incomplete

    refuse_incomplete(run_dir)  # an unfinished run, and a folder that is none, said as such (not "evaluate it")
    if not (run_dir / "config.yaml").is_file() and not (run_dir / "run.json").is_file():
        raise ECGNetError(f"{run_dir}: not an ECGNet run directory (no config.yaml or run.json)")
    test = _read_json(run_dir / "test" / "metrics.json")
    info = _read_json(run_dir / "run.json") or {"name": run_dir.name}
    trained = trained_manifest(info)
    if trained and (test is None or test.get("split") != "test" or "resampled" in (test.get("macro_auc") or {})):
        raise ECGNetError(f"{run_dir}: trained on {trained}, not PTB-XL's folds: compare ranks runs on PTB-XL's fold "
                          "10; score this run on labelled records with `ecgnet evaluate RUN --manifest M.csv`")
    if test is None:
        raise ECGNetError(f"{run_dir / 'test' / 'metrics.json'}: missing — evaluate the run first")
    ids, probs, classes = M.read_predictions(run_dir / "test" / "predictions.csv", test.get("classes"))
    return {"dir": run_dir, "info": info, "val": _read_json(run_dir / "val" / "metrics.json"), "test": test,
            "ids": ids, "probs": probs, "classes": classes, "config": run_config(run_dir)}


def _accuracy(run: dict) -> dict:
    t, v, info = run["test"], run["val"], run["info"]
    if "val_macro_auc_source" in info:  # late fusion: its stack was fitted on fold 9, so not val/metrics.json
        val_auc, source = info.get("best_val_macro_auc"), f"run.json: {info['val_macro_auc_source']}"
    elif v:
        val_auc, source = v["macro_auc"]["value"], "val/metrics.json"
    else:
        val_auc, source = info.get("best_val_macro_auc"), "run.json best_val_macro_auc"
    return {"val_macro_auc": val_auc, "val_source": source,
            "macro_auc": t["macro_auc"], "per_class": t["per_class"], "macro_f1": t.get("macro_f1"),
            "mean_balanced_accuracy": t.get("mean_balanced_accuracy"),
            "single_label_accuracy": t.get("single_label_accuracy")}


def _complexity(model, config, run: dict, latency_repeats: int) -> dict:
    from ecgnet.evaluation.complexity import epoch_seconds, model_cost

    info = run["info"]
    out = {"parameters": info.get("parameters"), "epoch_seconds": epoch_seconds(run["dir"]),
           "training_seconds": info.get("training_seconds"), "epochs_run": info.get("epochs_run")}
    if model is not None:
        out.update(model_cost(model, config, latency_repeats))
    return out


def _example_records(y: np.ndarray, probs: np.ndarray) -> dict[int, int]:
    """Per class, the fold-10 row to explain: among records positive for it — only for it if any such
    exist — the one the run gives the highest probability (a clear, correctly ranked example)."""
    out = {}
    for k in range(y.shape[1]):
        pos = y[:, k] == 1
        only = pos & (y.sum(1) == 1)
        rows = np.flatnonzero(only if only.any() else pos)
        if len(rows):
            out[k] = int(rows[np.argmax(probs[rows, k])])
    return out


def _explain(model, config, test, classes, probs, explain_records: int, ig_steps: int,
             progress: bool) -> tuple[dict, dict]:
    """(JSON summary, figures {file: (caption, Figure)}) of the best run's attributions."""
    from ecgnet.data.signals import LEADS
    from ecgnet.explain import attributions as A

    fs, window, stride = config.data.sampling_rate, config.data.window, config.data.stride
    summary, figures = {"examples": {}}, {}
    has_frequency = A.find_frequency_frontend(model) is not None
    for k, row in _example_records(test.y, probs).items():
        c = classes[k]
        _say(progress, f"attributions for {c} (ecg_id {int(test.ecg_ids[row])})")
        ta = A.time_attributions(model, test.signal[row], test.metadata[row], k, window=window, stride=stride,
                                 n_steps=ig_steps)
        entry = {"ecg_id": int(test.ecg_ids[row]), "labels": [classes[j] for j in np.flatnonzero(test.y[row])],
                 "probability": float(probs[row, k]), "window_start_s": ta.start / fs, "logit": ta.logit,
                 "baseline_logit": ta.baseline_logit, "ig_delta": ta.delta}
        title = f"{c}: ecg_id {entry['ecg_id']} ({', '.join(entry['labels'])}), p = {entry['probability']:.2f}"
        figures[f"time_{c}.png"] = (f"Integrated Gradients over leads × time for {c}",
                                    A.plot_time_heatmap(ta.signal, ta.values, LEADS, title, fs, ta.start))
        if has_frequency:
            fa = A.frequency_attributions(model, test.signal[row], test.metadata[row], k, window=window,
                                          start=ta.start, fs=fs, n_steps=ig_steps)
            if fa is not None:
                entry["frequency_ig_delta"] = fa.delta
                top = np.argsort(np.abs(fa.values).sum(0))[::-1][:3]
                entry["top_frequencies_hz"] = [float(fa.frequencies[i]) for i in top]
                figures[f"frequency_{c}.png"] = (f"Layer Integrated Gradients over leads × frequency for {c}",
                                                 A.plot_frequency_heatmap(fa.values, fa.frequencies, LEADS, title))
        summary["examples"][c] = entry
    _say(progress, f"lead importance ({explain_records} records per class)")
    table = A.lead_importance(model, test, classes, n_per_class=explain_records, window=window, stride=stride,
                              n_steps=max(8, ig_steps * 2 // 3))
    summary["lead_importance"] = table
    if table["classes"]:
        figures["lead_importance.png"] = ("Lead importance per class (share of mean |IG|)", A.plot_lead_importance(table))
    return summary, figures


def compare(run_dirs: list[Path], baseline: Path, data_root: Path | None = None, out_dir: Path = Path("outputs/comparison"),
            explain: bool = True, n_boot: int = 1000, progress: bool = True, cache_dir: Path | None = None,
            explain_records: int = 16, latency_repeats: int = 20, ablation_records: int | None = None,
            ig_steps: int = 50, data=None) -> dict:
    """Compare ``run_dirs`` (the baseline is added first if missing); write the report into ``out_dir``
    and return the JSON-ready result (also ``out_dir/comparison.json``).

    ``explain_records``: fold-10 records per class for the lead-importance table. ``ablation_records``:
    evaluate ablation and weights on a random subset of fold 10 of that size (None: all of it; 0: skip
    them; the accuracy tables always use all of fold 10, from the saved predictions). ``ig_steps``: Integrated
    Gradients steps of the example heatmaps. ``data``: an already loaded :class:`PTBXL` of the runs'
    task (else read from ``data_root``/``cache_dir``)."""
    from ecgnet.data.dataset import PTBXL
    from ecgnet.data.ptbxl import data_root as find_root
    from ecgnet.evaluation.compare_report import conclusion, write_comparison_report
    from ecgnet.runs import load_run, provenance

    if ablation_records is not None and ablation_records < 0:
        raise ECGNetError(f"ablation_records must be >= 0 (0 skips the ablation), got {ablation_records}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():  # said before the work, not after it
        raise ECGNetError(f"{out_dir}: a file, not a folder for the comparison's report (--out)")
    started, origin = time.perf_counter(), provenance()  # the code and command that made this report
    loaded, names = _comparable_runs([Path(baseline), *map(Path, run_dirs)])
    classes = loaded[0]["classes"]
    task = loaded[0]["info"].get("task") or next((r["info"]["task"] for r in loaded if r["info"].get("task")),
                                                 "superdiagnostic")
    _say(progress, "loading fold 10")
    rate = next((r["config"].data.sampling_rate for r in loaded if r["config"] is not None), 100)
    if data is None:
        data = PTBXL(find_root(data_root), task, rate, cache_dir)
    test = data.split("test")
    if list(data.classes) != list(classes):
        raise ECGNetError(f"the runs' classes {classes} are not those of task '{task}' ({data.classes})")
    probs = {name: _on_fold10(r, test, task) for name, r in zip(names, loaded)}
    y = test.y.astype(int)
    base_name = names[0]
    ablation_split = test.sample(ablation_records or None, seed=0)

    runs, models = [], {}
    for name, r in zip(names, loaded):
        _say(progress, f"{name}: accuracy, paired bootstrap, complexity")
        entry = _run_entry(name, r, M.paired_bootstrap(y, probs[name], probs[base_name], n_boot=n_boot, seed=0))
        model = config = None
        try:
            model, config, _ = load_run(r["dir"])
        except Exception as e:  # late fusion, missing weights, a model this version cannot build
            entry["notes"].append(f"model not loaded, model-based sections skipped: {e}")
        entry["complexity"] = _complexity(model, config, r, latency_repeats)
        if model is not None:
            models[name] = (r["dir"], config)  # loadable: the best of them is explained below
        if model is not None and ablation_records != 0:
            _say(progress, f"{name}: modality ablation / weights")
            entry["ablation"] = _ablation(model, ablation_split, config, classes, n_boot)
        runs.append(entry)

    candidates = [r for r in runs if r["accuracy"]["val_macro_auc"] is not None]
    best = max(candidates, key=lambda r: r["accuracy"]["val_macro_auc"])["name"] if candidates else None
    explanation, figures = None, {}
    if explain and best is not None:
        if best in models:
            model, config, _ = load_run(models[best][0])
            explanation, figures = _explain(model, config, test, classes, probs[best], explain_records, ig_steps,
                                            progress)
            explanation["run"] = best
        else:
            next(r for r in runs if r["name"] == best)["notes"].append("best run has no loadable model: not explained")

    result = {"baseline": base_name, "best": best, "best_rule": BEST_RULE, "task": task, "classes": classes,
              "n_test_records": int(len(y)), "n_boot": n_boot, "ci": 0.90, "runs": runs,
              "explanation": explanation, "conclusion": conclusion(runs, base_name, best), "provenance": origin}
    result["seconds"] = round(time.perf_counter() - started, 1)
    _say(progress, f"writing the report to {out_dir}")
    write_comparison_report(Path(out_dir), result, y, probs, figures)
    return result


def _comparable_runs(dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """The runs' outputs (each directory once, the baseline first), checked to be comparable — one task,
    PTB-XL's folds, the baseline's classes (reordered where only their order differs) — and their names
    (a name two runs share gets its directory)."""
    unique, seen = [], set()
    for d in dirs:
        if d.resolve() not in seen:
            seen.add(d.resolve())
            unique.append(d)
    loaded = [read_run_outputs(d) for d in unique]
    classes = loaded[0]["classes"]
    tasks = {r["info"].get("task") for r in loaded} - {None}
    if len(tasks) > 1:
        raise ECGNetError(f"runs are on different tasks ({', '.join(sorted(tasks))}); compare runs of one task")
    for r in loaded:
        if "collection" in r["info"]:  # scored on its manifest's records: nothing to pair with fold 10
            raise ECGNetError(f"{r['dir']}: trained and scored on the manifest "
                              f"'{r['info']['collection'].get('name')}', not on PTB-XL's folds; compare pairs runs "
                              "on PTB-XL fold 10 (`ecgnet evaluate RUN --manifest M.csv` scores it on any manifest)")
    for r in loaded[1:]:
        if r["classes"] != classes and sorted(r["classes"]) == sorted(classes):  # the same classes, other order
            r["probs"] = r["probs"][:, [r["classes"].index(c) for c in classes]]
            r["classes"] = list(classes)
        if r["classes"] != classes:
            raise ECGNetError(f"{r['dir']}: classes {r['classes']} differ from the baseline's {classes}")
    names = [str(r["info"].get("name") or r["dir"].name) for r in loaded]
    return loaded, [n if names.count(n) == 1 else f"{n} ({r['dir']})" for n, r in zip(names, loaded)]


def _on_fold10(r: dict, test, task: str) -> np.ndarray:
    """A run's saved test probabilities in the rows of ``test`` (fold 10), which must be its records."""
    row = {int(e): i for i, e in enumerate(test.ecg_ids)}
    if sorted(map(int, r["ids"])) != sorted(row):
        raise ECGNetError(f"{r['dir'] / 'test' / 'predictions.csv'}: its records are not fold 10 of '{task}'")
    p = np.empty_like(r["probs"])
    p[[row[int(e)] for e in r["ids"]]] = r["probs"]
    return p


def _run_entry(name: str, r: dict, vs_baseline: dict) -> dict:
    """A run's row of the comparison from its saved outputs: what it is, its accuracy, its paired difference
    from the baseline (complexity and ablation are added once its model is loaded)."""
    return {"name": name, "run_dir": str(r["dir"]), "model": r["info"].get("model"), "kind": r["info"].get("kind"),
            "modalities": run_modalities(r["config"]), "strategy": run_strategy(r["config"]),
            "imbalance": run_imbalance(r["config"]), "accuracy": _accuracy(r), "notes": [], "vs_baseline": vs_baseline}


def _ablation(model, split, config, classes, n_boot: int) -> dict:
    """The modality ablation of a fusion model on ``split``, or, where it has none, its modality weights."""
    from ecgnet.explain.ablation import modality_ablation, modality_weights

    ablation = modality_ablation(model, split, config, classes, n_boot=n_boot)
    if not ablation:
        weights = modality_weights(model, split, config, classes)
        ablation = {"n_records": int(len(split.ecg_ids)), "weights": weights} if weights else {}
    return ablation
