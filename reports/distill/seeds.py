"""Does distillation help across seeds? The default student's recipe (``configs/distill_long_time.yaml``) and
``long_time`` (no teacher), seeds 0, 1 and 2: fold-9 and fold-10 macro AUC of each run, the paired fold-10
difference per seed, and the difference of the three-seed means (the mean of the runs' probabilities is not
taken: each seed is one model a user could ship). Reads the runs' committed predictions.

    ECGNET_DATA=... .venv/bin/python -m reports.distill.seeds   # → reports/distill/seeds.json
"""

from __future__ import annotations

import numpy as np

from benchmarks import bench_distill
from benchmarks._common import REPO_ROOT, print_table, write_results
from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M
from reports import usage

PAIRS = {0: ("distill_long_time", "long_time"), 1: ("distill_long_time_seed1", "long_time_seed1"),
         2: ("distill_long_time_seed2", "long_time_seed2")}


def main() -> dict:
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), "superdiagnostic")
    y9, y10 = (labels.y[labels.split(s)] for s in ("val", "test"))
    figures, rows = {}, []
    for seed, (student, base) in PAIRS.items():
        p = {r: {s: bench_distill.fold_predictions(REPO_ROOT / "runs" / r, labels, s) for s in ("val", "test")}
             for r in (student, base)}
        diff = M.paired_bootstrap(y10, p[student]["test"], p[base]["test"], seed=0)
        figures[str(seed)] = {"student": student, "baseline": base,
                              "fold9": {r: M.macro_auc(y9, p[r]["val"]) for r in (student, base)},
                              "fold10": {r: M.macro_auc(y10, p[r]["test"]) for r in (student, base)},
                              "fold10_student_minus_baseline": diff}
        f = figures[str(seed)]
        rows.append([seed, f"{f['fold9'][student]:.4f}", f"{f['fold9'][base]:.4f}", f"{f['fold10'][student]:.4f}",
                     f"{f['fold10'][base]:.4f}", f"{diff['diff']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"])
    def mean_of(role: int) -> dict:  # 0: the students, 1: the baselines
        return {k: float(np.mean([figures[s][k][PAIRS[int(s)][role]] for s in figures])) for k in ("fold9", "fold10")}

    mean, mean_base = mean_of(0), mean_of(1)
    figures["mean"] = {"student": mean, "baseline": mean_base,
                       "fold10_student_minus_baseline": mean["fold10"] - mean_base["fold10"]}
    rows.append(["mean", f"{mean['fold9']:.4f}", f"{mean_base['fold9']:.4f}", f"{mean['fold10']:.4f}",
                 f"{mean_base['fold10']:.4f}", f"{mean['fold10'] - mean_base['fold10']:+.4f}"])
    print_table(["seed", "student fold 9", "long_time fold 9", "student fold 10", "long_time fold 10",
                 "Δ fold 10 [90 % paired CI]"], rows, "Distilled vs not, by seed")
    write_results("seeds", figures, {"n_boot": 1000, "pairs": PAIRS},
                  path=REPO_ROOT / "reports" / "distill" / "seeds.json")
    return figures


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
