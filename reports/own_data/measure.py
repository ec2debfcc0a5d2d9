"""Own-data measurements on the shared Challenge samples (../shared/external/cinc2021-samples: 122 real
records of five other databases; the 92 with a PTB-XL superclass among their SNOMED CT codes, labels
from the package's mapping): zero-shot (the bundled default, long_time) vs fine-tuning (head only,
full) vs the same architecture from scratch, by 5-fold patient-grouped stratified cross-validation and by
leave-one-source-out; a learning curve; and how much PTB-XL fold 10 the fine-tuned models forget.

These records only *measure*: every setting here is a shipped default chosen on PTB-XL
(reports/own_data/choose_defaults.py, shift.py) or the architecture's own; nothing is tuned on them.

    .venv/bin/ecgnet manifest ../shared/external/cinc2021-samples -o reports/own_data/cinc2021_samples.csv
    nice -n 5 .venv/bin/python -m reports.own_data.measure strategies   # 5-fold and leave-one-source-out
    nice -n 5 .venv/bin/python -m reports.own_data.measure default      # the same for today's default
    nice -n 5 .venv/bin/python -m reports.own_data.measure curve        # learning curve, head-only
    nice -n 5 .venv/bin/python -m reports.own_data.measure curve-default  # learning curve, today's default
    nice -n 5 .venv/bin/python -m reports.own_data.measure forget       # final models, PTB-XL fold 10
    .venv/bin/python -m reports.own_data.measure perfold                # zero-shot within each held-out fold
    .venv/bin/python -m reports.own_data.measure rescore                # zero-shot again with the present code
    .venv/bin/python -m reports.own_data.measure render                 # results.md from results.json
"""

from __future__ import annotations

import json
import tempfile

import numpy as np

from ecgnet.data.collections import read_manifest
from ecgnet.training.collection import cross_validate, fit_once, paired_vs, predict, score
from ecgnet.training.finetune import finetune_config, load_source

from reports import usage
from reports.own_data.common import (OUT, RUNS, THREADS, plain, provenance_block, ptbxl_fold10_auc, save,
                                     scratch_config)

SEED = 0
MANIFEST = OUT / "cinc2021_samples.csv"
RESULTS = OUT / "results.json"
N_BOOT = 1000


def load():
    source = load_source("long_time")
    collection = read_manifest(MANIFEST, skip_bad=True).load_signals(100, progress=False, skip_bad=True)
    return source, collection


def configs(source):
    extra = [f"training.threads={THREADS}"]
    return {"head": ("head", finetune_config(source, None, [*extra, "name=cinc_head"], "head")),
            "full": ("full", finetune_config(source, None, [*extra, "name=cinc_full"], "full")),
            "scratch": (None, scratch_config(source.config, "cinc_scratch",
                                             {"training.threads": THREADS, "training.lr": 0.01}))}


_READ: dict = {}  # results.json as this process read it: what save_results compares with


def results() -> dict:
    global _READ
    with _lock():  # not half-written by a measurement saving beside this one
        _READ = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    return json.loads(json.dumps(_READ))  # a copy the caller changes


def _lock():
    from filelock import FileLock

    return FileLock(f"{tempfile.gettempdir()}/ecgnet_own_data_results.lock")


def save_results(out: dict) -> None:
    """The entries this process changed, written into results.json as it is now: two measurements run side by side
    (``default`` beside ``strategies``) each kept the other's old entry, and the last to finish undid the first."""
    with _lock():
        now = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        changed = {k: v for k, v in json.loads(json.dumps(out, default=plain)).items() if _READ.get(k) != v}
        save(RESULTS.name, {**now, **changed})


def summarise(cv: dict, y, zero, classes) -> dict:
    vs = cv.get("vs_zero_shot") or paired_vs(y, cv["oof"], zero, classes, N_BOOT, SEED)
    return {"pooled": cv["pooled"], "vs_zero_shot": vs,
            "per_fold": {k: {kk: v[kk] for kk in ("n_records", "macro_auc", "train_records",
                                                   "inner_validation_records", "epochs_run", "best_epoch")}
                         for k, v in cv["per_fold"].items()}}


