"""A patient's age, sex, height and weight as a user gives them (CLI options, the viewer's form),
checked at the boundary: a number must be finite and plausible, or the request is refused with one
:class:`ECGNetError` naming the field (the CLI's usage error, the server's 422) — ``inf`` once reached the
model as a scaled infinity and the JSON answer as ``Infinity``.

The ranges are wide on purpose (they reject units mix-ups and junk, not unusual patients); PTB-XL's own
ranges are inside them (age 2–95 with 300 for "over 89", height 6–209 cm, weight 5–250 kg).
"""

from __future__ import annotations

import math
import re

from ecgnet.errors import ECGNetError

RANGES = {"age": (0.0, 130.0, "years"), "height": (20.0, 260.0, "cm"), "weight": (0.5, 500.0, "kg")}
PTBXL_OVER_89 = 300.0  # PTB-XL's code for an age over 89 (read as 90 by the models), accepted as such
SEXES = {"male": "male", "m": "male", "female": "female", "f": "female"}
NUMBERED_SEX = ("is a number, which sites write either way (PTB-XL: 0 male, 1 female; others: 1 male, 2 female): "
                "write male/female or M/F")  # refused everywhere a user gives a sex: a flip would be silent


class PatientError(ECGNetError):
    """An implausible patient field; ``status`` is the HTTP status the viewer answers with."""

    status = 422


def check_patient(age=None, sex=None, height=None, weight=None, plausible: bool = True) -> dict:
    """The fields if each is missing (None) or plausible — sex written 'male' or 'female' — else a
    :class:`PatientError`. ``plausible=False``: finite numbers and a known sex only, no ranges (a dataset's
    own values, which its models were trained on: PTB-XL records a height of 6 cm)."""
    values = {"age": age, "height": height, "weight": weight}
    for name, value in values.items():
        if value is None:
            continue
        low, high, unit = RANGES[name]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PatientError(f"{name} must be a number of {unit}, not {str(value)[:20]!r}") from None
        if not plausible and not math.isfinite(number):
            raise PatientError(f"{name} must be a finite number of {unit}, not {str(value)[:20]!r}")
        if not plausible or (name == "age" and number == PTBXL_OVER_89):
            continue
        if not math.isfinite(number) or not low <= number <= high:
            raise PatientError(f"{name} {str(value)[:20]} is not a plausible {name} "
                               f"(a finite number of {unit} in {low:g}–{high:g}"
                               + (", or PTB-XL's 300 for over 89)" if name == "age" else ")"))
    if sex is not None and _is_number(sex):
        raise PatientError(f"sex {str(sex).strip()[:20]!r} {NUMBERED_SEX}")
    if sex is not None and str(sex).strip().lower() not in SEXES:
        raise PatientError(f"sex must be male or female (or M/F), not {str(sex)[:20]!r}")
    return {**values, "sex": None if sex is None else SEXES[str(sex).strip().lower()]}


def _is_number(value) -> bool:
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


def sex_from(value) -> str | None:
    """A file's sex field — 'M', 'Male', 'MALE', 'f' … — as 'male' / 'female'; None when unknown."""
    return {"m": "male", "male": "male", "f": "female", "female": "female"}.get(str(value or "").strip().lower())


def age_from(value) -> float | None:
    """A file's age field in years; None when unknown or implausible. An age withheld for privacy — '>89' (LUDB
    and others) or PTB-XL's 300 — is 90, as the models read it."""
    text = str(value if value is not None else "").strip()
    try:
        age = float(text.removeprefix(">").strip())
    except ValueError:
        return None
    if text.startswith(">") or age == PTBXL_OVER_89:
        return 90.0 if age in (89.0, PTBXL_OVER_89) else None  # '>40' says too little to use
    return age if math.isfinite(age) and 0 <= age < 150 else None


# GE MUSE writes dates MM-DD-YYYY (then the AcquisitionTime HH:MM[:SS] where the reader joined one)
MUSE_DATE = re.compile(r"(\d{2})-(\d{2})-(\d{4})(?: (\d{2}):(\d{2})(?::(\d{2}))?)?")


def stated_age_warning(age: float | None, patient: dict, source_format: str | None = None) -> str | None:
    """A warning when a file's stated age (what the models read) and the age its birth and acquisition dates
    give differ by two years or more (a year is a birthday's rounding); None when they agree or either is
    missing. A '>89' age (90) against dates giving 90 or more agrees."""
    def day(value):
        m = MUSE_DATE.fullmatch(str(value or "").strip()) if source_format == "muse-xml" else None
        return f"{m.group(3)}-{m.group(1)}-{m.group(2)}" if m else value

    from_dates = age_on(day(patient.get("birth_date")), day(patient.get("acquired")))
    if age is None or from_dates is None or abs(from_dates - age) < 2 or (age == 90 and from_dates >= 89):
        return None
    return (f"the file states age {age:g}, but its birth and acquisition dates give {from_dates:g}: the stated age "
            "is the one a model with patient data reads (check it; an age given with the record overrides it)")


def age_on(birth, day) -> float | None:
    """Completed years from ``birth`` to ``day`` (``datetime.date`` objects, or strings that start with a date:
    ISO '1961-05-20', DICOM/HL7 '19610520', '20200501T103000', '20240102101112.000'); None when either is missing,
    has no day ('1961'), or the age is implausible."""
    from datetime import date

    def as_date(value):
        if isinstance(value, date):
            return value
        match = re.match(r"(\d{4})-?(\d{2})-?(\d{2})(?!\d)|(\d{4})(\d{2})(\d{2})", str(value or "").strip())
        if match is None:  # reduced precision ('1961') or no date: no exact age
            raise ValueError(value)
        year, month, day = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
        return date(year, month, day)
    try:
        b, d = as_date(birth), as_date(day)
    except (TypeError, ValueError):
        return None
    return age_from(d.year - b.year - ((d.month, d.day) < (b.month, b.day)))
