"""Choose the distilled student on fold 9 and benchmark it against the teacher and long_time.

Reads the six students of the grid (``run_grid.sh``: :data:`STUDENTS`), ranks them by fold-9 macro AUC
(their ``val/predictions.csv``: the windowed evaluation, the same for every run), prints the ranking with
the fold-10 figures beside it (reported, never used to choose), and runs ``benchmarks.bench_distill`` with
all of them as students.

    ECGNET_DATA=... .venv/bin/python -m reports.distill.choose [--no-latency] [--no-transfer]
"""

from __future__ import annotations

from benchmarks import bench_distill
from benchmarks._common import REPO_ROOT
from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M
from reports import usage

# The grid of run_grid.sh (α ∈ {0.5, 0.8} × T ∈ {1, 2} on window targets, record targets, 80 epochs) and
# nothing else: the choice and table of reports/distill/README.md were made among these six. The other
# runs/distill_* came after it and answer other questions, each reported on its own in the README (_seed1,
# _seed2: the default recipe on other seeds; _a08_t2_e80: a longer schedule for the one student still improving;
# distill_half, distill_half_unlabelled: half the labels, another experiment; *_all_time: the 71 statements).
# Ranking whatever runs/ holds would change the committed choice without changing the grid.
STUDENTS = ("distill_long_time", "distill_long_time_a08", "distill_long_time_t2", "distill_long_time_a08_t2",
            "distill_long_time_record", "distill_long_time_e80")


def students() -> list:
    """The grid's finished students (run folders), in :data:`STUDENTS` order."""
    runs = [REPO_ROOT / "runs" / name for name in STUDENTS]
    return [r for r in runs if (r / "test" / "predictions.csv").is_file() and not (r / "INCOMPLETE").exists()]


def main(argv: list[str]) -> None:
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), "superdiagnostic")
    y9, y10 = (labels.y[labels.split(s)] for s in ("val", "test"))
    ranked = []
    for run in students():
        ranked.append((M.macro_auc(y9, bench_distill.fold_predictions(run, labels, "val")),
                       M.macro_auc(y10, bench_distill.fold_predictions(run, labels, "test")), run.name))
    if not ranked:
        raise SystemExit("no finished student of the grid: train them first (reports/distill/run_grid.sh)")
    ranked.sort(key=lambda r: (-r[0], r[2]))  # by fold 9 alone (a tie by name, never by fold 10)
    print("| student | fold-9 macro AUC (chooses) | fold-10 macro AUC (reported) |\n|---|---|---|")
    for f9, f10, name in ranked:
        print(f"| `{name}` | {f9:.4f} | {f10:.4f} |")
    print(f"\nChosen by fold 9: `{ranked[0][2]}`\n", flush=True)
    bench_distill.main(["--students", *(f"runs/{name}" for _, _, name in ranked), *argv])


if __name__ == "__main__":
    main(usage.arguments(__doc__, options=("--no-latency", "--no-transfer")))
