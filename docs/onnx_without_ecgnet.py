"""Diagnose WFDB records with a model exported by `ecgnet export`, without ecgnet: numpy, scipy, ONNX Runtime
and wfdb only. Every step is read from the file's metadata (``ecgnet.*`` of its metadata_props), not from ecgnet.

    python docs/onnx_without_ecgnet.py model.onnx rec1.hea rec2.hea [--age 64 --sex female] [--json]

tests/test_onnx_without_ecgnet.py checks that it gives `ecgnet predict`'s probabilities and calls. What it leaves
to ecgnet's readers: other formats (XML, DICOM, EDF …), lead labels other than the metadata's names (any case),
headers wfdb refuses (the Challenge 2020 release's record line naming 'E00015.mat'), the header's checksums (not
verified here).
"""

from __future__ import annotations

import argparse
import json
import re
from fractions import Fraction

import numpy as np
import onnxruntime as ort
import wfdb
from scipy.signal import resample_poly

VERSION = 4  # the ecgnet.preprocessing version these steps follow (3 too: 4 lifted a late-fusion graph's 10 s bound,
# which only ecgnet predict --long-records windows reaches; these steps feed 10 s segments)
UNITS_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


def load(path):
    """The ONNX Runtime session and the metadata: {'classes', 'thresholds', 'preprocessing', 'calls', …}."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    meta = {k.removeprefix("ecgnet."): json.loads(v) for k, v in props.items() if k.startswith("ecgnet.")}
    pre = meta["preprocessing"]
    if pre.get("version") == 2 and pre.get("input") == "window":  # version 3 changed late-fusion graphs only
        pre.setdefault("input_samples_min", pre["input_samples"])
    elif pre.get("version") not in (3, VERSION):
        raise SystemExit(f"{path}: preprocessing version {meta['preprocessing'].get('version')}, this script follows "
                         f"{VERSION}: export the model again")
    return session, meta


def read_wfdb(path, leads):
    """A WFDB record → (signal (12, samples) float64 mV in the metadata's lead order, its rate, whether a lead's
    gain is 0, the header's {'age', 'sex'})."""
    name = re.sub(r"\.(hea|dat|mat)$", "", str(path))
    rec = wfdb.rdrecord(name)  # physical units, float64, read whole (preprocessing.reading: a device file's tail)
    with open(name + ".hea", encoding="latin-1") as f:  # gain and units as written ('0/mV': uncalibrated)
        lines = [ln.split() + [""] for ln in f.read().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    gains = [ln[2] for ln in lines[1:rec.n_sig + 1]]
    names = [n.upper() for n in rec.sig_name]
    have = {lead: names.index(lead.upper()) for lead in leads if lead.upper() in names}
    signal = np.empty((len(leads), rec.sig_len))
    for lead, c in have.items():
        units = (gains[c].split("/", 1)[1] if "/" in gains[c] else "mV").strip().lower()
        if units not in UNITS_TO_MV:
            raise SystemExit(f"{path}: units '{units}' (need V, mV, µV or nV)")
        signal[leads.index(lead)] = rec.p_signal[:, c] * UNITS_TO_MV[units]
    zero_gain = any(float(re.match(r"[-+0-9.eE]*", gains[c]).group() or 1) == 0 for c in have.values())
    if set(have) == {"I", "II", "V1", "V2", "V3", "V4", "V5", "V6"}:  # preprocessing.leads_derived
        i, ii = signal[leads.index("I")], signal[leads.index("II")]
        for lead, values in (("III", ii - i), ("aVR", -(i + ii) / 2), ("aVL", i - ii / 2), ("aVF", ii - i / 2)):
            signal[leads.index(lead)], have[lead] = values, None
    if len(have) != len(leads):
        raise SystemExit(f"{path}: lacks lead(s) {', '.join(x for x in leads if x not in have)}")
    if not np.isfinite(signal).all():  # WFDB's invalid-sample value reads as NaN: ecgnet refuses the record
        raise SystemExit(f"{path}: NaN or infinite samples (a gap the file marks as invalid)")
    header = {k.strip().lower(): v.strip() for k, _, v in (c.partition(":") for c in rec.comments)}
    return signal, float(rec.fs), zero_gain, {k: header.get(k) for k in ("age", "sex")}  # preprocessing.metadata_source


def withheld_calls(signal, zero_gain, bounds):
    """Why ecgnet withholds every call (ecgnet.calls.withheld, with its numbers in amplitude_bounds), on the
    signal as recorded."""
    ranges = signal.max(-1) - signal.min(-1)
    flat = bounds["flat_lead_range_mv"]
    why = [f"flat lead (range < {flat} mV)"] if (ranges < flat).any() else []
    if ranges.mean() > 0 and ranges.std() / ranges.mean() < bounds["same_range_spread"]:
        why.append("every lead spans the same range")
    low, high = bounds["median_range_mv"]
    if not low <= np.median(ranges) <= high:
        why.append(f"median lead range {np.median(ranges):.3g} mV outside {low:g}–{high:g} mV")
    return why + (["gain 0 (uncalibrated)"] if zero_gain else [])


def metadata_vector(pre, age=None, sex=None, height=None, weight=None):
    """The 8 features of ecgnet.preprocessing.metadata_features, encoded and scaled as metadata_encoding says."""
    def number(x):  # unknown: absent, not a number or not finite ('NaN' in a header)
        try:
            return float(x)
        except (TypeError, ValueError):
            return np.nan

    def file_age(x):  # '>89' (or PTB-XL's 300) is over 89; another '>N' says too little; outside 0–150 unknown
        text = str(x).strip()
        if text.startswith(">"):
            return 90.0 if number(text[1:]) == 89 else np.nan
        age = number(text)
        return age if 0 <= age < 150 or age == 300 else np.nan
    sex = {"male": 0.0, "m": 0.0, "female": 1.0, "f": 1.0}.get(str(sex).strip().lower(), np.nan)
    values = np.array([file_age(age), sex, number(height), number(weight)])
    values[~np.isfinite(values)] = np.nan
    values[0] = 90.0 if values[0] > 89 else values[0]  # any age over 89 read as 90
    values[2:][values[2:] <= 0] = np.nan  # a height or weight ≤ 0 is unknown
    scaler = pre["metadata_scaler"] or {"mean": [0.0] * 4, "std": [1.0] * 4}
    scaled = (values - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
    missing = np.isnan(values)
    return np.concatenate([np.where(missing, 0.0, scaled), missing]).astype(np.float32)


def starts(samples, length, stride):
    """Starts every stride, the last one ending at the end (one start when length ≥ samples)."""
    if length >= samples:
        return [0]
    out = list(range(0, samples - length + 1, stride))
    return out + [samples - length] if out[-1] != samples - length else out


def probabilities(session, pre, signal, metadata):
    """(12, samples) float32 mV at the model's rate → (classes,) probabilities: 10 s segments (a shorter record:
    one of its own length), windows over each, sigmoid, the aggregate per segment, the mean over segments. A graph
    whose input is a 'segment' (late fusion) takes each segment whole and windows it itself."""
    rate, n = pre["sampling_rate"], signal.shape[-1]
    segment = min(n, pre["segment_seconds"] * rate)
    window = segment if pre["input"] == "segment" else pre["window"]
    if n < pre["input_samples_min"]:  # ecgnet.preprocessing.short_records: not scored
        raise SystemExit(f"{n / rate:g} s long: shorter than the {pre['input_samples_min'] / rate:g} s the model's "
                         "input takes")
    per_segment = []
    for s in starts(n, segment, pre["segment_seconds"] * rate):
        x = signal[:, s:s + segment]
        crops = np.stack([x[:, w:w + window] for w in starts(segment, window, pre["stride"] or window)])
        logits = session.run(["logits"], {"signal": crops, "metadata": np.repeat(metadata[None], len(crops), 0)})[0]
        p = 1 / (1 + np.exp(-logits.astype(np.float64)))
        per_segment.append(p.max(0) if pre["aggregate"] == "max" else p.mean(0))
    return np.mean(per_segment, axis=0)


def diagnose(session, meta, path, **patient):
    """One record → {'record', 'probabilities', 'positive' ({class: bool}, empty when withheld), 'withheld'}."""
    pre, calls = meta["preprocessing"], meta["calls"]
    signal, fs, zero_gain, header = read_wfdb(path, pre["leads"])
    given = {k: v for k, v in patient.items() if v is not None}  # what the user gives, else the header's
    features = metadata_vector(pre, **({**header, **given} if pre["uses_metadata"] else {}))
    withheld = withheld_calls(signal, zero_gain, calls["amplitude_bounds"]) if calls["reads_signal"] else []
    if not calls["reads_signal"] and features[4:].all():
        withheld.append("the model reads only age, sex, height and weight, and none is known")
    if fs != pre["sampling_rate"]:  # ecgnet.preprocessing.resample
        ratio = Fraction(pre["sampling_rate"] / fs).limit_denominator(1000)
        signal = resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1, padtype="line")
    p = probabilities(session, pre, signal.astype(np.float32), features)
    thresholds = meta["thresholds"] or {}
    if "site" in meta:  # a site's calibration, then its thresholds (ecgnet.site.apply)
        for k, c in enumerate(meta["classes"]):
            m = meta["site"]["calibrators"][c]
            if m["kind"] == "temperature":  # p' = σ(logit(p) / T), p clipped to [1e-7, 1 − 1e-7] (site.apply)
                q = np.clip(p[k], 1e-7, 1 - 1e-7)
                p[k] = 1 / (1 + np.exp(-np.log(q / (1 - q)) / m["temperature"]))
            elif m["kind"] == "isotonic":
                p[k] = np.interp(p[k], m["x"], m["y"])
        thresholds = meta["site"]["thresholds"]
    positive = {} if withheld else {c: bool(p[k] >= thresholds[c])
                                    for k, c in enumerate(meta["classes"]) if c in thresholds}
    return {"record": str(path), "probabilities": dict(zip(meta["classes"], p.tolist())), "positive": positive,
            "positives": [c for c, yes in positive.items() if yes], "withheld": withheld}


def main():
    parser = argparse.ArgumentParser(description="Diagnose WFDB records with an ONNX file written by `ecgnet export`, "
                                     "following its metadata alone (no ecgnet).")
    parser.add_argument("model", help="a .onnx file written by `ecgnet export`")
    parser.add_argument("records", nargs="+", help="WFDB records (NAME.hea or NAME)")
    parser.add_argument("--age", type=float, help="years (else the header's #Age:)")
    parser.add_argument("--sex", choices=["male", "female"], help="else the header's #Sex:")
    parser.add_argument("--height", type=float, help="cm")
    parser.add_argument("--weight", type=float, help="kg")
    parser.add_argument("--json", action="store_true", help="one JSON list of the results")
    args = parser.parse_args()
    session, meta = load(args.model)
    patient = {k: getattr(args, k) for k in ("age", "sex", "height", "weight")}
    for name, (low, high) in meta["preprocessing"]["metadata_given_ranges"].items():  # refused, as ecgnet does
        value = patient[name]
        if value is not None and not (low <= value <= high or (name == "age" and value == 300)):
            parser.error(f"--{name} {value:g} is outside {low:g}–{high:g}")
    results = [diagnose(session, meta, path, **patient) for path in args.records]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(r["record"])
        for c, p in sorted(r["probabilities"].items(), key=lambda cp: -cp[1]):
            call = {True: "positive", False: "negative"}.get(r["positive"].get(c), "no call")
            print(f"  {c:8s} {p:.4f}  {call}")
        if r["withheld"]:
            print("  calls withheld: " + "; ".join(r["withheld"]))


if __name__ == "__main__":
    main()
