"""GE MUSE XML (``<RestingECG>``): the rhythm waveform, the device's diagnosis statements, patient fields.

MUSE stores the 8 independent leads (I, II, V1–V6) as base64 little-endian int16 with
``LeadAmplitudeUnitsPerBit`` µV per unit; III, aVR, aVL, aVF are derived (and listed in
``derived_leads``). The sampling rate is ``SampleBase × 10^SampleExponent`` of the waveform; some MUSE
exports disagree with themselves (``SampleBase`` 240 while ``ECGSampleBase`` says 250 for 2,500 samples):
the one the device's own ventricular rate confirms (the signal's mean RR interval in samples × bpm) is used, else
the waveform's SampleBase, and a warning says so. (A 10 s rule chose 250 Hz for such a file, though its beats,
141 samples apart at 102 bpm, are 240 Hz: its time ran 4 % fast.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, sex_from
from ecgnet.data.readers.common import (assemble, b64_samples, check_rate, lead_name, number, read_xml, text,
                                        units_to_mv)
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    path = Path(path)
    root = read_xml(path, limits, "RestingECG", "a GE MUSE XML file")
    waveforms = root.findall("Waveform")
    rhythm = [w for w in waveforms if text(w.find("WaveformType")).lower() == "rhythm"]
    if not rhythm:
        kinds = ", ".join(text(w.find("WaveformType"), "?") for w in waveforms) or "none"
        raise ECGNetError(f"{path}: no rhythm waveform (waveforms: {kinds}); a median beat alone is not read")
    wave = rhythm[0]
    lead_data = wave.findall("LeadData")
    limits.check_signals(len(lead_data), path)
    counts = {_declared_samples(ld, path) for ld in lead_data}
    if not lead_data or len(counts) != 1:
        raise ECGNetError(f"{path}: the rhythm waveform's leads declare different sample counts ({sorted(counts)})"
                          if lead_data else f"{path}: the rhythm waveform holds no leads")
    samples = counts.pop()
    warnings: list[str] = []
    rate, alt = _rates(root, wave, path)
    limits.check_samples(samples, len(lead_data), min(rate, alt), path)
    leads = {}
    for ld in lead_data:
        label = text(ld.find("LeadID"))
        name = lead_name(label)
        if name is None:
            warnings.append(f"lead {label!r} is not one of the 12 standard leads: ignored")
            continue
        size = number(text(ld.find("LeadSampleSize"), "2"), "LeadSampleSize", path, int)
        if size != 2:
            raise ECGNetError(f"{path}: lead {label}: {size}-byte samples (MUSE stores 2-byte samples)")
        digital = b64_samples(text(ld.find("WaveFormData")), "<i2", samples, path, f"lead {label}")
        per_bit = number(text(ld.find("LeadAmplitudeUnitsPerBit"), "?"), f"lead {label}'s LeadAmplitudeUnitsPerBit",
                         path)
        leads[name] = digital * per_bit * units_to_mv(text(ld.find("LeadAmplitudeUnits")) or None, path)
    if alt != rate:
        rate = _resolve_rate(root, leads, rate, alt, warnings)
    demo, test = root.find("PatientDemographics"), root.find("TestDemographics")
    age = None
    if demo is not None and text(demo.find("AgeUnits"), "YEARS").upper() == "YEARS":
        age = age_from(text(demo.find("PatientAge")))
    patient = {}
    if demo is not None:
        name = " ".join(x for x in (text(demo.find("PatientFirstName")), text(demo.find("PatientLastName"))) if x)
        patient.update(id=text(demo.find("PatientID")), name=name, birth_date=text(demo.find("DateofBirth")))
    if test is not None:
        patient.update(acquired=" ".join(x for x in (text(test.find("AcquisitionDate")),
                                                     text(test.find("AcquisitionTime"))) if x),
                       device=text(test.find("AcquisitionDevice")), site=text(test.find("SiteName")))
    return assemble(path, leads, rate, "muse-xml", statements=_statements(root), patient=patient,
                    warnings=warnings, age=age, sex=sex_from(text(demo.find("Gender")) if demo is not None else None))


def _declared_samples(ld, path: Path) -> int:
    """``LeadSampleCountTotal``, or ``LeadByteCountTotal`` / ``LeadSampleSize`` where an export omits it."""
    if text(ld.find("LeadSampleCountTotal")):
        return number(text(ld.find("LeadSampleCountTotal")), "LeadSampleCountTotal", path, int)
    if text(ld.find("LeadByteCountTotal")):
        return number(text(ld.find("LeadByteCountTotal")), "LeadByteCountTotal", path, int) // \
            number(text(ld.find("LeadSampleSize"), "2"), "LeadSampleSize", path, int)
    raise ECGNetError(f"{path}: lead {text(ld.find('LeadID'), '?')} declares no sample count "
                      "(LeadSampleCountTotal or LeadByteCountTotal)")


def _rates(root, wave, path: Path) -> tuple[float, float]:
    """(the rhythm waveform's own rate, the measurements' ``ECGSampleBase`` rate — the same when absent)."""
    base = text(wave.find("SampleBase"))
    if not base:
        raise ECGNetError(f"{path}: the rhythm waveform declares no SampleBase (sampling rate)")
    rate = check_rate(number(base, "SampleBase", path) * 10 ** number(text(wave.find("SampleExponent"), "0"),
                                                                       "SampleExponent", path, int), path)
    other = root.find("OriginalRestingECGMeasurements/ECGSampleBase")
    if other is None or not text(other):
        return rate, rate
    exponent = text(root.find("OriginalRestingECGMeasurements/ECGSampleExponent"), "0")
    return rate, check_rate(number(text(other), "ECGSampleBase", path)
                            * 10 ** number(exponent, "ECGSampleExponent", path, int), path)


def _resolve_rate(root, leads: dict, rate: float, alt: float, warnings: list[str]) -> float:
    """Two declared rates (real MUSE 8 exports: SampleBase 240, ECGSampleBase 250, 2,500 samples): the one that
    the device's own ventricular rate confirms — beats counted in the signal, RR in samples × bpm / 60 s — else
    the waveform's own SampleBase. Said in a warning either way."""
    implied = _implied_rate(root, leads, min(rate, alt))
    chosen, why = rate, "the waveform's own SampleBase; the device's ventricular rate could not decide"
    if implied is not None:
        best = min((rate, alt), key=lambda r: abs(r - implied))
        if abs(best - implied) <= 0.02 * best:
            chosen, why = best, f"its beats at the device's ventricular rate imply {implied:.0f} Hz"
    warnings.append(f"conflicting sampling rates: the rhythm waveform's SampleBase says {rate:g} Hz, "
                    f"ECGSampleBase says {alt:g} Hz; read at {chosen:g} Hz ({why})")
    return chosen


