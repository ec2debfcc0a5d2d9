"""How far a site's thresholds may move from the run's: ``ecgnet calibrate --shrinkage``, chosen on PTB-XL.

On the Challenge samples (``measure.py``) per-site Youden thresholds lowered held-out balanced accuracy: a
threshold fitted on a site's 4–31 records follows their noise. Shrinkage pulls it back toward the run's
fold-9 threshold, the site's weight being m / (m + s), m = the class's positives or negatives at the site,
whichever are fewer (:func:`ecgnet.evaluation.operating_points.shrink_toward`). s is chosen here, on a
site the model never saw, and only then measured on the Challenge samples.

The site: PTB-XL's recording site 2, held out whole from ``runs/fast_time_without_site2`` (its training
folds and its fold-9 validation, hence its thresholds, come from the other sites; see ``../shift.py``).
The model predicts site 2's records of folds 1–10 once (``site2_predictions.csv``, kept here).

1. Choosing (folds 1–9 only). Site 2 is close to the other sites (its fold-10 AUC is 0.006 below the
   all-site twin's), so sites of five kinds are drawn from it, four of them with a case mix of their own
   (a spectrum shift, as between a cardiology ward and a screening clinic): all of site 2, its AT-60 3 cart,
   patients aged ≥ 70, aged < 50, and women. For each kind and size N (25, 50, 100, 200, 400 records;
   sizes that leave fewer than 150 records to score on are skipped) 200 sites are drawn from the kind's
   fold 1–9 records. On each, per-class Youden thresholds are fitted and shrunk by each s; each profile is
   scored on every other fold 1–9 record of the kind whose patient is not in the draw: mean over classes
   of the balanced accuracy, minus that of the run's thresholds on the same records. The s with the
   highest mean gain over kinds, sizes and draws is chosen (s = ∞ is the run's thresholds, 0 the site's).
2. Reported: every candidate again, sites drawn as above but scored on the kind's fold-10 records (never
   used to choose).
3. Measured after the choice: the Challenge samples' per-site cross-fitting of ``measure.py`` (the same
   functions as ``ecgnet calibrate --source DB``) for s = 0, the chosen s, and the run's thresholds.

    .venv/bin/python -m reports.own_data.calibration.shrinkage

writes ``shrinkage.json`` and ``shrinkage.md`` beside this file (and ``site2_predictions.csv`` on its first run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.evaluation.operating_points import fit_thresholds
from ecgnet.evaluation.metrics import decision_rates
from ecgnet.fileio import write_json, write_text
from ecgnet.runs.origin import provenance


REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "reports" / "own_data" / "calibration"
SOURCE = REPO / "runs" / "fast_time_without_site2"
SITE, SEED, DRAWS, MIN_SCORED = 2, 0, 200, 150
SIZES = (25, 50, 100, 200, 400)
STRENGTHS = (0, 5, 10, 20, 40, 80, 160)  # plus "run" (s = ∞)
KINDS = {"all of site 2": lambda d: np.ones(len(d), bool), "AT-60 3 cart": lambda d: (d["device"] == "AT-60    3").to_numpy(),
         "aged 70 or more": lambda d: (d["age"] >= 70).to_numpy(), "aged under 50": lambda d: (d["age"] < 50).to_numpy(),
         "women": lambda d: (d["sex"] == 1).to_numpy()}


def site2_predictions() -> pd.DataFrame:
    """record, fold, patient, y_<C>, p_<C> for site 2's records of every fold, by the source model."""
    path = OUT / "site2_predictions.csv"
    if path.is_file():
        return with_case_mix(pd.read_csv(path, dtype={"record": str, "patient": str}))
    from ecgnet.data.collections import ptbxl_collection
    from ecgnet.training.collection import predict
    from ecgnet.training.finetune import load_source
    from reports.own_data.shift import site_of

    source = load_source(SOURCE)
    native = ptbxl_collection(None, "superdiagnostic")
    rows = np.flatnonzero(site_of(native.records) == SITE)
    site = native.subset(rows).load_signals(100, progress=True)
    order = [source.classes.index(c) for c in site.classes]
    p = predict(source.model, site, np.arange(len(site)), source.metadata_scaler, source.config)[:, order]
    table = pd.DataFrame({"record": site.records, "fold": site.folds, "patient": site.patients})
    for k, c in enumerate(site.classes):
        table[f"y_{c}"] = site.y[:, k]
    for k, c in enumerate(site.classes):
        table[f"p_{c}"] = p[:, k]
    table.to_csv(path, index=False, float_format="%.6f")
    return with_case_mix(table)


