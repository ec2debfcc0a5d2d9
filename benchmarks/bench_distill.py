"""Teacher, distilled students and the shipped default side by side, in one run (issue 23).

* **Accuracy** (from each run's committed fold-9/10 predictions and fold-9 thresholds): fold-9 and fold-10
  macro AUC (90 % bootstrap interval), per-class balanced accuracy, the 5-way accuracy (records with one
  superclass: argmax = that class, ``metrics.single_label_accuracy``), and paired bootstraps of fold-10
  macro AUC: each student against the teacher and against the baseline (and the baseline against the
  teacher) — the same 1,000 resamples for every pair.
* **Cost**: parameters, MACs per 10 s ECG and 1-thread torch latency (``complexity.model_cost``); ONNX
  Runtime fp32 and int8 latency at 1 thread for the single models, timed in turns in this process
  (``bench_engines.median_ms``) so that load from other processes falls on all of them — compare within
  a run. An ensemble is not exported as one ONNX graph: its torch latency is the measured whole.
* **Transfer**: macro AUC on the shared Challenge samples (``ecgnet.evaluation.external``), at each run's
  fold-9 thresholds; measured, never used to choose anything.

Runs that do not exist are listed as missing, so the script runs before a student is trained.

    python -m benchmarks.bench_distill                       # teacher ensemble_greedy, baseline long_time
    python -m benchmarks.bench_distill --students runs/distill_long_time --no-latency
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import REPO_ROOT, print_table, write_results
from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M

SAMPLES = Path("/work/shared/external/cinc2021-samples")
N_BOOT, CI = 1000, 0.90


def fold_predictions(run_dir: Path, labels, split: str) -> np.ndarray:
    ids, p, _ = M.read_predictions(run_dir / split / "predictions.csv", labels.classes)
    if not np.array_equal(ids, labels.ecg_ids[labels.split(split)]):
        raise SystemExit(f"{run_dir}/{split}/predictions.csv: records differ from the {split} fold's")
    return p


def accuracy(runs: dict[str, Path], labels, n_boot: int) -> dict:
    """Per run: fold-9 / fold-10 macro AUC with intervals, balanced accuracy per class, 5-way accuracy."""
    y9, y10 = (labels.y[labels.split(s)].astype(int) for s in ("val", "test"))
    out = {}
    for name, run_dir in runs.items():
        p9, p10 = fold_predictions(run_dir, labels, "val"), fold_predictions(run_dir, labels, "test")
        per_class = json.loads((run_dir / "test" / "metrics.json").read_text())["per_class"]
        thresholds = np.array([per_class[c]["threshold"] for c in labels.classes])
        tm = M.threshold_metrics(y10, p10, thresholds)
        five, n_single = M.single_label_accuracy(y10, p10)
        _, lo, hi = M.bootstrap_ci(y10, p10, M.macro_auc, n_boot=n_boot, ci=CI, seed=0)
        out[name] = {"fold9_macro_auc": M.macro_auc(y9, p9), "fold10_macro_auc": M.macro_auc(y10, p10),
                     "fold10_ci": [lo, hi], "balanced_accuracy": dict(zip(labels.classes, map(float, tm["balanced_accuracy"]))),
                     "mean_balanced_accuracy": float(np.mean(tm["balanced_accuracy"])),
                     "five_way_accuracy": five, "five_way_records": n_single, "p10": p10}
    return out


def paired(acc: dict, pairs: list[tuple[str, str]], y10: np.ndarray, n_boot: int) -> list[dict]:
    return [{"a": a, "b": b, **M.paired_bootstrap(y10, acc[a]["p10"], acc[b]["p10"], n_boot=n_boot, ci=CI, seed=0)}
            for a, b in pairs]


def load_model(run_dir: Path):
    """(model, config) of a run; an averaging ensemble without its own weights file is rebuilt from its members."""
    from ecgnet.distill.teacher import _load_teacher

    model, config, _ = _load_teacher(run_dir)
    return model.eval(), config


def costs(runs: dict[str, Path], latency: bool, repeats: int, calibration) -> dict:
    from ecgnet.evaluation.complexity import model_cost

    out = {}
    for name, run_dir in runs.items():
        model, config = load_model(run_dir)
        cost = model_cost(model, config, latency_repeats=repeats if latency else 1)
        if not latency:
            cost["latency_ms"] = None
        out[name] = cost
        print(f"  {name}: {cost['parameters']:,} parameters, {cost['macs_per_ecg'] / 1e6:.0f} M MACs/ECG", flush=True)
    if latency:
        out.update(onnx_latency({n: d for n, d in runs.items() if not getattr(load_model(d)[0], "whole_record", False)},
                                repeats, calibration, out))
    return out


def onnx_latency(runs: dict[str, Path], repeats: int, calibration, out: dict) -> dict:
    """ONNX Runtime fp32 / int8 ms per ECG at 1 thread, all runs' engines timed in turns."""
    from benchmarks.bench_engines import median_ms
    from ecgnet.export.int8 import quantize_int8
    from ecgnet.export.onnx import onnx_bytes
    from ecgnet.inference.engines import OnnxModel
    from ecgnet.inference.predictor import Predictor
    from ecgnet.models.windows import windowed_proba

    torch.set_num_threads(1)
    fns = {}
    for name, run_dir in runs.items():
        predictor = Predictor(run_dir)
        w, s, a = predictor.window, predictor.stride, predictor.config.data.aggregate
        fp32 = onnx_bytes(predictor.run)
        engines = {"torch": predictor.engine, "onnxruntime fp32": OnnxModel(fp32, 1, name="fp32"),
                   "onnxruntime int8": OnnxModel(quantize_int8(fp32, calibration, w, s, name=name), 1, name="int8")}
        for engine, fn in engines.items():
            fns[(name, engine)] = (lambda f, w=w, s=s, a=a: (lambda x, m: windowed_proba(f, x, m, w, s, a)))(fn)
    g = torch.Generator().manual_seed(0)
    args = (0.3 * torch.randn(1, 12, 1000, generator=g), torch.randn(1, 8, generator=g))
    ms = median_ms(fns, lambda: args, repeats, warmup=3)
    for (name, engine), v in ms.items():
        out[name][f"ms_{engine.replace(' ', '_')}"] = v
    return out


