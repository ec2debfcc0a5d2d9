"""Calibration of committed superdiagnostic runs on fold 10: macro and per-class ECE and Brier score, and
one reliability figure per run (``reports/levers/figures/calibration_<run>.png``). Reads only committed
predictions and the PTB-XL labels.

    ECGNET_DATA=... .venv/bin/python -m reports.levers.calibration RUN [RUN ...] > reports/levers/calibration.md
"""

from pathlib import Path

from ecgnet.evaluation.calibration import calibration_summary, reliability_figure
from ecgnet.plotting import plt
from reports import usage
from reports.committed import predictions, task_labels

FIGURES = Path(__file__).parent / "figures"


def main(runs: list[str]) -> None:
    labels = task_labels()
    mask = labels.split("test")
    y, classes = labels.y[mask], labels.classes
    FIGURES.mkdir(exist_ok=True)
    print(f"# Calibration on fold 10 ({len(y):,} records)\n")
    print(f"{usage.made_by()}. "
          "ECE: 10 equal-width bins, weighted by records; Brier: mean squared error of the probability. "
          "Lower is better for both; AUC is unaffected by calibration.\n")
    print("| run | macro ECE | macro Brier | " + " | ".join(f"{c} ECE" for c in classes) + " |")
    print("|---" * (len(classes) + 3) + "|")
    for run in runs:
        p = predictions(run, labels)
        s = calibration_summary(y, p, classes)
        cells = [f"{s['macro_ece']:.3f}", f"{s['macro_brier']:.4f}"] + [f"{s['per_class'][c]['ece']:.3f}" for c in classes]
        print(f"| `{run}` | " + " | ".join(cells) + " |")
        fig = reliability_figure(y, p, classes, title=f"{run}: reliability on fold 10")
        fig.savefig(FIGURES / f"calibration_{run}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
    print("\nFigures: " + ", ".join(f"[{r}](figures/calibration_{r}.png)" for r in runs))


if __name__ == "__main__":
    main(usage.arguments(__doc__, 1, None))
