"""Philips XML (``<restingecgdata>``, SierraECG 1.03 and PhilipsECG 1.04/1.04.01/1.04.02, UTF-8 or UTF-16).

The waveform is base64, either uncompressed int16 (lead after lead) or XLI-compressed (one LZW chunk per
lead, then second differences), decoded with the ``sierraecg`` library's LZW decoder and delta decoder;
this module bounds each chunk's output to the declared samples *before* it is decoded further. In XLI
files III, aVR, aVL and aVF are stored as residuals against I and II; which reading is right is decided
on the signal (Einthoven: III = II − I), not assumed. Amplitudes are ``resolution`` µV per unit.
Statements: 1.03's ``<statement><leftstatement>`` and 1.04's ``<codedstatement>`` (modifiers +
``<lhsstatement>``), plus the severity line (``ABNORMAL ECG``).
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np

from ecgnet.data.leads import INDEPENDENT
from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, age_on, sex_from
from ecgnet.data.readers.common import assemble, b64_samples, check_rate, lead_name, number, read_xml, text
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError

STANDARD_ORDER = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
VERSIONS = ("1.03", "1.04", "1.04.01", "1.04.02")


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    path = Path(path)
    root = read_xml(path, limits, "restingecgdata", "a Philips XML file")
    warnings: list[str] = []
    version = text(root.find("documentinfo/documentversion"))
    if version and version not in VERSIONS:
        warnings.append(f"Philips XML version {version} (read as {', '.join(VERSIONS)} are): check the leads")
    wave = root.find("waveforms/parsedwaveforms")
    if wave is None:
        raise ECGNetError(f"{path}: no <waveforms><parsedwaveforms>: a Philips XML file without its waveform")
    chars = root.find("dataacquisition/signalcharacteristics")
    if chars is None:  # a stripped or de-identified export: 1.04's waveform attributes declare rate, resolution, leads
        chars = Element("signalcharacteristics")
    rate = _agreeing(path, "sampling rate", "Hz", text(chars.find("samplingrate")),
                     wave.get("samplespersecond"))
    rate = check_rate(rate, path)
    resolution = _agreeing(path, "resolution", "µV per unit",
                           text(chars.find("signalresolution")) or text(chars.find("resolution")), wave.get("resolution"))
    labels = _labels(wave, chars, path)
    limits.check_signals(len(labels), path)
    compression = (wave.get("compressmethod") or wave.get("compression") or "Uncompressed").strip()
    if (wave.get("dataencoding") or "Base64").strip().lower() != "base64":
        raise ECGNetError(f"{path}: waveform encoding {wave.get('dataencoding')!r} (only Base64 is defined)")
    if wave.get("durationperchannel"):
        samples = int(round(number(wave.get("durationperchannel"), "durationperchannel", path) * rate / 1000))
    elif compression.upper() == "XLI":
        raise ECGNetError(f"{path}: an XLI waveform without durationperchannel (samples per lead)")
    else:  # uncompressed: the block's own length says it
        samples = (len("".join((wave.text or "").split())) * 3 // 4) // (2 * len(labels))
        warnings.append(f"no durationperchannel: {samples} samples per lead taken from the data's length")
    limits.check_samples(samples, len(labels), rate, path)
    if compression.upper() == "XLI":
        digital = _xli(wave.text or "", len(labels), samples, limits, path)
    elif compression.lower() in ("uncompressed", "none", ""):
        flat = b64_samples(wave.text or "", "<i2", samples * len(labels), path, "waveform")
        digital = flat.reshape(len(labels), samples).astype(np.int64)
    else:
        raise ECGNetError(f"{path}: waveform compression {compression!r} is not read (XLI or uncompressed)")
    digital = _limb_leads(digital, labels, warnings, residuals=compression.upper() == "XLI")
    leads = {}
    for label, values in zip(labels, digital):
        name = lead_name(label)
        if name is not None:
            leads[name] = values * resolution / 1000.0
    return assemble(path, leads, rate, "philips-xml", statements=_statements(root), patient=_patient(root),
                    warnings=warnings, age=_age(root), sex=sex_from(text(root.find("patient/generalpatientdata/sex"))))


def _agreeing(path: Path, what: str, unit: str, first: str, second: str | None) -> float:
    """One value declared in two places (signal characteristics, the waveform's attributes): they must agree."""
    values = [number(v, what, path) for v in (first, second) if v not in (None, "")]
    if not values:
        raise ECGNetError(f"{path}: declares no {what}")
    if len(values) == 2 and values[0] != values[1]:
        raise ECGNetError(f"{path}: declares two {what}s: {values[0]:g} {unit} (signalcharacteristics) and "
                          f"{values[1]:g} {unit} (parsedwaveforms)")
    return values[0]


def _labels(wave, chars, path: Path) -> list[str]:
    labels = (wave.get("leadlabels") or "").split()
    if labels:
        n = int(number(wave.get("numberofleads", len(labels)), "numberofleads", path))
        return labels[:n]
    acquisition = text(chars.find("acquisitiontype")) or text(chars.find("leadset"))
    n = int(number(text(chars.find("numberchannelsallocated"), "12"), "numberchannelsallocated", path))
    if acquisition.upper() in ("STD-12", "10-WIRE") and n <= 12:
        return STANDARD_ORDER[:n]
    raise ECGNetError(f"{path}: no lead labels and lead set {acquisition!r} with {n} channels (not STD-12)")


def _xli(data: str, n_leads: int, samples: int, limits: ReadLimits, path: Path) -> np.ndarray:
    """XLI chunks → (leads, samples) int values; each chunk's LZW output is cut off at the declared size."""
    import base64
    import binascii
    import re

    from sierraecg.lzw import LzwDecoder
    from sierraecg.xli import xli_decode_deltas

    compact = re.sub(r"\s+", "", data)
    if len(compact) > 2 * limits.max_file_bytes:
        raise ECGNetError(f"{path}: waveform of {len(compact)} base64 characters, over the file budget")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ECGNetError(f"{path}: waveform: bad base64 ({e})") from e
    out, offset, want = [], 0, 2 * samples
    while offset < len(raw) and len(out) < n_leads:
        if offset + 8 > len(raw):
            raise ECGNetError(f"{path}: XLI waveform truncated in the header of lead {len(out) + 1}")
        size = int.from_bytes(raw[offset:offset + 4], "little", signed=True)
        start = int.from_bytes(raw[offset + 6:offset + 8], "little", signed=True)
        if size <= 0 or offset + 8 + size > len(raw):
            raise ECGNetError(f"{path}: XLI lead {len(out) + 1} declares {size} bytes, the data holds "
                              f"{len(raw) - offset - 8}: truncated or corrupt")
        try:
            decoder = LzwDecoder(raw[offset + 8:offset + 8 + size], bits=10)
            buffer = []
            while len(buffer) < want and (b := decoder.read()) != -1:  # never more than the declared samples
                buffer.append(b & 0xFF)
            if len(buffer) < want:
                raise ECGNetError(f"{path}: XLI lead {len(out) + 1} decodes to {len(buffer) // 2} samples, "
                                  f"the file declares {samples}: truncated or corrupt")
            out.append(np.asarray(xli_decode_deltas(buffer, start), dtype=np.int64))
        except (OverflowError, ValueError, IndexError, KeyError) as e:  # damaged LZW codes or deltas
            raise ECGNetError(f"{path}: XLI lead {len(out) + 1} is corrupt ({type(e).__name__}: {e})") from e
        offset += 8 + size
    if len(out) < n_leads:
        raise ECGNetError(f"{path}: XLI waveform holds {len(out)} leads, the file declares {n_leads}")
    return np.stack(out)


def _limb_leads(digital: np.ndarray, labels: list[str], warnings: list[str], residuals: bool) -> np.ndarray:
    """XLI stores III, aVR, aVL, aVF as residuals against I and II (the reference decoder, sierraecg, always rebuilds
    them): rebuild them when that makes III = II − I hold. Only samples where the independent leads differ decide: a
    calibration pulse (1 mV on every lead) or a flat, leads-off recording fits neither reading, and where nothing
    decides the format's own reading stands (``residuals``: rebuilt for XLI, as stored when uncompressed)."""
    names = [lead_name(x) for x in labels]
    if not all(n in names for n in ("I", "II", "III", "AVR", "AVL", "AVF")):
        return digital
    i, ii, iii, avr, avl, avf = (digital[names.index(n)] for n in ("I", "II", "III", "AVR", "AVL", "AVF"))
    rebuilt_iii = ii - i - iii
    rebuilt = {"III": rebuilt_iii, "AVR": -avr - np.floor_divide(i + ii, 2),
               "AVL": np.floor_divide(i - rebuilt_iii, 2) - avl, "AVF": np.floor_divide(ii + rebuilt_iii, 2) - avf}
    independent = digital[[k for k, n in enumerate(names) if n in INDEPENDENT]]
    deciding = ~np.all(independent == independent[:1], axis=0)  # not a calibration pulse or a flat stretch
    as_stored = np.abs(iii - (ii - i))[deciding].mean() if deciding.any() else 0.0
    as_rebuilt = np.abs(rebuilt_iii - (ii - i))[deciding].mean() if deciding.any() else 0.0
    rebuild = as_rebuilt < as_stored or (as_rebuilt == as_stored and residuals)
    if min(as_stored, as_rebuilt) > 2:
        warnings.append("lead III does not equal II − I as stored or rebuilt: limb leads may be wrong")
    if not rebuild:
        return digital
    out = digital.copy()
    for name, values in rebuilt.items():
        out[names.index(name)] = values
    return out


def _statements(root) -> list[str]:
    interp = root.find("interpretations/interpretation")
    if interp is None:
        return []
    lines = [text(s.find("leftstatement")) for s in interp.findall("statement")]
    for coded in interp.iter("codedstatement"):
        if (coded.get("deleted") or "False").lower() == "true":
            continue
        modifiers = [text(m) for m in coded.iter("modifier") if text(m)]
        lhs = text(coded.find("unparsedstatement/lhsstatement")) or text(coded.find(".//lhsstatement"))
        lines.append(" ".join([*modifiers, lhs]))
    severity = text(interp.find("severity")).strip(" -")
    if severity:
        lines.append(severity)
    return list(dict.fromkeys(x for x in lines if x))  # 1.04 repeats its statements as <statement> lines


def _patient(root) -> dict:
    general = root.find("patient/generalpatientdata")
    acq = root.find("dataacquisition")
    out = {}
    if general is not None:
        name = " ".join(x for x in (text(general.find("name/firstname")), text(general.find("name/lastname"))) if x)
        out.update(id=text(general.find("patientid")), name=name, birth_date=text(general.find("age/dateofbirth")))
    if acq is not None:
        out.update(acquired=" ".join(x for x in (acq.get("date"), acq.get("time")) if x),
                   device=text(acq.find("machine")))
    return out


def _age(root) -> float | None:
    age = root.find("patient/generalpatientdata/age")
    if age is None:
        return None
    years = age_from(text(age.find("years")))
    if years is not None:
        return years
    birth, acquired = text(age.find("dateofbirth")), (root.find("dataacquisition") or {}).get("date") \
        if root.find("dataacquisition") is not None else None
    years = age_on(birth, acquired)
    if years is not None:
        return years
    return age_from(age.get("defaultage")) if age.get("defaultage") else None
