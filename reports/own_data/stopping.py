"""When to stop fine-tuning: does early stopping on the inner split stop before the schedule has done its work?

The fine-tuning schedule (``finetune.SMALL_DATA``) is 30 epochs of AdamW under a one-cycle learning rate —
the rate climbs from lr/25 to lr over the first 30 % of the steps (epochs 1–9), then anneals to ~0 — with
early stopping after 8 epochs without a better inner-validation macro AUC. The fold runs of
``interpolate.py`` (ten simulated sites) and of the Challenge samples mostly stopped at epoch 9–11 with their
best epoch among the first few: patience 8 runs out just as the rate peaks, so the annealing half of the
cycle — where a one-cycle run usually does best — is never reached, and the saved model is the one from the
epochs of a tiny rate, close to the source. Two schedules without early stopping are compared with the
default (the checkpoint is still the epoch with the best inner-validation AUC; only the stopping changes):

- ``patience 8`` — the default: 30 epochs, patience 8;
- ``no early stop, 30 epochs`` — patience 30: the whole cycle.

(A third schedule, 15 epochs without early stopping, was dropped after the first site for time — ~4 min per
site and schedule on the loaded 2-core machine — before any of its figures were read.)

Choosing (PTB-XL only): the ten sites of ``interpolate.py`` (site 2 held out of ``runs/fast_time_without_site2``;
50/160/400 records, and 160/400 with narrower label definitions; two draws each), 5-fold patient-grouped
cross-validation with the CLI's default fine-tune (full, lr 1e-3), pooled out-of-fold macro AUC at the default
interpolation α = 0.5 (every α is recorded); the schedule with the best mean rank over the ten sites is
chosen. Measured after the choice: the Challenge samples, 5-fold and leave-one-source-out.

    OWN_DATA_THREADS=2 nice -n 5 .venv/bin/python -m reports.own_data.stopping      # → stopping.json

The default's fold runs are ``interpolate.py``'s (reused from $OWN_DATA_RUNS when present, same config).
"""

from __future__ import annotations


import numpy as np

from reports import usage
from reports.own_data.choose_defaults import mean_ranks
from reports.own_data.common import RUNS, provenance_block, save
from reports.own_data.interpolate import PURE, SEED, cv_by_alpha

DEFAULT = "patience 8"
SCHEDULES = {DEFAULT: [], "no early stop, 30 epochs": ["training.patience=30"]}
ALPHA = "0.5"  # the default interpolation (finetune.KEPT_HEAD_ALPHA)


def run_dir(schedule: str, name: str):
    """The default reuses interpolate.py's fold runs; the others get their own."""
    if schedule == DEFAULT:
        return RUNS / "interpolate" / f"interp_{name}", f"interp_{name}"
    return RUNS / "stopping" / f"stop_p30_{name}", f"stop_p30_{name}"


def sites() -> dict:
    from ecgnet.training.finetune import default_mode, finetune_config, load_source

    from reports.own_data.shift import SOURCE, narrow_sites, simulated_sites

    source = load_source(SOURCE)
    out = {}
    for key, name, collection in [*simulated_sites(), *narrow_sites()]:
        out[key] = {}
        for schedule, overrides in SCHEDULES.items():
            folder, run_name = run_dir(schedule, name)
            config = finetune_config(source, None, [*PURE, *overrides, f"name={run_name}"],
                                     default_mode(source, collection.classes), classes=collection.classes)
            print(key, "|", schedule, flush=True)
            out[key][schedule] = cv_by_alpha(collection, source, config, folder, 5, None)
    return out


def challenge(schedule: str) -> dict:
    from ecgnet.training.finetune import default_mode, finetune_config

    from reports.own_data.measure import load

    source, collection = load()
    folder_name = "default" if schedule == DEFAULT else "stopping_p30"
    config = finetune_config(source, None, [*PURE, *SCHEDULES[schedule], "name=cinc_default"],
                             default_mode(source, collection.classes), classes=collection.classes)
    out = {}
    for protocol, (k, leave) in {"5-fold": (5, None), "leave-one-source-out": (None, "source")}.items():
        print(protocol, "|", schedule, flush=True)
        out[protocol] = cv_by_alpha(collection, source, config, RUNS / protocol / folder_name, k, leave)
    return out


def main() -> None:
    results = {"protocol": __doc__, **provenance_block(SEED), "schedules": SCHEDULES, "alpha": ALPHA}
    results["sites"] = sites()
    save("stopping.json", results)
    at_alpha = {k: {"strategies": {s: v[s]["alphas"][ALPHA] for s in SCHEDULES}} for k, v in results["sites"].items()}
    results["mean_rank"] = mean_ranks(at_alpha)
    results["mean_pooled_macro_auc"] = {s: float(np.mean([v[s]["alphas"][ALPHA]["pooled_macro_auc"]["value"]
                                                          for v in results["sites"].values()])) for s in SCHEDULES}
    results["chosen"] = min(results["mean_rank"], key=results["mean_rank"].get)
    print("chosen:", results["chosen"], results["mean_rank"], results["mean_pooled_macro_auc"], flush=True)
    save("stopping.json", results)
    results["challenge"] = {s: challenge(s) for s in dict.fromkeys([DEFAULT, results["chosen"]])}
    save("stopping.json", results)


if __name__ == "__main__":
    usage.command(__doc__, {"sites": lambda: print(sites())}, main)
