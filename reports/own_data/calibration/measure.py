"""Per-site operating points on the shared Challenge samples, measured (never used to choose a default).

The bundled default model (long_time) predicts the 92 labelled records of the five foreign databases once
(the manifest `ecgnet manifest` writes from the folder; records without a superclass are left out, as
in `evaluate-external`). Each source database is then treated as a site, exactly as `ecgnet calibrate
--source <db>` does it (same functions): calibration and Youden thresholds per class, cross-fitted within
the site (k = min(5, records), multilabel-stratified folds), the held-out results of all sites pooled.

- Balanced accuracy per class: before = the run's fold-9 thresholds on its probabilities; after = each
  record thresholded by its site's profile fitted on the other folds of that site (calibration none, as
  the default Youden rule on raw probabilities; temperature and isotonic change the thresholds' scale, not
  the rule, and are reported too).
- ECE per class before / after temperature scaling and isotonic regression (held-out, pooled).
- For comparison: the whole sample treated as one site (5-fold cross-fitting).

    .venv/bin/python -m reports.own_data.calibration.measure [SAMPLES_DIR]

writes reports/own_data/calibration/{manifest.csv, predictions.csv, results.json, README.md, figures/}.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ecgnet.data.collections import read_manifest
from ecgnet.data.collections.make import challenge_manifest
from ecgnet.evaluation.calibrate_site import fit_and_cross_fit
from ecgnet.evaluation.calibration import reliability_comparison
from ecgnet.evaluation.labelled import predict_collection
from ecgnet.evaluation.site_calibration import before_after
from ecgnet.fileio import write_json, write_text
from ecgnet.inference.predictor import Predictor
from ecgnet.plotting import plt
from ecgnet.runs.origin import provenance

from reports import usage

REPO = Path(__file__).resolve().parents[3]
os.chdir(REPO)  # paths in the outputs are relative to the checkout
SAMPLES = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/external/cinc2021-samples")
OUT = Path("reports/own_data/calibration")
RUN, SEED, N_BOOT, FOLDS, METHOD = "long_time", 0, 1000, 5, "youden"
CALIBRATIONS = ("none", "temperature", "isotonic")


def main() -> None:
    made = challenge_manifest(SAMPLES, OUT / "manifest.csv")
    collection = read_manifest(OUT / "manifest.csv")
    predictor = Predictor(RUN)
    classes = list(predictor.classes)
    predictions = OUT / "predictions.csv"
    table, match = predict_collection(predictor, collection, progress=False)
    table.to_csv(predictions, index=False, float_format="%.6f")
    ok = (table["error"].fillna("") == "").to_numpy()
    scored = table[ok].reset_index(drop=True)
    y = scored[[f"y_{c}" for c in classes]].to_numpy(float)
    p = scored[[f"p_{c}" for c in classes]].to_numpy(float)
    fallback = np.array([predictor.thresholds[c] for c in classes])
    sources = scored["source"].to_numpy()
    results = {"run": RUN, "method": METHOD, "seed": SEED, "n_boot": N_BOOT, "folds": FOLDS,
               "records": len(table), "scored": int(ok.sum()), "left_out_without_superclass": len(made["left_out"]),
               "sites": {s: int((sources == s).sum()) for s in sorted(set(sources))},
               "provenance": {k: v for k, v in provenance().items() if k in ("git_revision", "git_dirty", "date", "command")},
               "per_site": {}, "one_site": {}}
    heldout = {}
    for cal in CALIBRATIONS:
        q, t = np.empty_like(p), np.empty_like(p)
        per_site = {}
        for site in sorted(set(sources)):
            rows = sources == site
            _, q[rows], t[rows], _, ev = fit_and_cross_fit(
                y[rows], p[rows], scored["patient"].to_numpy()[rows], fallback, classes, METHOD, 0.9, cal,
                FOLDS, SEED, N_BOOT, shrinkage=0.0)
            per_site[site] = {"n": int(rows.sum()), "folds": ev["folds"], "mean_balanced_accuracy": ev["mean_balanced_accuracy"],
                              "classes_scored": ev["classes_scored"]}
        pooled = before_after(y, p, fallback, q, t, classes, n_boot=N_BOOT, seed=SEED)
        results["per_site"][cal] = {"pooled": pooled, "sites": per_site}
        heldout[cal] = q
        _, _, _, _, one = fit_and_cross_fit(y, p, scored["patient"].to_numpy(), fallback, classes, METHOD, 0.9, cal,
                                            FOLDS, SEED, N_BOOT, shrinkage=0.0)
        results["one_site"][cal] = one
    write_json(OUT / "results.json", results)
    fig = reliability_comparison(y, {"run": p, "temperature": heldout["temperature"], "isotonic": heldout["isotonic"]},
                                 classes, title="long_time on the Challenge samples: per-site calibration, held-out")
    (OUT / "figures").mkdir(exist_ok=True)
    fig.savefig(OUT / "figures" / "reliability.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_text(OUT / "README.md", readme(results, classes))


def _ba(e: dict) -> str:
    return f"{e['balanced_accuracy']:.3f}" + (f" [{e['low']:.3f}, {e['high']:.3f}]" if e.get("low") is not None else "")


def _d(d: dict) -> str:
    return f"{d['value']:+.3f}" + (f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else "")


def readme(r: dict, classes: list[str]) -> str:
    none = r["per_site"]["none"]["pooled"]
    lines = ["# Per-site operating points on the Challenge samples (long_time)", "",
             "Generated by `python -m reports.own_data.calibration.measure` (this folder's `measure.py`: protocol in "
             "its docstring) at revision `{}`{}, seed {}, {} bootstrap resamples, {} UTC.".format(
                 r["provenance"]["git_revision"], " (uncommitted changes)" if r["provenance"]["git_dirty"] else "",
                 r["seed"], r["n_boot"], r["provenance"]["date"]),
             "", f"{r['scored']} of {r['records']} manifest records scored ({r['left_out_without_superclass']} records of "
             "the folder without a superclass were left out by the manifest); sites (source databases): "
             + ", ".join(f"{s} {n}" for s, n in r["sites"].items()) + ".",
             "These records only measure; nothing shipped was chosen on them. Every 'after' figure is held-out: "
             "cross-fitted within each site (k = min(5, records) folds), the held-out calls of all sites pooled.", "",
             "## Balanced accuracy per class: fold-9 thresholds (before) vs per-site Youden thresholds (after)", "",
             "| class | n | positives | before [90 % CI] | after [90 % CI] | after − before [90 % CI] |",
             "|---|---|---|---|---|---|"]
    for c in classes:
        e = none["per_class"][c]
        if "before" in e:
            lines.append(f"| {c} | {e['n']} | {e['n_positive']} | {_ba(e['before'])} | {_ba(e['after'])} | {_d(e['difference'])} |")
    hyp = none["per_class"]["HYP"]
    mean = none["mean_balanced_accuracy"]
    lines += ["", "Reading: with 4–31 records per site, per-site thresholds {} the mean balanced accuracy ({:.3f} → "
              "{:.3f}, held-out). Thresholds fitted on so few records (most sites have fewer than 5 positives of some class) are "
              "noisier than the fold-9 ones fitted on the ~2,200 records of PTB-XL's fold 9. The exception is HYP, whose fold-9 threshold "
              "finds few foreign HYP records (sensitivity {:.2f} before, {:.2f} after). Fitting one profile on all 92 records "
              "instead changes the mean little ({:.3f} → {:.3f}). A site needs more labelled records than these samples "
              "hold before its own thresholds pay; its report shows whether they do.".format(
                  "lowered" if mean["after"] < mean["before"] else "raised", mean["before"], mean["after"],
                  hyp["before"]["sensitivity"], hyp["after"]["sensitivity"],
                  r["one_site"]["none"]["mean_balanced_accuracy"]["before"],
                  r["one_site"]["none"]["mean_balanced_accuracy"]["after"])]
    lines += ["", "These are unshrunk thresholds (`--shrinkage 0`). `ecgnet calibrate` now pulls each site threshold toward "
              "the run's by default (shrinkage 40, chosen on PTB-XL alone): [shrinkage.md](shrinkage.md) shows the choice "
              "and these records with it."]
    lines += ["", "Mean over classes, before → after: " + " · ".join(
        f"{cal}: {r['per_site'][cal]['pooled']['mean_balanced_accuracy']['before']:.3f} → "
        f"{r['per_site'][cal]['pooled']['mean_balanced_accuracy']['after']:.3f}" for cal in CALIBRATIONS)
        + " (thresholds fitted on raw, temperature-scaled or isotonic probabilities).",
        "All 92 records as one site (5-fold cross-fitting, no calibration): "
        f"{r['one_site']['none']['mean_balanced_accuracy']['before']:.3f} → "
        f"{r['one_site']['none']['mean_balanced_accuracy']['after']:.3f}.", "",
        "Per site (mean balanced accuracy over the classes the site can score, before → after, no calibration):", "",
        "| site | records | folds | classes scored | before | after |", "|---|---|---|---|---|---|"]
    for s, e in r["per_site"]["none"]["sites"].items():
        mba = e["mean_balanced_accuracy"]
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {s} | {e['n']} | {e['folds']} | {', '.join(e['classes_scored']) or '–'} | {fmt(mba['before'])} | {fmt(mba['after'])} |")
    lines += ["", "## Calibration error (ECE, 10 bins) per class, held-out", "",
              "| class | run | temperature (per site) | isotonic (per site) | temperature (one site) | isotonic (one site) |",
              "|---|---|---|---|---|---|"]
    for c in classes:
        t, i = r["per_site"]["temperature"]["pooled"]["per_class"][c], r["per_site"]["isotonic"]["pooled"]["per_class"][c]
        t1, i1 = r["one_site"]["temperature"]["per_class"][c], r["one_site"]["isotonic"]["per_class"][c]
        if "ece_before" in t:
            lines.append(f"| {c} | {t['ece_before']:.3f} | {t['ece_after']:.3f} | {i['ece_after']:.3f} | "
                         f"{t1['ece_after']:.3f} | {i1['ece_after']:.3f} |")
    macro = {cal: r["per_site"][cal]["pooled"]["macro_ece"] for cal in ("temperature", "isotonic")}
    lines += ["", f"Macro ECE: run {macro['temperature']['before']:.3f}; per-site temperature "
              f"{macro['temperature']['after']:.3f}, isotonic {macro['isotonic']['after']:.3f}; one site: temperature "
              f"{r['one_site']['temperature']['macro_ece']['after']:.3f}, isotonic "
              f"{r['one_site']['isotonic']['macro_ece']['after']:.3f}.", "",
              "![Reliability, held-out](figures/reliability.png)", "",
              "Files: `manifest.csv` (from `ecgnet manifest`), `predictions.csv` (the run's probabilities per record), "
              "`results.json` (every figure above, per class and per site, with intervals).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()