def strategies() -> None:
    source, c = load()
    out = results()
    out.update({"provenance_strategies": provenance_block(SEED), "records": len(c),
                "skipped": [list(s) for s in c.skipped], "classes": c.classes,
                "counts": c.counts().to_dict()})
    for protocol, (k, leave) in {"5-fold": (5, None), "leave-one-source-out": (None, "source")}.items():
        entry = out.setdefault(protocol, {})
        zero = None
        for name, (mode, config) in configs(source).items():
            cv = cross_validate(c, config, RUNS / protocol / name, source if mode else None, mode, k, leave, 0.2,
                                False, N_BOOT, print)
            if zero is None and "zero_shot_p" in cv:
                zero = cv["zero_shot_p"]
                entry["zero-shot"] = {"pooled": cv["zero_shot"]}
            entry[name] = summarise(cv, c.y, zero, c.classes)
            entry[name]["config"] = {"lr": config.training.lr, "epochs": config.training.epochs,
                                     "batch_size": config.training.batch_size, "patience": config.training.patience}
            print(protocol, name, cv["pooled"]["macro_auc"], flush=True)
            save_results(out)


def default() -> None:
    """The CLI's default fine-tune for these records (the model's own classes: full, lr 1e-3, chosen by
    ``shift.py`` after ``strategies`` was measured; the saved weights halfway back to the source's, chosen
    by ``interpolate.py``), by the same two protocols."""
    from ecgnet.training.finetune import default_mode

    source, c = load()
    out = results()
    mode = default_mode(source, c.classes)
    config = finetune_config(source, None, [f"training.threads={THREADS}", "name=cinc_default"], mode, classes=c.classes)
    entry = out["default"] = {"provenance": provenance_block(SEED), "mode": mode, "lr": config.training.lr,
                              "finetune_alpha": config.training.finetune_alpha}
    for protocol, (k, leave) in {"5-fold": (5, None), "leave-one-source-out": (None, "source")}.items():
        folds_dir = RUNS / protocol / f"default_{mode}_alpha{config.training.finetune_alpha}"
        cv = cross_validate(c, config, folds_dir, source, mode, k, leave, 0.2, False, N_BOOT, print)
        entry[protocol] = summarise(cv, c.y, cv["zero_shot_p"], c.classes)
        print(protocol, mode, config.training.lr, cv["pooled"]["macro_auc"], cv["vs_zero_shot"], flush=True)
    save_results(out)


def curve(default: bool = False) -> None:
    """The learning curve of head-only fine-tuning (the default when it was first measured) or, with
    ``default``, of today's default fine-tune (``learning_curve_default``)."""
    from ecgnet.training.finetune import default_mode

    source, c = load()
    out = results()
    key = "learning_curve_default" if default else "learning_curve"
    out[f"provenance_{'curve_default' if default else 'curve'}"] = provenance_block(SEED)
    if default:
        mode = default_mode(source, c.classes)
        config = finetune_config(source, None, [f"training.threads={THREADS}", "name=cinc_curve_default"], mode,
                                 classes=c.classes)
    else:
        mode, config = configs(source)["head"]
    entry = out[key] = {"mode": mode, "lr": config.training.lr, "finetune_alpha": config.training.finetune_alpha,
                        "protocol": "5-fold", "points": {}}
    entry["not_run"] = {"100": "every 5-fold training part holds about 73 of the 92 records: 'all' is the largest point"}
    for n in (20, 50, None):
        cv = cross_validate(c, config, RUNS / ("curve_default" if default else "curve") / str(n), source, mode, 5,
                            None, 0.2, False, N_BOOT, print, train_records=n)
        sizes = sorted({v["train_records"] + v["inner_validation_records"] for v in cv["per_fold"].values()})
        label = "all" if n is None else str(n)
        entry["points"][label] = {"records_per_fold": sizes, "pooled": cv["pooled"], "vs_zero_shot": cv["vs_zero_shot"]}
        print("curve", label, sizes, cv["pooled"]["macro_auc"]["value"], flush=True)
        save_results(out)