def with_case_mix(table: pd.DataFrame) -> pd.DataFrame:
    """The records' age, sex and cart from ptbxl_database.csv (what the site kinds select on)."""
    from ecgnet.data.ptbxl import data_root, read_database

    database = read_database(data_root(None)).loc[table["record"].astype(int), ["age", "sex", "device"]]
    return pd.concat([table, database.reset_index(drop=True)], axis=1)


def run_thresholds(classes: list[str]) -> np.ndarray:
    per_class = json.loads((SOURCE / "val" / "metrics.json").read_text())["per_class"]
    return np.array([per_class[c]["threshold"] for c in classes])


def mean_ba(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean([decision_rates(y[:, k], p[:, k] >= t[k])["balanced_accuracy"] for k in range(y.shape[1])]))


def profiles(y, p, run_t) -> dict[str, np.ndarray]:
    """Every candidate's thresholds fitted on one simulated site, by the function `ecgnet calibrate` uses."""
    return {"run": run_t, **{f"s={s}": fit_thresholds(y, p, "youden", fallback=run_t, shrinkage=s).values
                             for s in STRENGTHS}}


def simulate(table: pd.DataFrame, classes: list[str], run_t: np.ndarray, score_on: str) -> dict:
    """Gain in held-out mean balanced accuracy over the run's thresholds, per kind, size and candidate."""
    y_all = table[[f"y_{c}" for c in classes]].to_numpy(float)
    p_all = table[[f"p_{c}" for c in classes]].to_numpy(float)
    fold, patients = table["fold"].to_numpy(), table["patient"].to_numpy()
    out = {}
    for kind, select in KINDS.items():
        member = select(table)
        pool, test = np.flatnonzero(member & (fold <= 9)), np.flatnonzero(member & (fold == 10))
        out[kind] = {"records folds 1-9": len(pool), "records fold 10": len(test), "sizes": {}}
        for n in SIZES:
            if len(pool) - n < MIN_SCORED:
                continue
            gains: dict[str, list[float]] = {}
            for draw in range(DRAWS):
                rng = np.random.default_rng([SEED, n, draw, list(KINDS).index(kind)])
                d = rng.choice(pool, n, replace=False)
                held = test if score_on == "fold 10" else pool[~np.isin(patients[pool], patients[d])]
                base = mean_ba(y_all[held], p_all[held], run_t)
                for name, t in profiles(y_all[d], p_all[d], run_t).items():
                    gains.setdefault(name, []).append(mean_ba(y_all[held], p_all[held], t) - base)
            out[kind]["sizes"][str(n)] = {
                name: {"mean": float(np.mean(g)), "p05": float(np.percentile(g, 5)), "p95": float(np.percentile(g, 95)),
                       "share_worse": float(np.mean(np.array(g) < 0))} for name, g in gains.items()}
            print(score_on, kind, n, {k: round(v["mean"], 4) for k, v in out[kind]["sizes"][str(n)].items()}, flush=True)
    return out


def mean_gain(simulated: dict, candidate: str) -> float:
    return float(np.mean([e[candidate]["mean"] for kind in simulated.values() for e in kind["sizes"].values()]))