def _implied_rate(root, leads: dict, lowest: float) -> float | None:
    """Samples per second that make the signal's mean RR interval (in samples) the device's ventricular rate (a
    mean too: in atrial fibrillation a median RR differs from it by several per cent). Beats are the peaks of each
    lead's slope averaged over 40 ms (a QRS is the steepest part of a beat; baseline wander and an electrode pop
    barely count), and the leads' estimates are summarised by their median, so one noisy lead does not decide."""
    from scipy.signal import find_peaks

    bpm = text(root.find("RestingECGMeasurements/VentricularRate")) or \
        text(root.find("OriginalRestingECGMeasurements/VentricularRate"))
    try:
        bpm = float(bpm)
    except ValueError:
        return None
    if not 20 <= bpm <= 300:
        return None
    estimates, window = [], max(1, int(0.04 * lowest))  # the slope over 40 ms: a QRS, not one noisy sample
    for values in leads.values():
        slope = np.convolve(np.abs(np.diff(values)), np.ones(window) / window, mode="same")
        peaks, _ = find_peaks(slope, height=0.5 * np.percentile(slope, 99.5), distance=max(1, int(0.2 * lowest)))
        if len(peaks) >= 4:  # ≤ 300 beats/min at the lower rate
            estimates.append((peaks[-1] - peaks[0]) / (len(peaks) - 1) * bpm / 60)
    return float(np.median(estimates)) if estimates else None


def _statements(root) -> list[str]:
    """The diagnosis statements, fragments joined into lines at each ``ENDSLINE`` flag."""
    diagnosis = root.find("Diagnosis")
    if diagnosis is None:
        diagnosis = root.find("OriginalDiagnosis")
    if diagnosis is None:
        return []
    lines, current = [], []
    for stmt in diagnosis.findall("DiagnosisStatement"):
        if text(stmt.find("StmtText")):
            current.append(text(stmt.find("StmtText")))
        if any(text(f).upper() == "ENDSLINE" for f in stmt.findall("StmtFlag")) and current:
            lines.append(" ".join(current))
            current = []
    if current:
        lines.append(" ".join(current))
    return lines