def forget() -> None:
    from ecgnet.training.collection import inner_split

    source, c = load()
    out = results()
    out["provenance_forget"] = provenance_block(SEED)
    entry = out.setdefault("forgetting", {})
    entry["zero-shot"] = {"ptbxl_fold10_macro_auc": ptbxl_fold10_auc(source.model, source.metadata_scaler,
                                                                      source.config, source.classes)}
    from ecgnet.training.finetune import default_mode

    val = inner_split(c.y, c.patients, 0.2, SEED)
    mode = default_mode(source, c.classes)
    strategies = {**{k: v for k, v in configs(source).items() if k in ("head", "full")},
                  "default": (mode, finetune_config(source, None, [f"training.threads={THREADS}"], mode, classes=c.classes))}
    for name, (mode, config) in strategies.items():
        run_dir, model, data, info = fit_once(c, {"train": np.flatnonzero(~val), "val": np.flatnonzero(val)},
                                              config.model_copy(update={"name": f"final_{name}"}), RUNS / "final",
                                              source, mode, False, 200)
        entry[name] = {"ptbxl_fold10_macro_auc": ptbxl_fold10_auc(model, data.metadata_scaler, config, c.classes),
                       "epochs_run": info.get("epochs_run"), "best_epoch": info.get("best_epoch"),
                       "train_records": int((~val).sum()), "inner_validation_records": int(val.sum()),
                       "finetune": info.get("finetune")}
        print("forget", name, entry[name]["ptbxl_fold10_macro_auc"], flush=True)
        save_results(out)


def perfold() -> None:
    """Zero-shot AUC within each held-out fold (the folds of ``strategies``: same seed, same rule), beside
    the fine-tuned folds': pooling predictions of different fold models also pools their calibration
    offsets, so the per-fold figures are the like-for-like comparison."""
    from ecgnet.training.collection import cv_folds, predict

    source, c = load()
    out = results()
    order = [source.classes.index(k) for k in c.classes]
    zero = predict(source.model, c, np.arange(len(c)), source.metadata_scaler, source.config)[:, order]
    for protocol, (k, leave) in {"5-fold": (5, None), "leave-one-source-out": (None, "source")}.items():
        fold_of, names = cv_folds(c, k, leave, SEED)
        table = {}
        for f, name in sorted(names.items()):
            rows = fold_of == f
            table[name] = {"zero-shot": score(c.y[rows], zero[rows], c.classes, None, N_BOOT, SEED)["macro_auc"]}
            for strategy in ("head", "full", "scratch"):
                table[name][strategy] = out[protocol][strategy]["per_fold"][name]["macro_auc"]
        means = {s: float(np.mean([t[s]["value"] for t in table.values() if t[s]])) for s in next(iter(table.values()))}
        out[protocol]["per_fold_table"] = table
        out[protocol]["mean_per_fold_macro_auc"] = means
        print(protocol, means)
    save_results(out)


def rescore() -> None:
    """Zero-shot again with the present code (scored as cross-validation scores), beside the
    figure the strategies measured: a code change that moves the signals (2026-12-07: resampling no longer pads
    a record's ends with zeros) is checked against the committed measurement without retraining."""
    source, c = load()
    out = results()
    order = [source.classes.index(k) for k in c.classes]
    zero = predict(source.model, c, np.arange(len(c)), source.metadata_scaler, source.config)[:, order]
    before = out["5-fold"]["zero-shot"]["pooled"]["macro_auc"]
    out["zero_shot_rescored"] = {"provenance": provenance_block(SEED),
                                 "macro_auc": score(c.y, zero, c.classes, None, N_BOOT, SEED)["macro_auc"],
                                 "measured_before": before}
    print("zero-shot now", out["zero_shot_rescored"]["macro_auc"], "before", before)
    save_results(out)


if __name__ == "__main__":
    usage.command(__doc__, {"strategies": strategies, "default": default, "curve": curve,
                            "curve-default": lambda: curve(default=True), "forget": forget, "perfold": perfold,
                            "rescore": rescore,
                            "render": lambda: __import__("reports.own_data.render", fromlist=["main"]).main()})
