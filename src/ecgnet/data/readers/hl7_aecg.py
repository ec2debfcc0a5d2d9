"""HL7 annotated ECG (``<AnnotatedECG xmlns="urn:hl7-org:v3">``, FDA aECG).

The rhythm ``series`` (not a ``derivedSeries`` of representative beats) holds a ``sequenceSet``: one
time sequence whose ``increment`` is the sampling interval, and one ``SLIST_PQ`` sequence per lead
(``MDC_ECG_LEAD_I`` …) with ``origin`` + ``scale`` × ``digits``. Leads not recorded (III, aVR, aVL, aVF
in some files) are derived from I and II. Statements: the annotations of interpretation
(``MDC_ECG_INTERPRETATION_STATEMENT``) and of the rhythm (``MDC_ECG_RHY``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ecgnet.data.leads import INDEPENDENT
from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, age_on, sex_from
from ecgnet.data.readers.common import assemble, check_rate, lead_name, number, read_xml, text, units_to_mv
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    path = Path(path)
    root = read_xml(path, limits, "AnnotatedECG", "an HL7 aECG file")
    series = _rhythm_series(root, path)
    warnings: list[str] = []
    rates, leads, start = set(), {}, None
    # the series' own sequence sets (a derivation's representative beat is not the recording); several sets of
    # one start time are one recording split by lead group (limb, chest); a set of another time (3×4 strips
    # recorded one after another) is not merged
    for sset in series.findall("component/sequenceSet") or list(series.iter("sequenceSet")):
        head = _start_time(sset)
        if leads and (head is None or start is None or head != start):
            if len(leads) < len(INDEPENDENT) and any(lead_name(_code(q)) for q in sset.iter("sequence")):
                raise ECGNetError(f"{path}: the rhythm series holds {len(leads)} leads in its first sequence set and "
                                  "more in another " + ("that starts later: strips recorded one after another (a 3×4 "
                                  "layout), not a simultaneous 12-lead recording" if head and start else
                                  "without start times to tell one recording from strips recorded one after another"))
            break
        seqs = [s for s in sset.iter("sequence")]
        limits.check_signals(len(seqs), path)
        for seq in seqs:
            code = _code(seq)
            value = seq.find("value")
            if value is None:
                continue
            if code.startswith("TIME_"):
                rates.add(_rate(value, path))
                continue
            name = lead_name(code)
            if name is None:
                if code:
                    warnings.append(f"sequence {code} is not one of the 12 standard leads: ignored")
                continue
            if name in leads:
                continue  # a second sequenceSet repeating a lead: the first is the recording
            leads[name] = (code, value)
        if leads and start is None:
            start = head  # None: no start time to match another set by; none is merged
    if not rates:
        raise ECGNetError(f"{path}: the rhythm series declares no time increment (sampling rate)")
    if len(rates) > 1:
        raise ECGNetError(f"{path}: the rhythm series declares different sampling rates: "
                          f"{', '.join(f'{r:g} Hz' for r in sorted(rates))}")
    rate = rates.pop()
    signals = {}
    for name, (code, value) in leads.items():
        digits = text(value.find("digits"))
        limits.check_samples(_count_tokens(digits), len(leads), rate, path)  # before the text is split
        try:
            values = np.array(digits.split(), dtype=np.float64)
        except ValueError as e:
            raise ECGNetError(f"{path}: {code}: the digits are not numbers ({e})") from e
        scale, origin = value.find("scale"), value.find("origin")
        if scale is None:
            raise ECGNetError(f"{path}: {code}: no <scale> (amplitude per digit)")
        factor = number(scale.get("value", "?"), f"{code}'s scale", path) * units_to_mv(scale.get("unit"), path)
        offset = 0.0 if origin is None else (number(origin.get("value", "0"), f"{code}'s origin", path)
                                             * units_to_mv(origin.get("unit") or scale.get("unit"), path))
        signals[name] = values * factor + offset
    return assemble(path, signals, rate, "hl7-aecg", statements=_statements(root), patient=_patient(root),
                    warnings=warnings, age=_age(root), sex=_sex(root))


def _rhythm_series(root, path: Path):
    series = [s for s in root.iter("series")]
    if not series:
        raise ECGNetError(f"{path}: no waveform <series> in the aECG")
    for s in series:
        code = s.find("code")
        if code is not None and (code.get("code") or "").upper() == "RHYTHM":
            return s
    return series[0]


def _code(seq) -> str:
    return (seq.find("code").get("code") if seq.find("code") is not None else "") or ""


def _start_time(sset) -> tuple | None:
    """When a sequence set starts, comparable across sets: its TIME_ABSOLUTE head as an instant (HL7 TS: the same
    instant written '20240102101112' or '20240102101112.000' is equal), or its TIME_RELATIVE head in seconds;
    None when it gives neither."""
    for seq in sset.iter("sequence"):
        code = _code(seq)
        head = seq.find("value/head")
        if head is None or not code.startswith("TIME_"):
            continue
        value = (head.get("value") or "").strip()
        if code == "TIME_ABSOLUTE":
            match = re.match(r"(\d{4,14})(\.\d+)?", value)
            return None if match is None else ("absolute", match.group(1).ljust(14, "0"), float(match.group(2) or 0))
        try:
            return ("relative", float(value) * _SECONDS.get((head.get("unit") or "s").strip(), 1.0))
        except ValueError:
            return None
    return None


def _rate(value, path: Path) -> float:
    inc = value.find("increment")
    if inc is None:
        raise ECGNetError(f"{path}: the time sequence has no <increment> (sampling interval)")
    unit = (inc.get("unit") or "s").strip()
    if unit not in _SECONDS:
        raise ECGNetError(f"{path}: time increment in {unit!r} (need s or ms)")
    step = number(inc.get("value", "?"), "the time increment", path) * _SECONDS[unit]
    if step <= 0:
        raise ECGNetError(f"{path}: time increment {step:g} s is not positive")
    return check_rate(round(1.0 / step, 6), path)


def _count_tokens(digits: str) -> int:
    """How many whitespace-separated numbers ``digits`` holds, without building the list."""
    if not digits:
        return 0
    b = np.frombuffer(digits.encode("ascii", "replace"), dtype=np.uint8)
    space = (b == 32) | (b == 9) | (b == 10) | (b == 13)
    return int((~space[0]) + np.count_nonzero(space[:-1] & ~space[1:]))


def _statements(root) -> list[str]:
    out = []
    for ann in root.iter("annotation"):
        code = ann.find("code")
        code = (code.get("code") if code is not None else "") or ""
        value = ann.find("value")
        if value is None:
            continue
        if code.startswith("MDC_ECG_INTERPRETATION") or code == "MDC_ECG_RHY":
            out.append(text(value) or value.get("displayName") or "")
    return list(dict.fromkeys(x for x in out if x))


def _subject(root):
    return next(root.iter("subjectDemographicPerson"), None)


def _sex(root) -> str | None:
    person = _subject(root)
    gender = person.find("administrativeGenderCode") if person is not None else None
    return sex_from(gender.get("code")) if gender is not None else None


def _age(root) -> float | None:
    """The reported age (LOINC 21612-7) when it has a value, else from the subject's birthTime to the ECG's
    effectiveTime."""
    for obs in root.iter("relatedObservation"):
        code = obs.find("code")
        if code is not None and code.get("code") == "21612-7":  # LOINC: reported age
            value = obs.find("value")
            if value is not None and (value.get("unit") or "a") in ("a", "yr", "year", "years"):
                age = age_from(value.get("value"))
                if age is not None:  # Philips' aECG export writes the observation without a value: use birthTime
                    return age
    person, effective = _subject(root), root.find("effectiveTime")
    birth = person.find("birthTime") if person is not None else None
    when = next((e.get("value") for e in (effective.find("low"), effective.find("center"), effective)
                 if e is not None and e.get("value")), None) if effective is not None else None
    return age_on(birth.get("value"), when) if birth is not None and when else None


def _patient(root) -> dict:
    out = {}
    subject = next(root.iter("trialSubject"), None)
    if subject is not None and subject.find("id") is not None:
        out["id"] = subject.find("id").get("extension")
    person = _subject(root)
    if person is not None:
        out["name"] = text(person.find("name"))
        birth = person.find("birthTime")
        out["birth_date"] = birth.get("value") if birth is not None else None
    eff = root.find("effectiveTime")
    if eff is not None:
        point = eff.find("center") if eff.find("center") is not None else eff.find("low")
        out["acquired"] = point.get("value") if point is not None else None
    model = next(root.iter("manufacturerModelName"), None)
    out["device"] = text(model)
    return out
