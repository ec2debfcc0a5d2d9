"""Lever "label structure", second form: a model trained on all 71 statements (``runs/all_time``) scores
the 5 superclasses without being trained on them. A superclass's probability is derived from its
diagnostic statements' probabilities (``scp_statements.csv``: ``diagnostic_class``) by a rule fixed in
advance — noisy-OR, ``1 − Π(1 − p_s)``, the probability that at least one statement is present if
they were independent (max and sum are printed beside it). Then the derived scores are averaged with
the superdiagnostic time model trained with the same recipe (``baseline_time``, fp32, no EMA), a
two-model ensemble over label sets. Folds 9 and 10 are both printed; nothing is chosen on fold 10.

    ECGNET_DATA=... .venv/bin/python -m reports.levers.derived_superclasses > reports/levers/derived_superclasses.md
"""

import numpy as np

from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.evaluation import metrics as M
from reports import usage
from reports.committed import predictions

RULES = {"noisy-OR": lambda q: 1 - np.prod(1 - q, axis=1), "max": lambda q: q.max(axis=1),
         "sum": lambda q: q.sum(axis=1)}


def derived(split: str, labels, statements) -> dict:
    """Superclass scores of all_time on one split, by rule, in the labels' record order."""
    ids, p, classes = M.read_predictions(f"runs/all_time/{split}/predictions.csv")
    classes, row = list(classes), {int(e): i for i, e in enumerate(ids)}
    p = p[[row[int(e)] for e in labels.ecg_ids[labels.split(split)]]]
    members = [[classes.index(s) for s in statements.index[(statements.diagnostic == 1)
                                                           & (statements.diagnostic_class == c)] if s in classes]
               for c in labels.classes]
    return {name: np.stack([rule(p[:, m]) for m in members], axis=1) for name, rule in RULES.items()}


def main() -> None:
    root = data_root(None)
    statements = read_statements(root)
    labels = make_labels(read_database(root), statements, "superdiagnostic")
    print("# Superclasses derived from the 71-statement model (`all_time`)\n")
    print(f"{usage.made_by()}; "
          "macro AUC with 90 % bootstrap intervals (1,000 resamples); paired differences against "
          "`baseline_time` (same recipe, trained on the superclasses).\n")
    print("| scores | fold-9 macro AUC | fold-10 macro AUC | Δ vs `baseline_time`, fold 10 [90 % paired CI] |")
    print("|---|---|---|---|")
    for_split = {s: derived(s, labels, statements) for s in ("val", "test")}
    base = {s: predictions("baseline_time", labels, s) for s in ("val", "test")}
    y = {s: labels.y[labels.split(s)] for s in ("val", "test")}
    rows = {f"all_time, derived by {name}": {s: for_split[s][name] for s in ("val", "test")} for name in RULES}
    rows["baseline_time (trained on the superclasses)"] = base
    rows["mean of baseline_time and the noisy-OR scores"] = {s: (base[s] + for_split[s]["noisy-OR"]) / 2
                                                             for s in ("val", "test")}
    for label, p in rows.items():
        value, low, high = M.bootstrap_ci(y["test"], p["test"])
        d = M.paired_bootstrap(y["test"], p["test"], base["test"])
        diff = "—" if label.startswith("baseline_time") else f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
        print(f"| {label} | {M.macro_auc(y['val'], p['val']):.4f} | {value:.4f} [{low:.4f}, {high:.4f}] | {diff} |")


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
