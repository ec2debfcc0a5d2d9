"""GE CardioSoft XML (``<CardiologyXML>``): the format UK Biobank's resting ECGs come in.

The 10 s recording is ``<StripData>``: ``NumberOfLeads``, ``SampleRate`` (Hz), ``ChannelSampleCountTotal``
and ``Resolution`` (µV per unit, ``uVperLsb``), then one ``<WaveformData lead="I">`` per lead of
comma-separated integers. ``<MedianSamples>`` (median beats) and ``<FullDisclosure>`` (a longer rhythm of a
few leads) are not the recording and are not read; UK Biobank's exercise ECGs (``<StripData><Strip>``, 3 leads)
are refused as such. Statements: ``Interpretation/Diagnosis/DiagnosisText`` up to the full disclosure's
arrhythmia summary (separator lines of dashes left out). Patient fields: ``PatientInfo`` (PID, name, age,
gender, birth date) and ``ObservationDateTime``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, sex_from
from ecgnet.data.readers.common import assemble, check_rate, lead_name, number, read_xml, text, units_to_mv
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError

_RESOLUTION_UNITS = {"uvperlsb": "uV", "mvperlsb": "mV", "nvperlsb": "nV"}


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    path = Path(path)
    root = read_xml(path, limits, "CardiologyXML", "a GE CardioSoft XML file")
    strip = root.find("StripData")
    if strip is None:
        raise ECGNetError(f"{path}: no <StripData> (the 10 s recording); median beats or full disclosure alone "
                          "are not read")
    if strip.find("Strip") is not None:  # UK Biobank's exercise ECGs: <StripData><Strip>, leads I, 2, 3
        raise ECGNetError(f"{path}: a CardioSoft exercise (stress) ECG (<StripData><Strip>, 3 leads), not a resting "
                          "12-lead ECG")
    waves = strip.findall("WaveformData")
    limits.check_signals(len(waves), path)
    for tag in ("SampleRate", "ChannelSampleCountTotal"):
        if not text(strip.find(tag)):
            raise ECGNetError(f"{path}: <StripData> declares no {tag}")
    rate = check_rate(number(text(strip.find("SampleRate")), "SampleRate", path), path)
    samples = number(text(strip.find("ChannelSampleCountTotal")), "ChannelSampleCountTotal", path, int)
    limits.check_samples(samples, len(waves), rate, path)
    resolution = strip.find("Resolution")
    if resolution is None or not text(resolution):
        raise ECGNetError(f"{path}: <StripData> declares no Resolution (µV per unit)")
    unit = _RESOLUTION_UNITS.get((resolution.get("units") or "uVperLsb").strip().lower())
    if unit is None:
        raise ECGNetError(f"{path}: Resolution in {resolution.get('units')!r} (need uVperLsb)")
    per_unit = number(text(resolution), "Resolution", path)
    if not per_unit > 0:  # 0 flattens every lead; a negative one inverts them all without a word
        raise ECGNetError(f"{path}: <StripData> Resolution {text(resolution)!r} is not a positive amplitude per unit")
    per_unit *= units_to_mv(unit, path)
    leads, warnings = {}, []
    for wave in waves:
        label = (wave.get("lead") or "").strip()
        name = lead_name(label)
        if name is None:
            warnings.append(f"lead {label!r} is not one of the 12 standard leads: ignored")
            continue
        if name in leads:
            raise ECGNetError(f"{path}: <StripData> holds lead {label} twice; which to read is unclear")
        values = (wave.text or "").strip().strip(",")
        count = values.count(",") + 1 if values else 0  # counted before the text is split
        if count != samples:
            raise ECGNetError(f"{path}: lead {label} holds {count} samples, ChannelSampleCountTotal says {samples}"
                              " (truncated or damaged)")
        try:
            leads[name] = np.array(re.split(r"\s*,\s*", values), dtype=np.float64) * per_unit
        except ValueError as e:
            raise ECGNetError(f"{path}: lead {label}: samples that are not numbers ({e})") from e
    return assemble(path, leads, rate, "cardiosoft-xml", statements=_statements(root), patient=_patient(root),
                    warnings=warnings, age=_age(root), sex=sex_from(text(root.find("PatientInfo/Gender"))))


def _statements(root) -> list[str]:
    """The 12SL statements; the full disclosure's arrhythmia summary that follows them ('Arrhythmia results of the
    full-disclosure ECG', 'QRS Complexes: 22') is about the longer recording, not the 10 s read, and is left out."""
    lines = [text(t) for t in root.findall("Interpretation/Diagnosis/DiagnosisText")] or \
        [text(t) for t in root.findall("Interpretation/Conclusion/ConclusionText")]
    out = []
    for line in lines:
        if line.lower().startswith("arrhythmia results of the full-disclosure"):
            break
        if line and set(line) != {"-"}:
            out.append(line)
    return out


def _age(root) -> float | None:
    age = root.find("PatientInfo/Age")
    if age is None or (age.get("units") or "YEARS").strip().upper() not in ("YEARS", "YEAR", "Y"):
        return None
    return age_from(text(age))


def _date(element, time: bool = False) -> str:
    """``<Day>``, ``<Month>``, ``<Year>`` (and ``<Hour>``, ``<Minute>``, ``<Second>``) as ISO 8601; '' if absent."""
    if element is None:
        return ""
    parts = {k: text(element.find(k)) for k in ("Year", "Month", "Day", "Hour", "Minute", "Second")}
    if not all(parts[k].isdigit() for k in ("Year", "Month", "Day")):
        return ""
    out = f"{int(parts['Year']):04d}-{int(parts['Month']):02d}-{int(parts['Day']):02d}"
    if time and all(parts[k].isdigit() for k in ("Hour", "Minute", "Second")):
        out += f" {int(parts['Hour']):02d}:{int(parts['Minute']):02d}:{int(parts['Second']):02d}"
    return out


def _patient(root) -> dict:
    info = root.find("PatientInfo")
    out = {"acquired": _date(root.find("ObservationDateTime"), time=True),
           "device": " ".join(x for x in (text(root.find("ClinicalInfo/DeviceInfo/Desc")),
                                          text(root.find("ClinicalInfo/DeviceInfo/SoftwareVer"))) if x)}
    if info is not None:
        out.update(id=text(info.find("PID")), birth_date=_date(info.find("BirthDateTime")),
                   name=" ".join(x for x in (text(info.find("Name/GivenName")), text(info.find("Name/FamilyName")))
                                 if x))
    return out
