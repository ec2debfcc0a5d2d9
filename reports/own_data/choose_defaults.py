"""Choosing the fine-tuning defaults (``--mode``, learning rate) on small sites drawn from PTB-XL —
never on the external records they are later measured on.

A simulated site: N records drawn at random from PTB-XL fold 9 (never trained on by the shipped
models; fold 10 untouched), labelled either with the shipped model's own classes (the superclasses:
the head is kept) or with other classes (the 5 most frequent diagnostic subclasses: a new head).
Each strategy is scored by 3-fold patient-grouped cross-validation, pooled out-of-fold macro AUC.

    nice -n 5 .venv/bin/python -m reports.own_data.choose_defaults > reports/own_data/choose_defaults.log
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ecgnet.data.collections import ptbxl_collection
from ecgnet.training.collection import cross_validate
from ecgnet.training.finetune import finetune_config, load_source

from reports import usage
from reports.own_data.common import RUNS, THREADS, provenance_block, save

SEED = 0
SIZES = (50, 200)
STRATEGIES = {"head, lr 1e-2": ("head", []), "full, lr 1e-3": ("full", ["training.lr=0.001"]),
              "full, lr 3e-3": ("full", ["training.lr=0.003"])}


def site(task: str, n: int, top: int | None = None):
    c = ptbxl_collection(None, task)
    c = c.subset(np.flatnonzero(c.folds == 9))
    if top is not None:  # the most frequent classes only
        keep = np.argsort(-c.y.sum(0))[:top]
        keep = sorted(keep)
        c = replace(c, classes=[c.classes[k] for k in keep], y=c.y[:, keep])
    rows = np.sort(np.random.default_rng(SEED).choice(len(c), n, replace=False))
    return replace(c.subset(rows), folds=None, name=f"ptbxl9_{task}_{n}")


def mean_ranks(sites: dict) -> dict[str, float]:
    """Each strategy's rank (1 = best pooled macro AUC) averaged over the sites (every site scores the same
    strategies, those of the first)."""
    labels = list(next(iter(sites.values()))["strategies"])
    ranks = {label: [] for label in labels}
    for s in sites.values():
        order = sorted(labels, key=lambda lab: -s["strategies"][lab]["pooled_macro_auc"]["value"])
        for r, lab in enumerate(order):
            ranks[lab].append(r + 1)
    return {lab: float(np.mean(r)) for lab, r in ranks.items()}


def main() -> None:
    source = load_source("long_time")
    results = {"protocol": __doc__, **provenance_block(SEED), "sites": {}}
    for task, top in (("superdiagnostic", None), ("subdiagnostic", 5)):
        for n in SIZES:
            collection = site(task, n, top).load_signals(100, progress=False)
            key = f"{task}{'' if top is None else f' top-{top}'}, {n} records"
            results["sites"][key] = {"classes": collection.classes, "strategies": {}}
            for label, (mode, overrides) in STRATEGIES.items():
                config = finetune_config(source, None, [*overrides, f"training.threads={THREADS}",
                                                        f"name=choose_{task}_{n}_{mode}"], mode)
                cv = cross_validate(collection, config, RUNS / "choose" / config.name, source, mode, 3, None, 0.2,
                                    False, 200, print)
                entry = {"pooled_macro_auc": cv["pooled"]["macro_auc"],
                         "per_fold_epochs": {k: (v["epochs_run"], v["best_epoch"]) for k, v in cv["per_fold"].items()}}
                if "zero_shot" in cv:
                    results["sites"][key]["zero_shot_macro_auc"] = cv["zero_shot"]["macro_auc"]
                results["sites"][key]["strategies"][label] = entry
                print(key, label, entry["pooled_macro_auc"]["value"], flush=True)
                save("choose_defaults.json", results)
    results["mean_rank"] = mean_ranks(results["sites"])
    results["chosen"] = min(results["mean_rank"], key=results["mean_rank"].get)
    save("choose_defaults.json", results)
    print("chosen:", results["chosen"], results["mean_rank"])


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
