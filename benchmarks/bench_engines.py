"""Inference engines side by side for trained runs: torch eager, torch.compile, ONNX Runtime (fp32 and
int8) and torch bf16 — latency, throughput and fold-10 accuracy, measured in one process.

* Every engine is a callable ``f(signal windows, metadata) → logits`` run through
  ``ecgnet.models.windows.windowed_proba``, as ``ecgnet predict`` runs a model: the windowing and
  the max over windows are the same Python code for all of them.
* **Latency per ECG**: one 10 s record (batch 1: its 7 windows in one call), median over ``--repeats``,
  with 1 and 2 threads. **Throughput**: ms per ECG in batches of ``--batches`` records. The engines
  take turns in blocks (:func:`median_ms`), so load from other processes hits them alike: compare the
  engines within a run, not figures from different runs.
* ``latency_ms`` column: the same torch model timed by ``ecgnet.evaluation.complexity.latency_ms`` (the
  comparison report's method) in the same process, to show that the two methods agree.
* **Accuracy**: each engine's probabilities on all fold-10 records, paired bootstrap of macro AUC
  against torch fp32 (``ecgnet.evaluation.metrics.paired_bootstrap``), max |Δp|, and the share of
  (record, class) calls at the fold-9 thresholds that differ from torch fp32.
* **int8**: ``ecgnet.export.int8`` (what ``ecgnet export --quantize int8`` writes): ONNX Runtime static
  quantization (QDQ, signed 8-bit per-channel weights, unsigned 8-bit activations) of the encoders'
  convolutions except each encoder's first one, calibrated (99.99th percentile) on ``--calibration``
  records of the training folds 1–8. The spectral frontends (DFT products, log) and the Transformer
  stay fp32: quantizing them moved probabilities by up to 0.6.
* **bf16**: ``torch.autocast("cpu", torch.bfloat16)`` (convolutions and linear layers in bf16; the FFTs
  stay fp32), on a CPU with AVX-512 BF16.

    python -m benchmarks.bench_engines
    python -m benchmarks.bench_engines --runs runs/baseline_time --repeats 50 --no-compile
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from benchmarks._common import REPO_ROOT, print_table, write_results

from ecgnet.data.dataset import PTBXL
from ecgnet.data.ptbxl import data_root
from ecgnet.data.signals import SECONDS
from ecgnet.evaluation.complexity import latency_ms
from ecgnet.evaluation.metrics import macro_auc, paired_bootstrap
from ecgnet.export.int8 import CALIBRATION_RECORDS, CALIBRATION_SEED, quantize_int8
from ecgnet.export.onnx import onnx_bytes
from ecgnet.inference.engines import OnnxModel
from ecgnet.inference.predictor import Predictor
from ecgnet.models.windows import window_starts, windowed_proba

RUNS = ["runs/baseline_time", "runs/intermediate_concat_weighted_bce"]


def bf16(model):
    def run(signal, metadata):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(signal, metadata).float()
    return run


def engines(predictor: Predictor, threads: int, onnx_models: dict, compiled) -> dict:
    """{engine name: callable} for ``threads`` threads (ONNX Runtime sessions are per thread count)."""
    out = {"torch eager": predictor.engine}
    if compiled is not None:
        out["torch.compile"] = compiled
    out.update({name: OnnxModel(data, threads, name=name) for name, data in onnx_models.items()})
    out["torch bf16"] = bf16(predictor.engine)
    return out


def median_ms(fns: dict, make_args, repeats: int, warmup: int, per: int = 1, rounds: int = 4) -> dict:
    """Median ms per ``per`` ECGs. Engines take turns in ``rounds`` blocks of ``warmup`` untimed and
    ``repeats / rounds`` timed calls, so slow spells of a shared machine fall on all of them; the
    warm-up of each block keeps one engine's idle threads from being timed against the next."""
    times = {name: [] for name in fns}
    signal, metadata = make_args()
    with torch.inference_mode():
        for _ in range(rounds):
            for name, fn in fns.items():
                for i in range(warmup + max(1, repeats // rounds)):
                    start = time.perf_counter()
                    fn(signal, metadata)
                    if i >= warmup:
                        times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) / per for name, t in times.items()}


def probabilities(fn, split, predictor: Predictor, batch: int = 64) -> np.ndarray:
    args = (predictor.window, predictor.stride, predictor.config.data.aggregate)
    out = []
    with torch.inference_mode():
        for i in range(0, len(split.signal), batch):
            out.append(windowed_proba(fn, torch.as_tensor(split.signal[i:i + batch]),
                                      torch.as_tensor(split.metadata[i:i + batch]), *args).float().numpy())
    return np.concatenate(out)