def challenge(chosen: float) -> dict:
    """measure.py's per-site cross-fitting on the Challenge samples (long_time, no calibration) for s = 0,
    the chosen s and the run's thresholds."""
    from ecgnet.evaluation.calibrate_site import fit_and_cross_fit
    from ecgnet.evaluation.site_calibration import before_after
    from ecgnet.inference.predictor import Predictor
    from reports.own_data.calibration.measure import FOLDS, N_BOOT, RUN

    predictor = Predictor(RUN)
    classes = list(predictor.classes)
    table = pd.read_csv(OUT / "predictions.csv", dtype={"record": str, "patient": str, "source": str})
    scored = table[table["error"].astype("string").fillna("") == ""].reset_index(drop=True)
    y = scored[[f"y_{c}" for c in classes]].to_numpy(float)
    p = scored[[f"p_{c}" for c in classes]].to_numpy(float)
    fallback = np.array([predictor.thresholds[c] for c in classes])
    sources, patients = scored["source"].to_numpy(), scored["patient"].to_numpy()
    out = {}
    for label, method, s in (("s=0", "youden", 0.0), (f"s={chosen:g}", "youden", chosen), ("run", "run", 0.0)):
        q, t = np.empty_like(p), np.empty_like(p)
        for site in sorted(set(sources)):
            rows = sources == site
            _, q[rows], t[rows], _, _ = fit_and_cross_fit(y[rows], p[rows], patients[rows], fallback, classes, method,
                                                          0.9, "none", FOLDS, SEED, N_BOOT, shrinkage=s)
        pooled = before_after(y, p, fallback, q, t, classes, n_boot=N_BOOT, seed=SEED)
        out[label] = {"mean_balanced_accuracy": pooled["mean_balanced_accuracy"],
                      "per_class": {c: {k: e[k] for k in ("before", "after", "difference") if k in e}
                                    for c, e in pooled["per_class"].items()}}
        print("challenge", label, pooled["mean_balanced_accuracy"], flush=True)
    return out


def main() -> None:
    os.chdir(REPO)
    table = site2_predictions()
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    run_t = run_thresholds(classes)
    origin = provenance()
    results = {"protocol": __doc__, "command": " ".join([".venv/bin/python -m reports.own_data.calibration.shrinkage",
                                                          *sys.argv[1:]]),
               "seed": SEED, "draws": DRAWS, **{k: origin.get(k) for k in ("git_revision", "git_dirty", "date")},
               "source": SOURCE.name, "classes": classes, "run_thresholds": dict(zip(classes, run_t.tolist())),
               "site2_records": {"folds 1-9": int((table["fold"] <= 9).sum()), "fold 10": int((table["fold"] == 10).sum())}}
    results["choosing"] = simulate(table, classes, run_t, "folds 1-9")
    candidates = [f"s={s}" for s in STRENGTHS] + ["run"]
    results["mean_gain_over_kinds_and_sizes"] = {c: mean_gain(results["choosing"], c) for c in candidates}
    best = max(candidates, key=results["mean_gain_over_kinds_and_sizes"].get)
    results["chosen"] = best
    print("chosen:", best, results["mean_gain_over_kinds_and_sizes"], flush=True)
    results["reported_fold10"] = simulate(table, classes, run_t, "fold 10")
    results["reported_fold10_mean_gain"] = {c: mean_gain(results["reported_fold10"], c) for c in candidates}
    if best.startswith("s="):
        results["challenge"] = challenge(float(best[2:]))
    write_json(OUT / "shrinkage.json", results)
    write_text(OUT / "shrinkage.md", render(results))


def reading(r: dict) -> str:
    g = r["mean_gain_over_kinds_and_sizes"]
    f10 = r["reported_fold10_mean_gain"]
    small = np.mean([k["sizes"]["25"]["s=0"]["mean"] for k in r["choosing"].values()])
    return (f"Reading: thresholds fitted on a small site follow its noise — unshrunk, a 25-record site loses {small:+.3f} "
            f"on average; shrinkage keeps what a large site's own thresholds find (sites whose case mix differs, "
            f"≥ 100 records) and gives the small site back the run's thresholds. Over every kind and size s = 0 "
            f"averages {g['s=0']:+.4f} and {r['chosen'].replace('s=', 's = ')} {g[r['chosen']]:+.4f}; on fold 10 "
            f"{f10['s=0']:+.4f} and {f10[r['chosen']]:+.4f}. Site 2 sits close to the model's own sites, so the gains "
            "are small; a site whose thresholds are far off gains more, and its `ecgnet calibrate` report "
            "measures it (held-out, before/after).")


