"""The patient fields a file carries, as the printed report and the viewer show them: one "Label: value"
line each (age and sex apart), dates and times in ISO 8601 whatever the format wrote — DICOM DA/DT and HL7 TS
(``19710123``, ``20130125105919``), GE MUSE's ``MM-DD-YYYY`` — so that "03-04-2011" is never read two ways.
"""

from __future__ import annotations

import re
from datetime import datetime

from ecgnet.data.patient import MUSE_DATE
from ecgnet.data.records import ECGRecord

DATE_FIELDS = ("birth_date", "acquired")  # the patient fields holding a date or a date and time
# DICOM DA/DT (+ TM) and HL7 TS: YYYYMM[DD[HH[MM[SS[.f…]]]]][±ZZZZ] (an offset only after a time)
COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(?:(\d{2})(?:(\d{2})(\d{2})?(?:(\d{2})(?:\.(\d{1,6}))?)?([+-]\d{4})?)?)?")


def patient_lines(record: ECGRecord) -> list[str]:
    """The file's patient fields as "Label: value" lines (age and sex apart; empty fields left out), dates
    and times in ISO 8601 whatever the format wrote (:func:`iso_date`)."""
    lines = []
    for key, value in (record.patient or {}).items():
        if key in ("age", "sex") or value is None or not str(value).strip():
            continue
        lines.append(f"{label(key)}: {iso_date(value, record.format) if key in DATE_FIELDS else value}")
    return lines


def iso_date(value, source_format: str | None = None) -> str:
    """``value`` (a patient field's date, or date and time) in ISO 8601 as the page prints it: "1971-01-23",
    "2013-01-25 10:59:19", "2013-01-25 10:59:19.5+01:00". Reads the compact DICOM DA/DT and HL7 TS forms
    (YYYYMMDD[HHMM[SS[.ffffff]]][±ZZZZ], or YYYYMM) from any format and, from ``source_format``
    "muse-xml", GE's MM-DD-YYYY [HH:MM[:SS]]; a value already in ISO form, or one it cannot read as a real
    date, is returned as it is."""
    text = str(value)
    m = COMPACT_DATE.fullmatch(text.strip())
    if m:
        year, month, day, hour, minute, second, fraction, zone = m.groups()
        return _iso(year, month, day, hour, minute, second, fraction, zone) or text
    m = MUSE_DATE.fullmatch(text.strip()) if source_format == "muse-xml" else None
    if m:
        month, day, year, hour, minute, second = m.groups()
        return _iso(year, month, day, hour, minute, second) or text
    return text


def _iso(year: str, month: str, day: str | None, hour: str | None = None, minute: str | None = None,
         second: str | None = None, fraction: str | None = None, zone: str | None = None) -> str | None:
    """The ISO 8601 text of a date (to the month or day) with an optional time (to the minute or second,
    a decimal fraction, a ±HHMM offset), or None where it is no real date or time (month 13, 25 h, …)."""
    try:
        datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    out = f"{year}-{month}" + (f"-{day}" if day else "")
    if hour is None:
        return out
    if minute is None:  # to the hour only (HL7 TS YYYYMMDDHH): not a made-up ":00"
        out += f" {hour} h"
    else:
        out += f" {hour}:{minute}" + (f":{second}" if second else "") + (f".{fraction}" if fraction else "")
    if zone:
        if int(zone[1:3]) > 14 or int(zone[3:]) > 59:
            return None
        out += f"{zone[:3]}:{zone[3:]}"
    return out


def label(key: str) -> str:
    return {"id": "Patient ID", "name": "Name", "birth_date": "Born", "acquired": "Acquired"}.get(
        key, key.replace("_", " ").capitalize())