def bench_run(run: str, args, test, calibration) -> dict:
    predictor = Predictor(REPO_ROOT / run)
    name = predictor.info["name"]
    window, stride, aggregate = predictor.window, predictor.stride, predictor.config.data.aggregate
    record = SECONDS * predictor.rate
    print(f"\n{name}: exporting, quantizing{', compiling' if args.compile else ''} …", flush=True)
    fp32 = onnx_bytes(predictor.run)
    onnx_models = {"onnxruntime fp32": fp32,
                   "onnxruntime int8": quantize_int8(fp32, calibration, window, stride, name=name)}
    compiled = torch.compile(predictor.engine, dynamic=False) if args.compile else None

    def one_record(batch=1):
        g = torch.Generator().manual_seed(0)
        signal = 0.3 * torch.randn(batch, 12, record, generator=g)
        metadata = torch.randn(batch, 8, generator=g)
        return lambda: (signal, metadata)

    def windowed(fn):
        return lambda s, m: windowed_proba(fn, s, m, window, stride, aggregate)

    figures = {"run": name, "windows_per_ecg": len(window_starts(record, window, stride)), "latency": [],
               "throughput": [], "accuracy": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        fns = {k: windowed(f) for k, f in engines(predictor, threads, onnx_models, compiled).items()}
        lat = median_ms(fns, one_record(), args.repeats, args.warmup)
        report_method = latency_ms(predictor.engine, threads=threads, repeats=args.repeats, samples=record,
                                   window=window, stride=stride, aggregate=aggregate)
        figures["latency"].append({"threads": threads, "ms_per_ecg": lat, "complexity_latency_ms_torch": report_method})
        for batch in args.batches:
            thr = median_ms(fns, one_record(batch), args.batch_repeats, 1, per=batch, rounds=min(2, args.batch_repeats))
            figures["throughput"].append({"threads": threads, "batch": batch, "ms_per_ecg": thr,
                                          "ecg_per_s": {k: 1e3 / v for k, v in thr.items()}})
        print(f"  {threads} thread(s): " + ", ".join(f"{k} {v:.2f}" for k, v in lat.items()) + " ms/ECG", flush=True)

    torch.set_num_threads(max(args.threads))
    fns = engines(predictor, max(args.threads), onnx_models, compiled)
    reference = probabilities(fns.pop("torch eager"), test, predictor)
    y = test.y.astype(int)
    thresholds = np.array([predictor.thresholds[c] for c in predictor.classes])
    figures["accuracy"]["torch eager"] = {"macro_auc": macro_auc(y, reference)}
    for engine, fn in fns.items():
        p = probabilities(fn, test, predictor)
        paired = paired_bootstrap(y, p, reference, n_boot=args.n_boot, seed=0)
        figures["accuracy"][engine] = {
            "macro_auc": macro_auc(y, p), "vs_torch_fp32": paired,
            "max_abs_dp": float(np.abs(p - reference).max()), "mean_abs_dp": float(np.abs(p - reference).mean()),
            "calls_changed": float(((p >= thresholds) != (reference >= thresholds)).mean())}
        print(f"  {engine}: fold-10 macro AUC {figures['accuracy'][engine]['macro_auc']:.4f}, "
              f"Δ {paired['diff']:+.4f} [{paired['low']:+.4f}, {paired['high']:+.4f}]", flush=True)
    return figures


def print_figures(all_figures: list[dict], n_test: int) -> None:
    for fig in all_figures:
        engines_ = list(fig["latency"][0]["ms_per_ecg"])
        lat = {r["threads"]: r["ms_per_ecg"] for r in fig["latency"]}
        thr = {(r["threads"], r["batch"]): r["ms_per_ecg"] for r in fig["throughput"]}
        headers = ["engine", *(f"{t} thr, batch 1" for t in lat), *(f"{t} thr, batch {b}" for t, b in thr),
                   "fold-10 AUC", "Δ vs fp32 [90 % CI]", "max |Δp|", "calls changed"]
        rows = []
        for e in engines_:
            acc = fig["accuracy"].get(e, {})
            d = acc.get("vs_torch_fp32")
            rows.append([e, *(f"{lat[t][e]:.2f}" for t in lat), *(f"{thr[k][e]:.2f}" for k in thr),
                         f"{acc['macro_auc']:.4f}" if acc else "–",
                         f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d else "—",
                         f"{acc['max_abs_dp']:.1e}" if d else "—", f"{100 * acc['calls_changed']:.2f} %" if d else "—"])
        report = ", ".join(f"{r['threads']} thr {r['complexity_latency_ms_torch']:.2f}" for r in fig["latency"])
        print_table(headers, rows, title=f"{fig['run']}: ms per 10 s ECG ({fig['windows_per_ecg']} windows), "
                                         f"fold-10 accuracy on {n_test} records; complexity.latency_ms (torch): {report}")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--runs", nargs="+", default=RUNS, help="run directories (default: baseline and best fusion model)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--batches", default="64", help="comma-separated batch sizes (records) for throughput (default 64)")
    p.add_argument("--repeats", type=int, default=60, help="timed batch-1 calls per engine (default 60)")
    p.add_argument("--batch-repeats", type=int, default=6, help="timed batched calls per engine (default 6)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per engine first (default 3)")
    p.add_argument("--calibration", type=int, default=CALIBRATION_RECORDS,
                   help=f"training-fold records calibrating int8 (default {CALIBRATION_RECORDS}, as ecgnet export)")
    p.add_argument("--test-records", type=int, help="fold-10 records for accuracy (default: all)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="include torch.compile")
    p.add_argument("--data", default=os.environ.get("ECGNET_DATA"), help="PTB-XL folder (default $ECGNET_DATA)")
    p.add_argument("--output", help="JSON path (default: benchmarks/results/bench_engines.json)")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    load_before = os.getloadavg()
    data = PTBXL(data_root(args.data))
    test = data.split("test", max_records=args.test_records)
    calibration = data.split("train", max_records=args.calibration, seed=CALIBRATION_SEED)
    all_figures = [bench_run(run, args, test, calibration) for run in args.runs]
    print_figures(all_figures, len(test.ecg_ids))
    options = {k: v for k, v in vars(args).items() if k != "data"}
    write_results("bench_engines", {"runs": all_figures, "test_records": len(test.ecg_ids),
                                    "load_average_before": [round(x, 2) for x in load_before]}, options, args.output)
    return {"runs": all_figures}


if __name__ == "__main__":
    main()
