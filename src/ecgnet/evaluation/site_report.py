"""The report of ``ecgnet calibrate`` (RUN/profiles/<site>/report.html / .md): the profile that was
stored, then how it did on held-out records — balanced accuracy per class before (the run's
thresholds, chosen on fold 9 or on the manifest it was trained on) and after (the site's cross-fitted
thresholds), calibration error before/after, and the reliability diagram of both."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.evaluation.calibration import reliability_comparison
from ecgnet.evaluation.recalibration import carry_threshold
from ecgnet.document import save_png, write_document
from ecgnet.evaluation.metrics import resampled_words


def _ci(entry: dict) -> str:
    value = f"{entry['balanced_accuracy']:.3f}"
    return value + (f" [{entry['low']:.3f}, {entry['high']:.3f}]" if entry.get("low") is not None else "")


def _diff(d: dict) -> str:
    return f"{d['value']:+.3f}" + (f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else "")


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _run_origin(profile: dict) -> str:
    """Where the run's own thresholds came from (profiles written before the field: fold 9)."""
    on = profile.get("run_thresholds_chosen_on", "fold 9")
    return f"chosen on {on}" if on else "none in the run: 0.5"


def _rule(profile: dict) -> str:
    if profile["method"] == "run":
        return f"run (its decisions — thresholds {_run_origin(profile)} — carried through the calibration)"
    rule = f"sensitivity (target {profile['target_sensitivity']:g})" if profile["method"] == "sensitivity" else profile["method"]
    s = profile.get("shrinkage")  # absent in profiles written before shrinkage existed
    return rule + (f", shrunk toward the run's by {s:g} (site weight m / (m + {s:g}), m = the class's rarer label count)"
                   if s else "")


def write_site_report(out_dir: Path, profile: dict, y: np.ndarray, p: np.ndarray, q: np.ndarray) -> Path:
    """``y`` labels (NaN unknown), ``p`` the probabilities fitted on (the run's own, or its cross-validation's
    out-of-fold ones: ``profile["fitted_on"]``), ``q`` the held-out calibrated ones."""
    ev, classes = profile["evaluation"], profile["classes"]
    manifest = profile["manifest"]
    fitted_on = profile.get("fitted_on") or {}  # absent in profiles written before --from-cv
    oof = fitted_on.get("probabilities") == "out-of-fold"
    if oof:
        source = [["probabilities", f"out-of-fold: {fitted_on['statement']}"],
                  ["predictions", f"{fitted_on['predictions']} (SHA-256 {fitted_on['predictions_sha256']})"],
                  ["manifest the run was trained on (as recorded)", str(manifest["path"] or "none: PTB-XL's folds")],
                  ["records used", str(manifest["records_used"])]]
    else:
        source = [["manifest", str(manifest["path"])], ["manifest SHA-256", manifest["sha256"]],
                  *([["probabilities", fitted_on["statement"]]] if fitted_on.get("statement") else []),
                  ["records used", str(manifest["records_used"])],
                  ["unreadable, left out", str(len(manifest.get("unreadable", [])))]]
    summary = [["site", profile["site"]], ["run", profile["run"]], *source,
               ["threshold rule", _rule(profile)],
               ["probability calibration", f"{profile['calibration']} (per class)"],
               ["cross-fitting", f"{ev['folds']} folds, patient-grouped, multilabel-stratified, seed {ev['seed']}"],
               ["mean balanced accuracy, before → after", f"{_fmt(ev['mean_balanced_accuracy']['before'])} → "
                                                         f"{_fmt(ev['mean_balanced_accuracy']['after'])}"],
               ["macro ECE, before → after", f"{_fmt(ev['macro_ece']['before'])} → {_fmt(ev['macro_ece']['after'])}"],
               ["date", profile.get("date", "–")], ["command", profile.get("command") or "–"],
               ["revision", str(profile.get("git_revision"))]]
    if profile.get("replaces"):
        r = profile["replaces"]
        summary.append(["replaces", f"the profile fitted on {r.get('records', '?')} records ({r.get('date') or '?'}, "
                                    f"{r.get('manifest') or '?'})"])
    stored = []
    for c in classes:
        cal = profile["calibrators"][c]
        how = {"none": "identity", "temperature": f"T = {cal.get('temperature', 0):.3f}",
               "isotonic": f"isotonic, {len(cal.get('x', []))} knots"}.get(cal["kind"], cal["kind"])
        fitted = profile["fitted"][c]
        raw = profile["run_thresholds"].get(c, float("nan"))
        stored.append([c, f"{raw:.3f}", f"{carry_threshold(raw, cal):.3f}", f"{profile['thresholds'][c]:.3f}", how,
                       "yes" if fitted is True else f"no: {fitted}"])
    decisions, calibration = [], []
    for c in classes:
        e = ev["per_class"][c]
        if "before" not in e:
            decisions.append([c, str(e["n"]), str(e["n_positive"]), "–", "–", "–", "–", "–", e.get("skipped", "")])
            continue
        b, a = e["before"], e["after"]
        decisions.append([c, str(e["n"]), str(e["n_positive"]), _ci(b), _ci(a), _diff(e["difference"]),
                          f"{b['sensitivity']:.3f} → {a['sensitivity']:.3f}", f"{b['specificity']:.3f} → {a['specificity']:.3f}", ""])
        calibration.append([c, f"{e['ece_before']:.3f}", f"{e['ece_after']:.3f}", f"{e['brier_before']:.3f}",
                            f"{e['brier_after']:.3f}"])
    sections = [("Summary", ["what", "value"], summary, ev["protocol"]),
                ("Stored profile (fitted on every record of the site" + (", its out-of-fold probability)"
                                                                       if oof else ")"),
                 ["class", f"run threshold ({_run_origin(profile)})", "the same, calibrated", "site threshold (calibrated)",
                  "calibration", "fitted"], stored,
                 "Predict applies it as: calls = calibrate(probability) >= site threshold. A class the site's records "
                 "cannot fit keeps the identity map and the run's threshold."),
                ("Decisions on held-out records (cross-fitted)",
                 ["class", "n", "n positive", "balanced accuracy before [90 % CI]", "after [90 % CI]",
                  "after − before [90 % CI]", "sensitivity", "specificity", "note"], decisions,
                 f"Before: the run's thresholds ({_run_origin(profile)}) on its probabilities. After: each record thresholded by the "
                 "profile fitted on the other folds. Intervals: percentile bootstrap over "
                 f"{resampled_words(ev.get('resampled'))}, the difference paired."),
                ("Calibration on held-out records (cross-fitted)", ["class", "ECE before", "ECE after", "Brier before",
                                                                    "Brier after"], calibration,
                 f"ECE: {ev['n_bins']} equal-width bins. After: each record's probability through the map fitted on the "
                 "other folds.")]
    if manifest.get("unreadable"):
        sections.append(("Unreadable records (left out of the profile)", ["record", "error"],
                         [[r["record"], r["error"]] for r in manifest["unreadable"]], None))
    before = "run, out-of-fold (before)" if oof else "run (before)"
    figure = reliability_comparison(y, {before: p, f"{profile['calibration']}, cross-fitted (after)": q},
                                    classes, title=f"Reliability on {profile['site']}: before / after")
    figures = {"reliability.png": ("Reliability diagram, held-out records",
                                   save_png(figure, Path(out_dir) / "figures" / "reliability.png"))}
    bullets = ("Warnings", ev["warnings"]) if ev.get("warnings") else None
    return write_document(out_dir, "report", f"Site profile '{profile['site']}' for {profile['run']}", sections, figures,
                          bullets=bullets, css="tbody tr:last-child{font-weight:normal}")
