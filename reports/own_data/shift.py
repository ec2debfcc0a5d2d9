"""Choosing ``--mode`` where fine-tuning has something to fix: a site the source model never saw.

``choose_defaults.py`` drew its sites from PTB-XL fold 9, whose hospital, carts and cardiologists the shipped
models were trained on: zero-shot is already at home there. Here PTB-XL's recording site 2 (its records
come from the CS-12 and AT-60 3 carts and were validated by one cardiologist; ``site``, ``device`` and
``validated_by`` in ``ptbxl_database.csv``) is held out whole. A source model with ``fast_time``'s config
is trained on the other sites' records of folds 1–8 (the other sites' fold 9 validates):

    ecgnet manifest $ECGNET_DATA -o $ECGNET_CACHE/ptbxl.csv
    .venv/bin/python -m reports.own_data.shift write      # → $ECGNET_CACHE/ptbxl_without_site2.csv
    ecgnet train -c configs/fast_time.yaml --manifest $ECGNET_CACHE/ptbxl_without_site2.csv \\
        --set name=fast_time_without_site2 --runs-dir runs
    nice -n 5 .venv/bin/python -m reports.own_data.shift  # → reports/own_data/shift.json
    nice -n 5 .venv/bin/python -m reports.own_data.shift narrow  # the four narrow-label sites (interpolate.py)

1. Is site 2 foreign to it? Zero-shot macro AUC on site 2's and the other sites' fold-10 records (both
   unseen; measured, chooses nothing), beside ``fast_time`` (the same config trained on every site).
2. Simulated sites: N records drawn from site 2's fold-9 records (two draws per size). Each strategy —
   head (lr 1e-2), full (lr 1e-3, 3e-3) — is scored by 5-fold patient-grouped cross-validation, pooled
   out-of-fold macro AUC, paired bootstrap against zero-shot on the same records. Fold 10 is not used.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.data.collections import ptbxl_collection
from ecgnet.data.ptbxl import data_root, read_database
from ecgnet.data.signals import cache_dir
from ecgnet.evaluation import metrics as M
from ecgnet.training.collection import cross_validate, predict
from ecgnet.training.finetune import finetune_config, load_source

from reports import usage
from reports.own_data.common import REPO, RUNS, THREADS, provenance_block, save
from reports.own_data.choose_defaults import STRATEGIES, mean_ranks

SEED = 0
SITE = 2
SIZES = (50, 160, 400)
DRAWS = 2
SOURCE = REPO / "runs" / "fast_time_without_site2"  # committed (trained with --runs-dir scratch/shift/runs)
NARROW = {"CD": ("CLBBB", "CRBBB"), "HYP": ("LVH",), "MI": ("AMI",), "NORM": ("NORM",), "STTC": ("ISCA", "ISCI", "ISC_")}
NARROW_SIZES = (160, 400)


def site_of(records) -> np.ndarray:
    database = read_database(data_root(None))
    return database.loc[np.asarray(records).astype(int), "site"].to_numpy()


def write(ptbxl_manifest: Path | None = None, out: Path | None = None) -> Path:
    """The PTB-XL manifest (``ecgnet manifest``) without site 2's records."""
    ptbxl_manifest = Path(ptbxl_manifest or cache_dir() / "ptbxl.csv")
    out = Path(out or cache_dir() / "ptbxl_without_site2.csv")
    table = pd.read_csv(ptbxl_manifest, dtype=str, keep_default_na=False)
    sites = site_of([Path(r).name.split("_")[0] for r in table["record"]])
    table[sites != SITE].to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL)
    print(f"{int((sites != SITE).sum())} records kept, {int((sites == SITE).sum())} of site {SITE} left out → {out}")
    return out


def foreignness(native, source) -> dict:
    """Zero-shot fold-10 macro AUC on site 2 and on the other sites, for the source and ``fast_time``."""
    test = native.subset(np.flatnonzero(native.folds == 10)).load_signals(100, progress=False)
    sites = site_of(test.records)
    twin = load_source(REPO / "runs" / "fast_time")
    out = {}
    for label, s in (("fast_time_without_site2", source), ("fast_time (every site)", twin)):
        order = [s.classes.index(c) for c in test.classes]
        p = predict(s.model, test, np.arange(len(test)), s.metadata_scaler, s.config)[:, order]
        out[label] = {name: dict(zip(("value", "low", "high"), M.bootstrap_ci(test.y[rows], p[rows], seed=SEED)))
                      for name, rows in ((f"site {SITE}", sites == SITE), ("other sites", sites != SITE))}
        print(label, {k: round(v["value"], 4) for k, v in out[label].items()}, flush=True)
    return out


