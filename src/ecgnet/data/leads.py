"""The 12 standard leads: their names as ECGNet writes them, the many ways devices and files label them,
and the four limb leads that are linear combinations of I and II (what a reader derives when a file
stores only the 8 independent leads)."""

from __future__ import annotations

import re

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")  # the others follow from I and II

# Einthoven/Goldberger: the four limb leads that are linear combinations of I and II.
LIMB_FROM_I_II = {
    "III": lambda i, ii: ii - i,
    "AVR": lambda i, ii: -(i + ii) / 2,
    "AVL": lambda i, ii: i - ii / 2,
    "AVF": lambda i, ii: ii - i / 2,
}
_ALIASES = {"DI": "I", "DII": "II", "DIII": "III", "LEADI": "I", "LEADII": "II", "LEADIII": "III",
            "EINTHOVENI": "I", "EINTHOVENII": "II", "EINTHOVENIII": "III",  # not "1"/"ECG1": Holter channels
            # electrode pairs, positive electrode first (polysomnography EDFs: 'ECG LA-RA'); 'RA-LA' is −I: no lead
            "LARA": "I", "LLRA": "II", "LLLA": "III"}


# a minus at the start, or after a space or an underscore, directly before a lead's name ('-aVR', 'Lead -aVR',
# 'MDC_ECG_LEAD_-aVR'); a separator is not one: 'ECG-I' (a prefix's hyphen), 'ECG - I' (a spaced dash)
_INVERTED = re.compile(r"(^|[\s_])-(a?v[rlf]|i{1,3}|v[1-6])\b", re.IGNORECASE)


def inverted(label: str) -> bool:
    """Whether a label names an inverted lead: '-aVR', 'Lead -aVR', 'MDC_ECG_LEAD_-aVR' (not 'ECG-I')."""
    return bool(_INVERTED.search(str(label)))


def lead_name(label: str) -> str | None:
    """A device's label for a lead (``I``, ``Lead II``, ``ECG-I``, ``MDC_ECG_LEAD_AVR``, ``aVL``, ``V5``,
    ``DIII``) → the LEADS name, or None for anything else (an extra lead, a rhythm channel)."""
    if inverted(label):  # the inverted lead is not the standard one
        return None
    name = re.sub(r"\(.*?\)", "", str(label)).split(",")[0]  # "Lead I (Einthoven)", "Lead aVR, augmented …"
    name = re.sub(r"[\s_\-]", "", name).upper()
    name = re.sub(r"^(MDCECGLEAD|ECGLEAD|EKGLEAD|LEAD|ECG|EKG)", "", name)
    name = _ALIASES.get(name, name)
    return name if name in LEADS else None


def display(lead: str) -> str:
    """A LEADS name as ECG papers write it (aVR, aVL, aVF)."""
    return {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}.get(lead, lead)
