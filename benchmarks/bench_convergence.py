"""Time to accuracy of a training run, read from its epoch log (it trains nothing).

Reads ``runs/<name>/logs/metrics.csv`` (Lightning's CSVLogger: the validation row and the training
row of an epoch are separate lines, grouped here by ``epoch``) and prints, per epoch, the epoch's
seconds, the cumulative training seconds, the training loss and the fold-9 macro AUC, then the
cumulative seconds at the end of the first epoch whose fold-9 macro AUC reaches ``--target``.

``epoch_seconds`` is what the training module logs: from the start of the training epoch to its end
hook, so it includes the end-of-epoch validation pass (Lightning runs it before that hook) but not
start-up, data loading into memory or the final evaluation. An epoch still in progress (AUC logged,
seconds not yet) is shown without a cumulative time.

    python -m benchmarks.bench_convergence                       # runs/baseline_time, target 0.93
    python -m benchmarks.bench_convergence runs/other --target 0.92
    python -m benchmarks.bench_convergence /tmp/metrics.csv      # a metrics.csv path works too
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from benchmarks._common import REPO_ROOT, print_table, write_results

REQUIRED = ("epoch", "epoch_seconds", "val_macro_auc")


def metrics_path(run: str) -> Path:
    path = Path(run)
    if path.suffix == ".csv":
        return path
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path / "logs" / "metrics.csv"


def per_epoch(csv: Path) -> pd.DataFrame:
    """One row per epoch: epoch (1-based), seconds, cumulative seconds, train_loss, val_macro_auc."""
    log = pd.read_csv(csv)
    missing = [c for c in REQUIRED if c not in log.columns]
    if missing:
        raise SystemExit(f"error: {csv}: column(s) {', '.join(missing)} missing — not an ecgnet epoch log")
    if "train_loss" not in log.columns:
        log["train_loss"] = float("nan")
    # A resumed run may log an epoch twice: the last value logged wins.
    epochs = log.groupby("epoch")[["epoch_seconds", "train_loss", "val_macro_auc"]].last().sort_index()
    epochs["cumulative_seconds"] = epochs["epoch_seconds"].cumsum()
    epochs.loc[epochs["epoch_seconds"].isna(), "cumulative_seconds"] = float("nan")
    epochs.index = epochs.index.astype(int) + 1  # Lightning counts from 0; people count from 1
    return epochs


def fmt(x: float, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def none_if_nan(x) -> float | None:
    return None if pd.isna(x) else round(float(x), 4)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("run", nargs="?", default="runs/baseline_time",
                   help="run directory or metrics.csv path (default: runs/baseline_time)")
    p.add_argument("--target", type=float, default=0.93, help="fold-9 macro AUC to reach (default 0.93)")
    p.add_argument("--output", help="JSON path (default: benchmarks/results/bench_convergence.json)")
    args = p.parse_args(argv)

    csv = metrics_path(args.run)
    if not csv.is_file():
        raise SystemExit(f"error: {csv}: no such epoch log (has the run started?)")
    epochs = per_epoch(csv)

    reached = epochs[epochs["val_macro_auc"] >= args.target]
    first = int(reached.index[0]) if len(reached) else None
    best = epochs["val_macro_auc"].idxmax() if epochs["val_macro_auc"].notna().any() else None
    complete = epochs["epoch_seconds"].notna()

    rows = [[e, fmt(r.epoch_seconds, ".1f"), fmt(r.cumulative_seconds, ".1f"), fmt(r.train_loss, ".4f"),
             fmt(r.val_macro_auc, ".4f") + (" *" if e == first else "")]
            for e, r in epochs.iterrows()]
    print(f"\n{csv}")
    print_table(["epoch", "seconds", "cumulative s", "train loss", "fold-9 macro AUC"], rows,
                title=f"Convergence (* = first epoch with fold-9 macro AUC >= {args.target})")

    figures = {"metrics_csv": str(csv), "target_val_macro_auc": args.target,
               "epochs_logged": len(epochs), "epochs_complete": int(complete.sum()),
               "training_seconds_logged": round(float(epochs.loc[complete, "epoch_seconds"].sum()), 1),
               "best_epoch": None if best is None else int(best),
               "best_val_macro_auc": None if best is None else none_if_nan(epochs.loc[best, "val_macro_auc"]),
               "first_epoch_reaching_target": first,
               "seconds_to_target": None if first is None else none_if_nan(epochs.loc[first, "cumulative_seconds"]),
               "epochs": [{"epoch": int(e), "epoch_seconds": none_if_nan(r.epoch_seconds),
                           "cumulative_seconds": none_if_nan(r.cumulative_seconds),
                           "train_loss": none_if_nan(r.train_loss), "val_macro_auc": none_if_nan(r.val_macro_auc)}
                          for e, r in epochs.iterrows()]}

    if first is None:
        print(f"\nfold-9 macro AUC >= {args.target} was never reached in {len(epochs)} epoch(s) "
              f"({figures['training_seconds_logged']:.1f} s logged; best {fmt(figures['best_val_macro_auc'] or float('nan'), '.4f')}"
              f"{'' if best is None else f' at epoch {int(best)}'})")
    elif figures["seconds_to_target"] is None:
        print(f"\nfold-9 macro AUC >= {args.target} first reached at epoch {first}; its seconds are not logged yet")
    else:
        print(f"\nfold-9 macro AUC >= {args.target} first reached at epoch {first}, "
              f"after {figures['seconds_to_target']:.1f} s of training "
              f"({figures['seconds_to_target'] / 60:.1f} min; AUC {epochs.loc[first, 'val_macro_auc']:.4f})")
    finished = (csv.parent.parent / "run.json").is_file()
    figures["run_finished"] = finished
    if not finished:
        print(f"(no run.json beside {csv.parent}: the run may still be training, or was stopped)")
    write_results("bench_convergence", figures, vars(args), args.output)
    return figures


if __name__ == "__main__":
    main()