def simulated_sites():
    """(key, short name, collection) of the six simulated sites: N of site 2's fold-9 records, two draws."""
    native = ptbxl_collection(None, "superdiagnostic")
    pool = np.flatnonzero((native.folds == 9) & (site_of(native.records) == SITE))
    for n in SIZES:
        for draw in range(DRAWS):
            rows = np.sort(np.random.default_rng([SEED, n, draw]).choice(pool, n, replace=False))
            collection = replace(native.subset(rows), folds=None, name=f"ptbxl_site{SITE}_{n}_{draw}")
            yield f"site {SITE}, {n} records, draw {draw}", f"{n}_{draw}", collection.load_signals(100, progress=False)


def narrow_sites():
    """(key, short name, collection) of four sites with their own label conventions: site 2's fold-9 records
    (other draws) whose five classes are narrower, built from PTB-XL's subclass statements (:data:`NARROW`)."""
    native = ptbxl_collection(None, "superdiagnostic")
    sub = ptbxl_collection(None, "subdiagnostic")
    assert np.array_equal(sub.records, native.records)
    narrow = np.stack([sub.y[:, [sub.classes.index(s) for s in NARROW[c]]].max(axis=1) for c in native.classes], axis=1)
    pool = np.flatnonzero((native.folds == 9) & (site_of(native.records) == SITE))
    for n in NARROW_SIZES:
        for draw in range(DRAWS):
            rows = np.sort(np.random.default_rng([SEED, n, draw, 1]).choice(pool, n, replace=False))
            collection = replace(native.subset(rows), folds=None, y=narrow[rows].astype(np.float32),
                                 name=f"ptbxl_site{SITE}_narrow_{n}_{draw}")
            yield (f"site {SITE}, narrow labels, {n} records, draw {draw}", f"narrow_{n}_{draw}",
                   collection.load_signals(100, progress=False))


def score_strategies(out: dict, sites, source, persist) -> None:
    """Each strategy's 5-fold CV on each site, into ``out`` (``persist()`` after each)."""
    for key, name, collection in sites:
        entry = out[key] = {"strategies": {}}
        for label, (mode, overrides) in STRATEGIES.items():
            config = finetune_config(source, None, [*overrides, f"training.threads={THREADS}",
                                                    f"name=shift_{name}_{mode}"], mode)
            cv = cross_validate(collection, config, RUNS / "shift" / config.name, source, mode, 5, None, 0.2,
                                False, 500, print)
            entry["zero_shot_macro_auc"] = cv["zero_shot"]["macro_auc"]
            entry["strategies"][label] = {"pooled_macro_auc": cv["pooled"]["macro_auc"],
                                          "vs_zero_shot": cv["vs_zero_shot"],
                                          "per_fold_epochs": {k: (v["epochs_run"], v["best_epoch"])
                                                              for k, v in cv["per_fold"].items()}}
            print(key, label, round(cv["pooled"]["macro_auc"]["value"], 4), "zero-shot",
                  round(cv["zero_shot"]["macro_auc"]["value"], 4), flush=True)
            persist()


def main() -> None:
    source = load_source(SOURCE)
    native = ptbxl_collection(None, "superdiagnostic")
    results = {"protocol": __doc__, **provenance_block(SEED), "source": str(SOURCE.name),
               "foreignness_fold10": foreignness(native, source), "sites": {}}
    save("shift.json", results)
    score_strategies(results["sites"], simulated_sites(), source, lambda: save("shift.json", results))
    results["mean_rank"] = mean_ranks(results["sites"])
    results["best"] = min(results["mean_rank"], key=results["mean_rank"].get)
    save("shift.json", results)
    print("best:", results["best"], results["mean_rank"])


def narrow() -> None:
    """The same strategies on the four narrow-label sites (added after interpolate.py found fine-tuning pays
    there): does the mode and learning rate chosen on the six sites hold where the labels differ?"""
    import json

    from reports.own_data.common import OUT

    results = json.loads((OUT / "shift.json").read_text())
    check = {"protocol": narrow.__doc__, **provenance_block(SEED), "sites": {}}
    results["narrow_labels"] = check
    score_strategies(check["sites"], narrow_sites(), load_source(SOURCE), lambda: save("shift.json", results))
    check["mean_rank"] = mean_ranks(check["sites"])
    check["mean_rank_all_ten"] = mean_ranks({**results["sites"], **check["sites"]})
    save("shift.json", results)
    print("narrow-label sites:", check["mean_rank"], "all ten:", check["mean_rank_all_ten"])


if __name__ == "__main__":
    usage.command(__doc__, {"write": write, "narrow": narrow}, main)
