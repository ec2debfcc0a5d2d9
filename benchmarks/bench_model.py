"""Size, compute, CPU inference latency and CPU training throughput of one model.

* parameters;
* multiply-accumulates (MACs) per ECG, counted by ``torch.utils.flop_counter.FlopCounterMode``
  (MACs = FLOPs / 2; convolutions and linear layers only — batch norm, ReLU, pooling and the
  sigmoid are not counted): for one training window, and for a whole 10 s record under the
  sliding-window inference of ``ecgnet.models.windows.windowed_proba``;
* inference latency per ECG on the CPU (whole record, windowed as in evaluation), median over
  repeats after warm-up, with 1 and 2 torch threads: a single ECG (batch 1), and amortised per ECG
  in batches of 64;
* training throughput in records/s: forward + backward + AdamW step on random crops of the training
  window length (batch 128 by default), median step time after warm-up, with 1 and 2 threads. Data
  loading is not included.

Inputs are random tensors of the right shape; the model is built from a config (default
configs/baseline_time.yaml) or loaded from a trained run with --checkpoint.

    python -m benchmarks.bench_model
    python -m benchmarks.bench_model --config configs/baseline_time.yaml --threads 1
    python -m benchmarks.bench_model --checkpoint runs/baseline_time
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._common import REPO_ROOT, median_seconds, print_table, write_results

from ecgnet.config import load_config
from ecgnet.data.signals import SECONDS
from ecgnet.errors import ECGNetError
from ecgnet.models import build_model
from ecgnet.models.windows import window_starts, windowed_proba
from ecgnet.runs import count_parameters, load_run

N_METADATA = 8  # age, sex, height, weight + their missing flags


def count_macs(fn) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def random_batch(batch: int, samples: int, classes: int | None = None):
    signal = 0.3 * torch.randn(batch, 12, samples)  # roughly ECG amplitudes in mV
    metadata = torch.randn(batch, N_METADATA)
    y = (torch.rand(batch, classes) < 0.3).float() if classes else None
    return signal, metadata, y


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--config", default=str(REPO_ROOT / "configs" / "baseline_time.yaml"),
                   help="config YAML giving the model name/params, window, stride, lr (default: baseline_time)")
    p.add_argument("--model", help="registered model name; overrides the config's model, built with its default params")
    p.add_argument("--checkpoint", metavar="RUN_DIR", help="load a trained run (load_run) instead of building a fresh model")
    p.add_argument("--classes", type=int, default=5, help="output classes of a fresh model (default 5: superdiagnostic)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    p.add_argument("--batch", type=int, default=64, help="batch size of the amortised inference figure (default 64)")
    p.add_argument("--train-batch", type=int, default=128, help="training batch size (default 128)")
    p.add_argument("--repeats", type=int, default=20, help="timed repeats of batch-1 inference (default 20)")
    p.add_argument("--batch-repeats", type=int, default=5, help="timed repeats of batched inference (default 5)")
    p.add_argument("--train-steps", type=int, default=5, help="timed training steps (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up calls / steps before each timing (default 2)")
    p.add_argument("--output", help="JSON path (default: benchmarks/results/bench_model.json)")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    torch.manual_seed(0)

    if args.checkpoint:
        if args.model:
            p.error("--model and --checkpoint exclude each other (a run has its own model)")
        model, config, info = load_run(args.checkpoint)
        name, params = config.model.name, dict(config.model.params)
        classes, source = len(info["classes"]), f"trained run {args.checkpoint}"
    else:
        config = load_config(args.config)
        name = args.model or config.model.name
        params = {} if args.model else dict(config.model.params)
        model, classes, source = build_model(name, args.classes, **params), args.classes, f"fresh, {args.config}"
    model.eval()

    fs = config.data.sampling_rate
    record = SECONDS * fs
    window, stride = config.data.window or record, config.data.stride
    n_windows = len(window_starts(record, window, stride))
    aggregate = config.data.aggregate

    def infer(signal, metadata):
        return windowed_proba(model, signal, metadata, window, stride, aggregate)

    one_window = random_batch(1, window)[:2]
    one_record = random_batch(1, record)[:2]
    macs_window = count_macs(lambda: model(*one_window))
    macs_record = count_macs(lambda: infer(*one_record))
    n_params = count_parameters(model)

    figures = {"model": name, "params": params, "source": source, "classes": classes,
               "sampling_rate": fs, "window_samples": window, "stride_samples": stride,
               "record_samples": record, "windows_per_record": n_windows, "aggregate": aggregate,
               "parameters": n_params, "macs_per_window": macs_window, "macs_per_record": macs_record,
               "inference": [], "training": []}

    batch = random_batch(args.batch, record)[:2]
    for t in threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            single, _ = median_seconds(lambda: infer(*one_record), args.repeats, args.warmup)
            batched, _ = median_seconds(lambda: infer(*batch), args.batch_repeats, args.warmup)
        figures["inference"].append({"threads": t, "batch": 1, "ms_per_batch": round(single * 1e3, 3),
                                     "ms_per_ecg": round(single * 1e3, 3), "ecg_per_s": round(1 / single, 1)})
        figures["inference"].append({"threads": t, "batch": args.batch, "ms_per_batch": round(batched * 1e3, 3),
                                     "ms_per_ecg": round(batched * 1e3 / args.batch, 3),
                                     "ecg_per_s": round(args.batch / batched, 1)})

    t_cfg = config.training
    signal, metadata, y = random_batch(args.train_batch, window, classes)
    for t in threads:
        torch.set_num_threads(t)
        net = copy.deepcopy(model).train()  # every thread count starts from the same weights
        opt = torch.optim.AdamW(net.parameters(), lr=t_cfg.lr, weight_decay=t_cfg.weight_decay)

        def step():
            opt.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(net(signal, metadata), y).backward()
            opt.step()

        per_step, _ = median_seconds(step, args.train_steps, args.warmup)
        figures["training"].append({"threads": t, "batch": args.train_batch, "ms_per_step": round(per_step * 1e3, 1),
                                    "records_per_s": round(args.train_batch / per_step, 1)})

    print(f"\nModel {name} ({source}); {classes} classes; params {params or 'defaults'}")
    print_table(["figure", "value"], [
        ["parameters", f"{n_params:,}"],
        [f"MACs per {window}-sample window", f"{macs_window / 1e6:,.1f} M"],
        [f"MACs per {record}-sample record ({n_windows} windows, stride {stride})", f"{macs_record / 1e6:,.1f} M"],
    ], title="Size and compute")
    print_table(["threads", "batch", "ms / batch", "ms / ECG", "ECG / s"],
                [[r["threads"], r["batch"], f"{r['ms_per_batch']:.1f}", f"{r['ms_per_ecg']:.2f}", f"{r['ecg_per_s']:,.0f}"]
                 for r in figures["inference"]],
                title=f"CPU inference, whole {SECONDS} s record windowed (median of {args.repeats} / {args.batch_repeats})")
    print_table(["threads", "batch", "ms / step", "records / s"],
                [[r["threads"], r["batch"], f"{r['ms_per_step']:.0f}", f"{r['records_per_s']:,.0f}"]
                 for r in figures["training"]],
                title=f"CPU training, forward+backward+AdamW on {window}-sample crops (median of {args.train_steps} steps)")
    write_results("bench_model", figures, vars(args), args.output)
    return figures


if __name__ == "__main__":
    try:
        main()
    except ECGNetError as e:
        sys.exit(f"error: {e}")