def transfer(runs: dict[str, Path], n_boot: int, out_root: Path) -> dict:
    from ecgnet.evaluation.external import evaluate_external

    from ecgnet.errors import ECGNetError

    out = {}
    for name, run_dir in runs.items():
        try:
            r = evaluate_external(run_dir, SAMPLES, out_root / name, n_boot=n_boot, progress=False)
        except ECGNetError as e:  # e.g. an ensemble saved before runs held their members' weights
            print(f"  transfer: {name} not scored ({e})", flush=True)
            out[name] = {"macro_auc": None, "error": str(e)}
            continue
        out[name] = {"macro_auc": r["macro_auc"], "n_scored": r["n_scored"],
                     "mean_balanced_accuracy": r.get("mean_balanced_accuracy")}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", default="runs/ensemble_greedy")
    p.add_argument("--baseline", default="runs/long_time")
    p.add_argument("--students", nargs="*", default=["runs/distill_long_time"])
    p.add_argument("--task", default="superdiagnostic")
    p.add_argument("--n-boot", type=int, default=N_BOOT)
    p.add_argument("--repeats", type=int, default=40, help="timed batch-1 calls per engine")
    p.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--transfer", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--output", help="JSON path (default benchmarks/results/bench_distill.json)")
    p.add_argument("--name", default="bench_distill", help="results name (benchmarks/results/NAME.json)")
    args = p.parse_args(argv)
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), args.task)
    candidates = {"teacher": args.teacher, "baseline": args.baseline,
                  **{f"student:{Path(s).name}": s for s in args.students}}
    runs, missing = {}, []
    for role, path in candidates.items():
        d = REPO_ROOT / path
        (runs.__setitem__(role, d) if (d / "test" / "predictions.csv").is_file() else missing.append(path))
    if missing:
        print("missing (not trained yet): " + ", ".join(missing), flush=True)
    acc = accuracy(runs, labels, args.n_boot)
    y10 = labels.y[labels.split("test")].astype(int)
    students = [r for r in runs if r.startswith("student:")]
    pairs = [(s, o) for s in students for o in ("teacher", "baseline") if o in runs]
    if "baseline" in runs and "teacher" in runs:
        pairs.append(("baseline", "teacher"))
    diffs = paired(acc, pairs, y10, args.n_boot)
    cost = {}
    if args.latency:
        from ecgnet.data.dataset import PTBXL
        from ecgnet.export.int8 import CALIBRATION_RECORDS, CALIBRATION_SEED

        calibration = PTBXL(data_root(None), args.task).split("train", CALIBRATION_RECORDS, CALIBRATION_SEED)
        cost = costs(runs, True, args.repeats, calibration)
    ext = transfer(runs, args.n_boot, Path("outputs/bench_distill")) if args.transfer and SAMPLES.is_dir() else {}

    shown = labels.classes if len(labels.classes) <= 10 else []  # 71 statements: the mean only in the table
    rows = []
    for name, a in acc.items():
        c, t = cost.get(name, {}), (ext.get(name) or {}).get("macro_auc") or {}
        rows.append([name, Path(runs[name]).name, f"{a['fold9_macro_auc']:.4f}",
                     f"{a['fold10_macro_auc']:.4f} [{a['fold10_ci'][0]:.4f}, {a['fold10_ci'][1]:.4f}]",
                     *(f"{a['balanced_accuracy'][k]:.3f}" for k in shown), f"{a['mean_balanced_accuracy']:.3f}",
                     f"{a['five_way_accuracy']:.3f}",
                     f"{c['parameters']:,}" if c else "–", f"{c['macs_per_ecg'] / 1e6:.0f}" if c else "–",
                     *(f"{c[k]:.2f}" if c.get(k) is not None else "–" for k in
                       ("latency_ms", "ms_onnxruntime_fp32", "ms_onnxruntime_int8")),
                     f"{t['value']:.3f} [{t['low']:.3f}, {t['high']:.3f}]" if t else "–"])
    print_table(["role", "run", "fold-9 AUC", "fold-10 AUC [90 % CI]", *(f"{k} bal. acc." for k in shown),
                 "mean bal. acc.", "single-label acc." if shown == [] else "5-way acc.", "params", "M MACs/ECG", "torch ms (1 thr)", "ORT fp32 ms", "ORT int8 ms",
                 "transfer AUC"], rows, title="Fold 10 (thresholds from fold 9); latency per 10 s ECG at 1 thread")
    print_table(["a", "b", "Δ fold-10 macro AUC [90 % paired CI]", "P(Δ ≤ 0)"],
                [[d["a"], d["b"], f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]", f"{d['p_value']:.3f}"]
                 for d in diffs], title="Paired bootstrap")
    for a in acc.values():
        a.pop("p10")
    results = {"runs": {k: str(Path(v).relative_to(REPO_ROOT)) for k, v in runs.items()}, "missing": missing,
               "accuracy": acc, "paired": diffs, "cost": cost, "transfer": ext}
    write_results(args.name, results, {k: v for k, v in vars(args).items()}, args.output)
    return results


if __name__ == "__main__":
    main()
