"""The bounds of the per-lead quality flags (ecgnet.data.quality), measured on PTB-XL's training folds,
and the flags' agreement with PTB-XL's own quality annotations on fold 10.

PTB-XL's ``baseline_drift``, ``static_noise``, ``burst_noise`` and ``electrodes_problems`` columns list the
affected leads as free text (``V1-V3``, ``I-AVF``, ``alles`` = all, ``v5-6``, or only a degree such as
``leicht`` = slight): :func:`annotated_leads` parses them; a text naming no lead counts for the record but
is left out of the per-lead figures. Each flag is measured against the annotation closest to it:
``wander`` ↔ baseline_drift, ``noise`` ↔ static_noise or burst_noise, ``disconnected``/``flat`` ↔
electrodes_problems; ``saturated`` has no annotation, so only its rate is given.

Bounds: tail percentiles of each measurement over the leads of the training records (folds 1–8) without
any of the four annotations (the rule is in ecgnet/data/quality.py); the script prints them and says
whether quality.py's constants match. Fold 10 is only reported. Deterministic (no sampling, no seed).

    ECGNET_DATA=... .venv/bin/python -m reports.quality.bounds   # writes reports/quality/bounds.json, agreement.md
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ecgnet.data import quality as Q
from ecgnet.data.ptbxl import TEST_FOLD, TRAIN_FOLDS, VAL_FOLD, data_root, read_database
from ecgnet.data.records import LEADS
from ecgnet.data.signals import SAMPLING_RATE, load_signals

OUT = Path(__file__).resolve().parent
ANNOTATIONS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")
PERCENTILES = {"flat_min_span_mv": 0.01, "saturated_s": 99.99, "noise_mv": 99.5, "wander_mv": 99.5}
TRADEOFF_PERCENTILES = (90, 95, 99, 99.5, 99.9)
CONSTANTS = {"flat_min_span_mv": "FLAT_MV", "saturated_s": "SATURATED_S", "noise_mv": "NOISE_MV",
             "wander_mv": "WANDER_MV"}
_LEAD = r"(iii|ii|i|avr|avl|avf|v[1-6])"
_NAMES = [lead.lower() for lead in LEADS]


def annotated_leads(text) -> np.ndarray | None:
    """PTB-XL's free text of affected leads → a (12,) bool mask in LEADS order; None when the text names
    no lead (empty, or only a degree like ``leicht``/``mittel``/``stark``)."""
    if not isinstance(text, str):
        return None
    out, found = np.zeros(12, bool), False
    for token in text.lower().replace("?", "").split(","):
        token = token.strip()
        if not token:
            continue
        if "alles" in token or token in ("alle", "alle abl."):
            out[:], found = True, True
            continue
        m = re.fullmatch(_LEAD + r"\s*-\s*(?:" + _LEAD + r"|([1-6]))", token)  # I-AVF, V1-V3, v5-6
        if m:
            a = _NAMES.index(m.group(1))
            b = _NAMES.index(m.group(2) or f"v{m.group(3)}")
            out[a:b + 1], found = True, True
            continue
        for name in re.findall(r"\b" + _LEAD + r"\b", token):  # "I,III,AVL" split already; "Kontaktprobleme aVL"
            out[_NAMES.index(name)], found = True, True
    return out if found else None


def min_window_span(x: np.ndarray, rate: float) -> np.ndarray:
    """The smallest peak-to-peak span of a FLAT_WINDOW_S window (every FLAT_HOP_S): what FLAT_MV bounds."""
    w, hop = int(Q.FLAT_WINDOW_S * rate), int(Q.FLAT_HOP_S * rate)
    starts = range(0, x.shape[-1] - w + 1, hop)
    return np.min([np.ptp(x[..., s:s + w], -1) for s in starts], axis=0)


def measure_all(signals: np.ndarray, chunk: int = 1000) -> dict[str, np.ndarray]:
    parts = []
    for a in range(0, len(signals), chunk):
        x = np.asarray(signals[a:a + chunk], dtype=np.float64)
        m = Q.measure(x, SAMPLING_RATE)
        m["flat_min_span_mv"] = min_window_span(x, SAMPLING_RATE)
        parts.append(m)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(mask: np.ndarray) -> dict:
    k, n = int(mask.sum()), int(mask.size)
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "value": k / n if n else float("nan"), "ci95": [lo, hi]}


def fmt(r: dict) -> str:
    if not r["n"]:
        return "—"
    return f"{r['value']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] ({r['k']}/{r['n']})"


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def revision() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src/ecgnet/data/quality.py", "reports/quality"],
                           capture_output=True, text=True).stdout.strip()
    return rev + (" (with uncommitted changes to quality.py or reports/quality)" if dirty else "")


def main() -> None:
    root = data_root(None)
    db = read_database(root)
    ids, signals = load_signals(root, db["filename_lr"].to_dict())
    db = db.loc[ids]
    print(f"measuring {len(ids):,} records × 12 leads at {SAMPLING_RATE} Hz …", file=sys.stderr)
    m = measure_all(signals)
    annotated = {c: db[c].notna().to_numpy() for c in ANNOTATIONS}
    any_annotation = np.any(list(annotated.values()), axis=0)
    train = db["strat_fold"].isin(TRAIN_FOLDS).to_numpy()
    test = (db["strat_fold"] == TEST_FOLD).to_numpy()
    clean_train = train & ~any_annotation

    bounds = {k: float(np.percentile(m[k][clean_train], q)) for k, q in PERCENTILES.items()}
    shipped = {k: getattr(Q, c) for k, c in CONSTANTS.items()}
    mismatch = {k: (round(bounds[k], 4), shipped[k]) for k in bounds
                if abs(round(bounds[k], 4) - shipped[k]) > 0.011 * max(abs(shipped[k]), 1e-9)}

    flags = Q.flags_from(m)  # (records, 12, FLAGS) with quality.py's constants
    F = {name: flags[..., i] for i, name in enumerate(Q.FLAGS)}
    F["flat or disconnected"] = F["flat"] | F["disconnected"]
    comparisons = [("wander", "baseline_drift", ("baseline_drift",)),
                   ("noise", "static_noise or burst_noise", ("static_noise", "burst_noise")),
                   ("noise", "static_noise", ("static_noise",)), ("noise", "burst_noise", ("burst_noise",)),
                   ("flat or disconnected", "electrodes_problems", ("electrodes_problems",))]
    lead_masks = {c: [annotated_leads(t) for t in db[c]] for c in ANNOTATIONS}
    measure_of = {"wander": "wander_mv", "noise": "noise_mv", "flat or disconnected": "flat_min_span_mv"}
    sign = {"flat or disconnected": -1.0}
    results = []
    for flag, label, cols in comparisons:
        pos = np.any([annotated[c] for c in cols], axis=0)
        fired = F[flag].any(1)
        score = (m[measure_of[flag]] * sign.get(flag, 1.0)).max(1)  # the worst lead's measurement
        row = {"flag": flag, "label": label,
               "record": {"sensitivity": rate(fired[test & pos]),
                          "specificity_vs_unlabelled": rate(~fired[test & ~pos]),
                          "specificity_vs_clean": rate(~fired[test & ~any_annotation]),
                          "ppv": rate(pos[test & fired]),
                          "auc_of_measurement": auc(pos[test], score[test])}}
        # per lead: records whose text names leads; negatives are the leads of records without the label
        named = np.zeros((len(ids), 12), bool)
        has_names = np.zeros(len(ids), bool)
        for c in cols:
            for i, mask in enumerate(lead_masks[c]):
                if mask is not None:
                    named[i] |= mask
                    has_names[i] = True
        lead_pos = named & (test & has_names)[:, None]
        lead_neg = np.broadcast_to((test & ~pos)[:, None], named.shape)
        lead_score = m[measure_of[flag]] * sign.get(flag, 1.0)
        both = lead_pos | lead_neg
        row["lead"] = {"sensitivity": rate(F[flag][lead_pos]), "specificity": rate(~F[flag][lead_neg]),
                       "auc_of_measurement": auc(lead_pos[both], lead_score[both]),
                       "records_with_named_leads": int((test & has_names).sum())}
        results.append(row)
    rates = {name: {"records_flagged": rate(F[name][test].any(1)), "leads_flagged": rate(F[name][test]),
                    "clean_records_flagged": rate(F[name][test & ~any_annotation].any(1))} for name in Q.FLAGS}
    rates["any"] = {"records_flagged": rate(flags[test].any((1, 2))), "leads_flagged": rate(flags[test].any(-1)),
                    "clean_records_flagged": rate(flags[test & ~any_annotation].any((1, 2)))}
    saturated_annotated = rate(any_annotation[test & F["saturated"].any(1)])
    # the trade-off a site could choose from, on fold 9 (the shipped bounds stay the a-priori percentiles)
    val = (db["strat_fold"] == VAL_FOLD).to_numpy()
    tradeoff = []
    for measure, label, cols in (("noise_mv", "static_noise or burst_noise", ("static_noise", "burst_noise")),
                                 ("wander_mv", "baseline_drift", ("baseline_drift",))):
        pos = np.any([annotated[c] for c in cols], axis=0)
        for q in TRADEOFF_PERCENTILES:
            bound = float(np.percentile(m[measure][clean_train], q))
            fired = (m[measure] > bound).any(1)
            tradeoff.append({"measurement": measure, "label": label, "percentile": q, "bound": bound,
                             "sensitivity": rate(fired[val & pos]), "specificity_vs_clean": rate(~fired[val & ~any_annotation])})

    out = {"dataset": "PTB-XL 1.0.1", "sampling_rate": SAMPLING_RATE, "revision": revision(),
           "command": "python -m reports.quality.bounds", "seed": None,
           "training_clean": {"records": int(clean_train.sum()), "leads": int(clean_train.sum() * 12)},
           "fold10": {"records": int(test.sum()), "clean_records": int((test & ~any_annotation).sum()),
                      **{c: int(annotated[c][test].sum()) for c in ANNOTATIONS}},
           "percentiles": PERCENTILES, "bounds_measured": bounds, "bounds_shipped": shipped,
           "agreement": results, "flag_rates_fold10": rates, "saturated_share_annotated": saturated_annotated,
           "tradeoff_fold9": tradeoff}
    (OUT / "bounds.json").write_text(json.dumps(out, indent=1) + "\n")
    (OUT / "agreement.md").write_text(markdown(out))
    print(markdown(out))
    if mismatch:
        print(f"\nquality.py's constants differ from the measured bounds: {mismatch}", file=sys.stderr)
        sys.exit(1)


def markdown(out: dict) -> str:
    f10 = out["fold10"]
    lines = [f"# Quality flags vs PTB-XL's quality annotations (fold {TEST_FOLD})", "",
             f"Command `{out['command']}` at revision {out['revision']}; {out['dataset']} at "
             f"{out['sampling_rate']} Hz (the signal cache); deterministic (no seed). Fold {TEST_FOLD}: "
             f"{f10['records']:,} records, {f10['clean_records']:,} without any annotation; "
             + ", ".join(f"{c} {f10[c]}" for c in ANNOTATIONS) + ".", "",
             "## Bounds (folds 1–8, leads of the "
             f"{out['training_clean']['records']:,} records without annotations)", "",
             "| measurement | percentile | measured | in quality.py |", "|---|---|---|---|"]
    for k, q in out["percentiles"].items():
        lines.append(f"| {k} | {q} | {out['bounds_measured'][k]:.4g} | {out['bounds_shipped'][k]:g} |")
    lines += ["", "## Agreement per record (a flag on any lead vs the annotation), fold 10", "",
              "Rates with Wilson 95 % intervals (k/n). Specificity vs unlabelled: records without this annotation; "
              "vs clean: records without any of the four. AUC: the measurement's maximum over leads as a score.", "",
              "| flag | annotation | sensitivity | specificity vs unlabelled | specificity vs clean | PPV | AUC |",
              "|---|---|---|---|---|---|---|"]
    for r in out["agreement"]:
        rec = r["record"]
        lines.append(f"| {r['flag']} | {r['label']} | {fmt(rec['sensitivity'])} | {fmt(rec['specificity_vs_unlabelled'])} "
                     f"| {fmt(rec['specificity_vs_clean'])} | {fmt(rec['ppv'])} | {rec['auc_of_measurement']:.3f} |")
    lines += ["", "## Agreement per lead, fold 10", "",
              "Positives: the leads an annotation names (records whose text names no lead are left out); negatives: "
              "every lead of the records without the annotation.", "",
              "| flag | annotation | records with named leads | sensitivity | specificity | AUC |", "|---|---|---|---|---|---|"]
    for r in out["agreement"]:
        ld = r["lead"]
        lines.append(f"| {r['flag']} | {r['label']} | {ld['records_with_named_leads']} | {fmt(ld['sensitivity'])} "
                     f"| {fmt(ld['specificity'])} | {ld['auc_of_measurement']:.3f} |")
    lines += ["", "## How often each flag fires, fold 10", "",
              "| flag | records flagged | leads flagged | clean records flagged |", "|---|---|---|---|"]
    for name, r in out["flag_rates_fold10"].items():
        lines.append(f"| {name} | {fmt(r['records_flagged'])} | {fmt(r['leads_flagged'])} | {fmt(r['clean_records_flagged'])} |")
    s = out["saturated_share_annotated"]
    lines += ["", f"Saturated records that carry some quality annotation: {fmt(s)}.", "",
              f"## Other bounds: the trade-off on fold {VAL_FOLD} (for a site choosing its own; not used to set the shipped ones)", "",
              "| measurement | annotation | percentile of clean training leads | bound | record sensitivity | specificity vs clean |",
              "|---|---|---|---|---|---|"]
    for t in out["tradeoff_fold9"]:
        lines.append(f"| {t['measurement']} | {t['label']} | {t['percentile']} | {t['bound']:.4g} | {fmt(t['sensitivity'])} "
                     f"| {fmt(t['specificity_vs_clean'])} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from reports import usage  # here: tests load this file by path, without the repository on sys.path

    usage.arguments(__doc__)
    main()
