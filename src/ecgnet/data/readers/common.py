"""What every format reader shares: lead names, the 12-lead assembly (deriving the limb leads a device did
not store), units, safe XML parsing and the file-size budget.

A reader collects ``{lead name: samples in mV}`` at one rate and hands it to :func:`assemble`, which
refuses what cannot be a 12-lead ECG (only 3 leads, a missing precordial lead, leads of different lengths)
with one :class:`ECGNetError` naming the file, and derives III, aVR, aVL, aVF from I and II when the file
holds only the 8 independent leads (GE MUSE does), saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ecgnet.data.leads import LIMB_FROM_I_II, lead_name  # noqa: F401 (readers import lead_name from here)
from ecgnet.data.leads import display as _display
from ecgnet.data.limits import ReadLimits
from ecgnet.data.records import LEADS, NO_ECG, UNITS_TO_MV, ECGRecord
from ecgnet.errors import ECGNetError


def units_to_mv(unit: str | None, path: Path, default: str = "uV") -> float:
    """The factor from ``unit`` (mV, uV, µV, V, 'MICROVOLTS' …; None → ``default``) to mV."""
    key = (unit or default).strip().lower()
    if key not in UNITS_TO_MV:
        raise ECGNetError(f"{path}: unknown amplitude units {unit!r} (need V, mV, µV or nV)")
    return UNITS_TO_MV[key]


def check_file(path: Path, limits: ReadLimits) -> bytes:
    """The file's bytes, once its size is within ``limits`` (one clear error if it is not readable)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ECGNetError(f"{path}: cannot be read ({e.strerror or e})") from e
    limits.check_file_bytes(size, path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ECGNetError(f"{path}: cannot be read ({e.strerror or e})") from e


def parse_xml(data: bytes, path: Path):
    """The root element of ``data``, parsed with defusedxml (no entity expansion, no external entities or
    DTD fetching: the files are hostile until read). Namespaces are stripped from tags, so
    ``{urn:hl7-org:v3}series`` is ``series``."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=False)  # MUSE files carry a DOCTYPE line (no entities)
    except DefusedXmlException as e:
        raise ECGNetError(f"{path}: refused XML construct ({type(e).__name__}: entity or external "
                          "reference in a hostile file?)") from e
    except Exception as e:  # ParseError, encoding errors
        raise ECGNetError(f"{path}: not well-formed XML ({type(e).__name__}: {e})") from e
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]
    return root


def read_xml(path: Path, limits: ReadLimits, root_tag: str, what: str):
    """The root element of the XML file ``path`` (within the budget, parsed as :func:`parse_xml` does), refused
    unless it is ``<root_tag>`` — every XML reader's first step; ``what`` names the format ('a GE MUSE XML file')."""
    root = parse_xml(check_file(path, limits), path)
    if root.tag != root_tag:
        raise ECGNetError(f"{path}: not {what} (root <{root.tag}>, expected <{root_tag}>)")
    return root


def text(el, default: str = "") -> str:
    """An element's stripped text (``default`` when the element or its text is missing)."""
    if el is None or el.text is None:
        return default
    return el.text.strip()


def number(value, what: str, path: Path, kind=float):
    """``value`` (a string from the file) as ``kind``, or one clear error naming ``what``."""
    try:
        out = kind(str(value).strip())
    except (TypeError, ValueError) as e:
        raise ECGNetError(f"{path}: {what} is {value!r}, not a number") from e
    if kind is float and not np.isfinite(out):
        raise ECGNetError(f"{path}: {what} is {value!r}, not a finite number")
    return out


def b64_samples(data: str, dtype: str, count: int, path: Path, what: str) -> np.ndarray:
    """``count`` samples of ``dtype`` (e.g. ``<i2``) from base64 text, refusing bad base64 and a block whose
    length disagrees with ``count`` *before* decoding it (the caller has checked ``count`` against the
    budget)."""
    import base64
    import binascii

    compact = re.sub(r"\s+", "", data or "")
    nbytes = count * np.dtype(dtype).itemsize
    if len(compact) > 4 * ((nbytes + 2) // 3) + 4:
        raise ECGNetError(f"{path}: {what}: {len(compact)} base64 characters for {count} declared samples "
                          f"(over {4 * ((nbytes + 2) // 3)})")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ECGNetError(f"{path}: {what}: bad base64 ({e})") from e
    if len(raw) != nbytes:
        raise ECGNetError(f"{path}: {what}: {len(raw)} bytes of samples, the file declares {count} samples "
                          f"({nbytes} bytes): truncated or wrong count")
    return np.frombuffer(raw, dtype=dtype).astype(np.float64)


def check_rate(rate: float, path: Path) -> float:
    if not 10 <= rate <= 100_000:
        raise ECGNetError(f"{path}: sampling rate {rate:g} Hz is outside 10 Hz–100 kHz")
    return float(rate)


def check_lead_count(found: list[str], path: Path) -> None:
    """Refuse a file of 3 standard leads or fewer (``found``: LEADS names): a Holter or rhythm strip."""
    found = [lead for lead in LEADS if lead in found]
    if len(found) <= 3:
        raise ECGNetError(f"{path}: holds {len(found)} standard lead(s) ({', '.join(map(_display, found)) or 'none'}); "
                          f"ECGNet needs 12 (or the 8 independent leads I, II, V1–V6)")


def assemble(path: Path, leads: dict[str, np.ndarray], rate: float, fmt: str, *, statements=(), patient=None,
             warnings=(), notes=(), age=None, sex=None, amplitude_trusted: bool = True) -> ECGRecord:
    """``leads`` ({LEADS name: mV samples}) at ``rate`` Hz → the 12-lead :class:`ECGRecord` at the source rate.

    The limb leads III, aVR, aVL, aVF are derived from I and II when all four are missing (and listed in
    ``derived_leads``); any other gap is an error naming the missing leads."""
    found = [lead for lead in LEADS if lead in leads]
    check_lead_count(found, path)
    lengths = {lead: len(leads[lead]) for lead in found}
    if len(set(lengths.values())) > 1:
        raise ECGNetError(f"{path}: leads of different lengths ({', '.join(f'{k} {v}' for k, v in lengths.items())})")
    if min(lengths.values()) < 2:
        raise ECGNetError(f"{path}: the leads hold no samples")
    derived: list[str] = []
    missing_limb = [lead for lead in LIMB_FROM_I_II if lead not in leads]
    if missing_limb and "I" in leads and "II" in leads:
        if len(missing_limb) < len(LIMB_FROM_I_II):  # a partial set is not a known layout: say so
            warnings = [*warnings, f"derived {', '.join(_display(x) for x in missing_limb)} from I and II (the "
                                   "file does not store them as standard leads: missing, or inverted as −aVR)"]
        i, ii = np.asarray(leads["I"], np.float64), np.asarray(leads["II"], np.float64)
        for lead in missing_limb:
            leads[lead] = LIMB_FROM_I_II[lead](i, ii)
        derived = missing_limb
    missing = [lead for lead in LEADS if lead not in leads]
    if missing:
        raise ECGNetError(f"{path}: lacks lead(s) {', '.join(_display(x) for x in missing)} (found "
                          f"{', '.join(_display(x) for x in found)})")
    with np.errstate(over="ignore", invalid="ignore"):
        signal = np.stack([np.asarray(leads[lead], np.float64) for lead in LEADS])
    if not np.isfinite(signal).all():
        raise ECGNetError(f"{path}: the signal contains NaN or infinite samples")
    if np.all(signal == signal[:1]):  # a leads-off recording: a flat line, perhaps the cart's calibration pulse
        warnings = [*warnings, NO_ECG]
        amplitude_trusted = False
    signal, trimmed = _trim_calibration(signal, rate)
    rec = ECGRecord(path, signal, float(rate), float(rate), list(warnings), amplitude_trusted, age, sex,
                    format=fmt, derived_leads=[_display(d) for d in derived],
                    statements=[s for s in (" ".join(str(s).split()) for s in statements) if s],
                    patient={k: v for k, v in (patient or {}).items() if v not in (None, "")})
    if derived:
        rec.notes.append(f"derived {', '.join(rec.derived_leads)} from I and II (the file stores "
                         f"{len(found)} leads: {', '.join(_display(f) for f in found)})")
    if trimmed:
        rec.notes.append(f"trimmed {trimmed / rate:.2f} s at the end where all 12 leads are identical (the device's "
                         "calibration pulse or blank tail, not ECG)")
    rec.notes.extend(notes)
    return rec


def _trim_calibration(signal: np.ndarray, rate: float) -> tuple[np.ndarray, int]:
    """Cut a tail of ≥ 50 ms where every lead holds the same value (Philips carts append a 1 mV calibration
    pulse on blank leads): no heart makes 12 identical leads. Returns (signal, samples cut)."""
    same = np.all(signal == signal[:1], axis=0)
    if not same[-1]:
        return signal, 0
    differing = np.flatnonzero(~same)
    end = int(differing[-1]) + 1 if differing.size else 0
    cut = signal.shape[1] - end
    if cut < 0.05 * rate or end < rate:  # a short run, or nothing left: keep the signal as it is
        return signal, 0
    return signal[:, :end], cut