def render(r: dict) -> str:
    """shrinkage.md: the choice, the fold-10 report and the Challenge measurement."""
    candidates = list(r["mean_gain_over_kinds_and_sizes"])
    head = "| site kind | records (folds 1–9 / 10) | " + " | ".join(c.replace("s=", "s = ") for c in candidates) + " |"
    rule = "|---|---|" + "---|" * len(candidates)

    def table(phase: str) -> list[str]:
        rows = [head, rule]
        for kind, e in r[phase].items():
            gains = [np.mean([v[c]["mean"] for v in e["sizes"].values()]) for c in candidates]
            rows.append(f"| {kind} | {e['records folds 1-9']} / {e['records fold 10']} | "
                        + " | ".join(f"{1000 * g:+.1f}" for g in gains) + " |")
        total = r["mean_gain_over_kinds_and_sizes" if phase == "choosing" else "reported_fold10_mean_gain"]
        rows.append("| **mean** | | " + " | ".join(f"**{1000 * total[c]:+.1f}**" for c in candidates) + " |")
        return rows

    sizes = ["| records at the site | " + " | ".join(c.replace("s=", "s = ") for c in candidates) + " |", "|---|" + "---|" * len(candidates)]
    for n in SIZES:
        sizes.append(f"| {n} | " + " | ".join(
            f"{1000 * np.mean([k['sizes'][str(n)][c]['mean'] for k in r['choosing'].values() if str(n) in k['sizes']]):+.1f}"
            for c in candidates) + " |")
    lines = ["# How far a site's thresholds may move: `ecgnet calibrate --shrinkage`", "",
             f"Generated by `{r['command']}` at revision `{r['git_revision']}`"
             f"{' (uncommitted changes)' if r['git_dirty'] else ''}, seed {r['seed']}, {r['draws']} draws per kind and size, "
             f"{r['date']}. Protocol: the docstring of [`shrinkage.py`](shrinkage.py); every figure in `shrinkage.json`.", "",
             "A site's Youden threshold is pulled toward the run's fold-9 one in logit space, the site's weight being "
             "m / (m + s) with m the class's positives or negatives at the site, whichever are fewer; s = 0 is the site's "
             "threshold as fitted, `run` the run's threshold (s = ∞). Figures: held-out mean balanced accuracy over the five "
             "superclasses minus the run's thresholds' on the same records, ×1000 (+1.0 = +0.001), mean over draws.", "",
             f"Model: `{r['source']}`, which never saw PTB-XL's recording site 2; sites are drawn from site 2's records.", "",
             "## Choosing (folds 1–9: fitted on the draw, scored on the kind's other records)", "", *table("choosing"), "",
             "By size of the site (mean over kinds):", "", *sizes, "",
             f"**Chosen: {r['chosen'].replace('s=', 's = ')}**, the default of `ecgnet calibrate --shrinkage`.", "",
             reading(r), "",
             "## Reported (fold 10: fitted on draws from folds 1–9, scored on the kind's fold-10 records)", "", *table("reported_fold10"), ""]
    if "challenge" in r:
        ch = r["challenge"]
        lines += ["## Measured after the choice: the Challenge samples (long_time, per-site cross-fitting as in "
                  "[README.md](README.md))", "",
                  "| thresholds | mean balanced accuracy, held-out | HYP | CD | MI | NORM | STTC |", "|---|---|---|---|---|---|---|"]
        for label, e in ch.items():
            per = [e["per_class"][c]["after"]["balanced_accuracy"] if "after" in e["per_class"][c] else None
                   for c in ("HYP", "CD", "MI", "NORM", "STTC")]
            name = {"run": "the run's (fold 9)"}.get(label, label.replace("s=", "Youden, s = "))
            lines.append(f"| {name} | {e['mean_balanced_accuracy']['after']:.3f} | "
                         + " | ".join("–" if v is None else f"{v:.3f}" for v in per) + " |")
        lines += ["", "These 92 records of six databases (4–31 per site) only measure; nothing was chosen on them."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # render: shrinkage.md again from shrinkage.json
    from reports import usage  # here: tests load this file by path, without the repository on sys.path

    usage.command(__doc__, {"render": lambda: write_text(OUT / "shrinkage.md",
                                                         render(json.loads((OUT / "shrinkage.json").read_text())))},
                  main)
