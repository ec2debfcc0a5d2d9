"""Time to accuracy: fold-9 and fold-10 macro AUC against wall-clock training time, and where the
time goes (loading batches, computing, validating). It trains each config it is given.

Each config is trained with ``ecgnet.training.fit.train`` (the command ``ecgnet train`` runs) plus two
measuring callbacks: a clock that splits every epoch into data-loading time (waiting for the next
batch), training compute and fold-9 validation, and a checkpoint of the selected weights after every
epoch. After training, each epoch's checkpoint is scored on fold 10 — outside the clock, and never used
for anything but this table. The "fold-10 AUC at t" of a curve is that of the model early stopping
would hold at t (the best fold-9 epoch so far), so the curve only uses fold 9 to choose.

Note: a one-cycle schedule depends on the number of epochs, so a point halfway along a 20-epoch curve
is not what a 10-epoch run would reach; only each run's end point is a complete recipe.

    python -m benchmarks.bench_time_to_accuracy configs/baseline_time.yaml configs/fast_time.yaml
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from benchmarks._common import REPO_ROOT, print_table, write_results

from ecgnet.config import load_config
from ecgnet.data.dataset import PTBXL
from ecgnet.data.ptbxl import data_root
from ecgnet.evaluation.evaluate import predict_split
from ecgnet.evaluation.metrics import macro_auc
from ecgnet.models import build_model
from ecgnet.training.fit import train

TARGET = 0.935
BUDGET_SECONDS = 600


class EpochClock(L.Callback):
    """Per epoch: seconds waiting for batches, seconds in training steps, seconds validating."""

    def __init__(self):
        self.epochs: list[dict] = []
        self._mark = self._val_start = 0.0
        self._now: dict = {}

    def on_train_epoch_start(self, trainer, module):
        self._now = {"data_s": 0.0, "compute_s": 0.0, "val_s": 0.0, "start": time.perf_counter()}
        self._mark = time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = time.perf_counter()
        self._now["data_s"] += now - self._mark
        self._mark = now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self._now["compute_s"] += now - self._mark
        self._mark = now

    def on_validation_start(self, trainer, module):
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer, module):
        if self._now:
            self._now["val_s"] += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer, module):
        self._now["wall_s"] = time.perf_counter() - self._now.pop("start")
        self._now["val_macro_auc"] = float(trainer.callback_metrics.get("val_macro_auc", float("nan")))
        self.epochs.append(self._now)


class EveryEpoch(L.pytorch.callbacks.ModelCheckpoint):
    """The validated (selected-for) weights of every epoch, for scoring on fold 10 afterwards."""

    def __init__(self, dirpath: Path):
        super().__init__(dirpath=dirpath, filename="epoch{epoch:02d}", auto_insert_metric_name=False,
                         save_top_k=-1, monitor="val_macro_auc", mode="max")


def fold10_per_epoch(config, data: PTBXL, checkpoints: Path, n_epochs: int) -> list[float]:
    model = build_model(config.model.name, len(data.classes), **config.model.params)
    aucs = []
    for e in range(n_epochs):
        state = torch.load(checkpoints / f"epoch{e:02d}.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
        _, y, p = predict_split(model, data, "test", config, progress=False)
        aucs.append(macro_auc(y, p))
    return aucs


def bench(config_path: Path, root: Path, overrides: list[str], runs_dir: Path | None = None) -> dict:
    config = load_config(config_path, overrides)
    work = Path(tempfile.mkdtemp(prefix="tta_"))
    clock, saver = EpochClock(), EveryEpoch(work / "epochs")
    try:
        start = time.perf_counter()
        run_dir, results = train(config, root, runs_dir=runs_dir or work, progress=False,
                                 n_boot=1000 if runs_dir else 200, callbacks=[clock, saver])
        total = time.perf_counter() - start
        data = PTBXL(root, config.data.task, config.data.sampling_rate)
        test_auc = fold10_per_epoch(config, data, work / "epochs", len(clock.epochs))
        info = __import__("json").loads((run_dir / "run.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed, best_val, held = 0.0, -1.0, float("nan")
    rows = []
    for e, (epoch, auc10) in enumerate(zip(clock.epochs, test_auc), 1):
        elapsed += epoch["wall_s"]
        if epoch["val_macro_auc"] > best_val:  # what early stopping holds at this moment
            best_val, held = epoch["val_macro_auc"], auc10
        rows.append({"epoch": e, **{k: round(v, 2) for k, v in epoch.items() if k.endswith("_s")},
                     "val_macro_auc": round(epoch["val_macro_auc"], 4), "elapsed_s": round(elapsed, 1),
                     "test_macro_auc_epoch": round(auc10, 4), "test_macro_auc_selected": round(held, 4),
                     "val_macro_auc_selected": round(best_val, 4)})
    data_s = sum(r["data_s"] for r in rows)
    train_s = sum(r["wall_s"] for r in rows)
    final = results["test"]["macro_auc"]
    return {"config": str(config_path), "overrides": overrides, "name": config.name,
            "hardware": info.get("hardware"), "epochs": rows,
            "training_seconds": round(train_s, 1), "process_seconds_incl_setup_and_evaluation": round(total, 1),
            "data_loading_share": round(data_s / train_s, 3),
            "validation_share": round(sum(r["val_s"] for r in rows) / train_s, 3),
            "final_val_macro_auc": round(results["val"]["macro_auc"]["value"], 4),
            "final_test_macro_auc": round(final["value"], 4),
            "final_test_macro_auc_ci90": [round(final["low"], 4), round(final["high"], 4)],
            "meets_target": bool(final["value"] >= TARGET and train_s <= BUDGET_SECONDS)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("configs", nargs="+", type=Path, help="experiment YAMLs to train, one after another")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for every config")
    p.add_argument("--data", type=Path, help="PTB-XL folder (default $ECGNET_DATA)")
    p.add_argument("--runs-dir", type=Path, help="keep the runs there (default: a temporary folder)")
    p.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/time_to_accuracy.json)")
    args = p.parse_args(argv)
    root = data_root(args.data)
    runs = [bench(c if c.is_absolute() or c.exists() else REPO_ROOT / c, root, args.overrides, args.runs_dir)
            for c in args.configs]
    for r in runs:
        print_table(["epoch", "elapsed s", "data s", "compute s", "val s", "fold-9 AUC", "fold-10 (selected)"],
                    [[e["epoch"], e["elapsed_s"], e["data_s"], e["compute_s"], e["val_s"], e["val_macro_auc"],
                      e["test_macro_auc_selected"]] for e in r["epochs"]], title=f"{r['name']} ({r['config']})")
        print(f"{r['name']}: {r['training_seconds'] / 60:.1f} min of training, data loading "
              f"{r['data_loading_share']:.0%}, validation {r['validation_share']:.0%}; fold-10 macro AUC "
              f"{r['final_test_macro_auc']:.4f} {r['final_test_macro_auc_ci90']} — target ≥ {TARGET} within "
              f"{BUDGET_SECONDS // 60} min: {'met' if r['meets_target'] else 'not met'}")
    figures = {"target_test_macro_auc": TARGET, "budget_seconds": BUDGET_SECONDS, "runs": runs}
    write_results("time_to_accuracy", figures, {k: str(v) for k, v in vars(args).items()}, args.output)
    plot(runs, (args.output or REPO_ROOT / "benchmarks/results/time_to_accuracy.json").with_suffix(".png"))
    return figures


def plot(runs: list[dict], path: Path) -> None:
    from ecgnet.plotting import plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in runs:
        t = np.array([e["elapsed_s"] for e in r["epochs"]]) / 60
        line, = ax.plot(t, [e["test_macro_auc_selected"] for e in r["epochs"]], marker="o", ms=3,
                        label=f"{r['name']}: fold 10 (selected on fold 9)")
        ax.plot(t, [e["val_macro_auc"] for e in r["epochs"]], ls=":", color=line.get_color(),
                label=f"{r['name']}: fold 9")
    ax.axhline(TARGET, color="grey", lw=0.8)
    ax.axvline(BUDGET_SECONDS / 60, color="grey", lw=0.8)
    ax.set(xlabel="training wall-clock (min, 2 CPU cores)", ylabel="macro AUC", ylim=(0.90, 0.945),
           title="Time to accuracy (superdiagnostic)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
