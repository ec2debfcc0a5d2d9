"""Lever "selected ensemble" (issue 9): greedy forward ensemble selection with replacement (Caruana et al.
2004, "Ensemble selection from libraries of models"), on fold 9 only. The library is every committed
superdiagnostic run trained by gradient on the signal (not the late_fusion ensembles, not the
metadata-only MLP). Starting from the empty ensemble, each step adds the candidate (repeats allowed)
whose inclusion gives the highest fold-9 macro AUC of the mean of the probabilities (ties: the first
name alphabetically); 25 steps, then the step with the best fold-9 AUC (ties: fewer steps) is kept. No
sorted top-k initialisation (one variant, fixed in advance). Fold 10 is only reported: macro AUC with
its 90 % bootstrap interval and paired-bootstrap differences (1,000 resamples) against ensemble_all and
the best single candidate by fold 9. late_fusion has no member weights, so configs/ensemble_greedy.yaml
lists the distinct members once; their unweighted mean is reported too.

    ECGNET_DATA=... .venv/bin/python -m reports.levers.greedy_ensemble > reports/levers/greedy_ensemble.md
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from ecgnet.evaluation import metrics as M
from reports import usage
from reports.committed import on_ptbxl_folds, predictions, task_labels

STEPS = 25
BASELINE = "ensemble_all"


def candidates() -> list[str]:
    """Superdiagnostic runs trained on the signal of PTB-XL's folds: not late_fusion ensembles, not the
    metadata-only MLP, not runs of a manifest (scored on other records), not distilled students (taught by
    a teacher — this selection's own ensemble_greedy — they came after it and would select their teacher's
    outputs back into it)."""
    out = []
    for info in sorted(Path("runs").glob("*/run.json")):
        run = info.parent.name
        config = yaml.safe_load((info.parent / "config.yaml").read_text())
        model = config["model"]["name"]
        described = json.loads(info.read_text())
        if described["task"] == "superdiagnostic" and model not in ("late_fusion", "metadata_mlp") \
                and on_ptbxl_folds(described) and not (config.get("training") or {}).get("distill_teacher"):
            out.append(run)
    return out


def device(info: dict) -> str:
    """Where a run trained: a lent GPU, or the 2 CPU cores (runs from before run.json named it)."""
    return "GPU (H200)" if info.get("hardware", {}).get("accelerator") == "cuda" else "CPU"


def greedy(p: dict, y: np.ndarray, steps: int) -> list[tuple[str, float]]:
    """[(added run, fold-9 macro AUC of the ensemble after adding it)] for each step."""
    total, n, path = 0, 0, []
    for _ in range(steps):
        scores = {run: M.macro_auc(y, (total + q) / (n + 1)) for run, q in p.items()}
        best = max(scores, key=lambda r: scores[r])  # first maximum in the (alphabetical) dict order
        total, n = total + p[best], n + 1
        path.append((best, scores[best]))
    return path


def main() -> None:
    labels = task_labels()
    y = {s: labels.y[labels.split(s)] for s in ("val", "test")}
    runs = candidates()
    p = {s: {r: predictions(r, labels, s) for r in runs} for s in ("val", "test")}
    info = {r: json.loads(Path(f"runs/{r}/run.json").read_text()) for r in runs + [BASELINE]}
    auc9 = {r: M.macro_auc(y["val"], p["val"][r]) for r in runs}
    single = max(runs, key=lambda r: auc9[r])

    path = greedy(p["val"], y["val"], STEPS)
    keep = 1 + int(np.argmax([a for _, a in path]))  # first maximum: fewest steps among ties
    counts = Counter(r for r, _ in path[:keep])

    def mean(split, weights):
        return sum(w * p[split][r] for r, w in weights.items()) / sum(weights.values())

    def cost(members):
        return sum(info[r]["parameters"] for r in members), sum(info[r]["training_seconds"] for r in members)

    all_label = f"`{BASELINE}`: mean of its {len(info[BASELINE]['members'])} runs (committed predictions)"
    rows = {  # label: (members, fold-9 probabilities, fold-10 probabilities)
        f"best single by fold 9 (`{single}`)": ([single], p["val"][single], p["test"][single]),
        all_label: ([BASELINE], predictions(BASELINE, labels, "val"), predictions(BASELINE, labels, "test")),
        f"plain mean of all {len(runs)} candidates": (runs, mean("val", dict.fromkeys(runs, 1)),
                                                      mean("test", dict.fromkeys(runs, 1))),
        f"greedy selection, {keep} steps, weighted by counts": (list(counts), mean("val", counts),
                                                                 mean("test", counts)),
        f"greedy selection, its {len(counts)} distinct members unweighted (`configs/ensemble_greedy.yaml`)":
            (list(counts), mean("val", dict.fromkeys(counts, 1)), mean("test", dict.fromkeys(counts, 1))),
    }
    base_all = rows[all_label][2]

    print("# Greedy forward ensemble selection on fold 9 (superdiagnostic)\n")
    print(f"{usage.made_by()}, from the committed runs. "
          "Caruana et al. (2004) ensemble selection with replacement from the empty ensemble (no sorted "
          f"initialisation), {STEPS} steps, the step count with the best fold-9 macro AUC kept (ties: fewer). "
          f"Everything is chosen on fold 9 ({len(y['val']):,} records); fold 10 ({len(y['test']):,} records) is "
          "only reported. Note that fold 9 also picked each member's checkpoint, so fold-9 scores are slightly optimistic.\n")

    print(f"## Candidates ({len(runs)})\n")
    print("Every run under `runs/` with task superdiagnostic whose model is not `late_fusion` or "
          "`metadata_mlp`. Fold-9 macro AUC from its committed predictions; training minutes are run.json "
          "`training_seconds` (for the `simclr_` runs the fine-tuning only, without the pretraining).\n")
    print("| run | model | fold-9 macro AUC | parameters | training min | trained on |")
    print("|---|---|---|---|---|---|")
    for r in sorted(runs, key=lambda r: -auc9[r]):
        print(f"| `{r}` | {info[r]['model']} | {auc9[r]:.4f} | {info[r]['parameters']:,} | "
              f"{info[r]['training_seconds'] / 60:.0f} | {device(info[r])} |")

    print(f"\n## Selection path (fold 9)\n\nKept: the first {keep} steps (marked **).\n")
    print("| step | added run | fold-9 macro AUC of the ensemble | gain |")
    print("|---|---|---|---|")
    for i, (r, a) in enumerate(path, 1):
        mark, gain = "**" if i == keep else "", f"{a - path[i - 2][1]:+.5f}" if i > 1 else ""
        print(f"| {mark}{i}{mark} | `{r}` | {mark}{a:.5f}{mark} | {gain} |")

    flat = 1 + max(i for i in range(1, len(path)) if path[i][1] - path[i - 1][1] >= 2e-4)  # last real gain
    print(f"\nFrom step {flat + 1} on, each step moves the fold-9 AUC by less than 0.0002 (steps {flat + 1}–{keep}: "
          f"{path[keep - 1][1] - path[flat - 1][1]:+.5f} in all): the counts added there are fine adjustments "
          "on fold 9, not a difference fold 10 can be expected to share.")
    print("\n## Selected members\n")
    print(f"| member | count (weight = count / {keep}) | fold-9 macro AUC alone | parameters | training min | "
          "trained on |")
    print("|---|---|---|---|---|---|")
    for r, c in counts.most_common():
        print(f"| `{r}` | {c} | {auc9[r]:.4f} | {info[r]['parameters']:,} | {info[r]['training_seconds'] / 60:.0f} "
              f"| {device(info[r])} |")
    params, seconds = cost(counts)
    print(f"\nDistinct members: {len(counts)}; their parameters sum to {params:,}, their training times to "
          f"{seconds / 60:.0f} min (run.json `training_seconds`, summed epoch times; CPU and GPU minutes "
          "added as they are).\n")
    print("`late_fusion` (`src/ecgnet/models/fusion/late.py`) has no member weights: with `method: average` "
          "it takes the plain mean of its members. `configs/ensemble_greedy.yaml` therefore lists each "
          "distinct member once and reproduces the *unweighted* row below, not the count-weighted one.\n")

    print("## Fold 10\n")
    print("Macro AUC with its 90 % bootstrap interval; Δ: paired bootstrap on the same 1,000 resamples, 90 % "
          f"interval, against `{BASELINE}` and against the best single candidate by fold 9 (`{single}`).\n")
    print(f"| ensemble | members | fold-9 macro AUC | fold-10 macro AUC [90 % CI] | Δ vs `{BASELINE}` | "
          f"Δ vs `{single}` | parameters | training min |")
    print("|---" * 8 + "|")
    for label, (members, q9, q10) in rows.items():
        value, low, high = M.bootstrap_ci(y["test"], q10)
        deltas = []
        for ref in (base_all, p["test"][single]):
            d = M.paired_bootstrap(y["test"], q10, ref)
            deltas.append("—" if q10 is ref else f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
        n = len(info[BASELINE]["members"]) if members == [BASELINE] else len(members)
        params, seconds = cost(members)
        print(f"| {label} | {n} | {M.macro_auc(y['val'], q9):.4f} | {value:.4f} [{low:.4f}, {high:.4f}] | "
              f"{deltas[0]} | {deltas[1]} | {params:,} | {seconds / 60:.0f} |")
    with_derived(labels, y, p, rows[list(rows)[-1]][2])


def with_derived(labels, y: dict, p: dict, greedy_10: np.ndarray) -> None:
    """The same selection with one more candidate: the superclasses derived by noisy-OR from all_time's 71
    statement probabilities (derived_superclasses.py), which late_fusion cannot ship yet."""
    from reports.levers.derived_superclasses import derived

    from ecgnet.data.ptbxl import data_root, read_statements

    statements, name = read_statements(data_root(None)), "all_time (noisy-OR)"
    p = {s: {**p[s], name: derived(s, labels, statements)["noisy-OR"]} for s in ("val", "test")}
    path = greedy(p["val"], y["val"], STEPS)
    keep = 1 + int(np.argmax([a for _, a in path]))
    counts = Counter(r for r, _ in path[:keep])
    q = {s: sum(c * p[s][r] for r, c in counts.items()) / keep for s in ("val", "test")}
    value, low, high = M.bootstrap_ci(y["test"], q["test"])
    d = M.paired_bootstrap(y["test"], q["test"], greedy_10)
    print(f"\n## With the superclasses derived from `all_time` as a candidate\n\nThe same selection with `{name}` "
          f"added to the library: {keep} steps kept, counts {dict(counts.most_common())}. Fold 9 "
          f"{M.macro_auc(y['val'], q['val']):.4f}; fold 10 {value:.4f} [{low:.4f}, {high:.4f}], "
          f"Δ vs the shipped unweighted greedy ensemble {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]. "
          "Not shipped: `late_fusion` takes members of its own task only.")


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
