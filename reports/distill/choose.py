"""Choose the distilled student on fold 9 and benchmark it against the teacher and long_time.

Reads every committed ``runs/distill_*`` run of the superclasses, ranks them by fold-9 macro AUC (their
``val/predictions.csv``: the windowed evaluation, the same for every run), prints the ranking with the
fold-10 figures beside it (reported, never used to choose), and runs ``benchmarks.bench_distill`` with
all of them as students.

    ECGNET_DATA=... .venv/bin/python -m reports.distill.choose [--no-latency] [--no-transfer]
"""

from __future__ import annotations

import sys

import yaml

from benchmarks import bench_distill
from benchmarks._common import REPO_ROOT
from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M


def main(argv: list[str]) -> None:
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), "superdiagnostic")
    y9, y10 = (labels.y[labels.split(s)] for s in ("val", "test"))
    ranked = []
    for run in sorted((REPO_ROOT / "runs").glob("distill_*")):
        if not (run / "test" / "predictions.csv").is_file() or (run / "INCOMPLETE").exists():
            continue
        if yaml.safe_load((run / "config.yaml").read_text())["data"]["task"] == "superdiagnostic":  # not all-71
            ranked.append((M.macro_auc(y9, bench_distill.fold_predictions(run, labels, "val")),
                           M.macro_auc(y10, bench_distill.fold_predictions(run, labels, "test")), run.name))
    if not ranked:
        raise SystemExit("no finished runs/distill_* run: train them first (reports/distill/run_grid.sh)")
    ranked.sort(key=lambda r: (-r[0], r[2]))  # by fold 9 alone (a tie by name, never by fold 10)
    print("| student | fold-9 macro AUC (chooses) | fold-10 macro AUC (reported) |\n|---|---|---|")
    for f9, f10, name in ranked:
        print(f"| `{name}` | {f9:.4f} | {f10:.4f} |")
    print(f"\nChosen by fold 9: `{ranked[0][2]}`\n", flush=True)
    bench_distill.main(["--students", *(f"runs/{name}" for _, _, name in ranked), *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
