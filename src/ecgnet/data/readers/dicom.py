"""DICOM waveforms (12-lead ECG Waveform Storage, General ECG, or the same waveform filed under another SOP
class), read with pydicom.

The multiplex group with the most ECG leads (``RHYTHM``, an original one on a tie; a ``MEDIAN BEAT`` group
is derived and skipped), joined by any group of its timing holding leads it lacks (limb and chest leads in two
groups), is decoded once the declared channels × samples fit the budget and its ``WaveformData`` holds them.
Samples of the group's ``WaveformPaddingValue`` are no signal: cut at the start or end, refused inside.
Each channel's lead comes from its source code meaning (``Lead I (Einthoven)``, ``Lead aVR``) or the
SCP-ECG code in its code value (``5.6.3-9-61`` = III); amplitudes are (value × sensitivity × correction +
baseline) in the channel's sensitivity units. Statements: the waveform annotations' free
text (``UnformattedTextValue``).
"""

from __future__ import annotations

import io
import re
import struct
import threading
from pathlib import Path

import numpy as np

from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_from, age_on, sex_from
from ecgnet.data.leads import display, inverted
from ecgnet.data.readers.common import assemble, check_file, check_rate, lead_name, number, units_to_mv
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError

ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG Waveform Storage",
}
# SCP-ECG lead codes (EN 1064 table; DICOM's "SCPECG" code values 5.6.3-9-N)
_SCP_LEADS = {1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6", 61: "III", 62: "AVR", 63: "AVL",
              64: "AVF"}
_SCP_INVERTED_AVR = 65  # SCP-ECG's code for −aVR (aVRneg, Cabrera displays)
_DTYPES = {(8, "SB"): "i1", (8, "UB"): "u1", (16, "SS"): "i2", (16, "US"): "u2", (32, "SL"): "i4", (32, "UL"): "u4"}


# pydicom 3.0 has no per-read way to turn value validation off: disable_value_validation() sets the process-wide
# config.settings and, on leaving, restores what it saw on entering. Two reads overlapping in threads (`ecgnet
# serve` reads uploads in worker threads) would let the first restore validation under the second (its UserWarning
# back) and the second then restore 'off' for good; one read at a time keeps the setting as the caller left it.
# (Silencing the warning with warnings.catch_warnings instead is no way out: the warning filters are process-wide too.)
_VALIDATION = threading.Lock()


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    from pydicom.config import disable_value_validation

    try:
        # an over-long label is read as written, without pydicom's UserWarning; the lock: see _VALIDATION
        with _VALIDATION, disable_value_validation():
            return _read(path, limits)
    except (NotImplementedError, struct.error, OSError, EOFError) as e:  # pydicom converts elements when first
        # used: a sequence cut short raises "No tag to read at file position …" (an OSError without errno) only then
        if isinstance(e, OSError) and e.errno is not None:  # the system's (permission, disk): not the file's content
            raise
        raise ECGNetError(f"{path}: cannot be read as DICOM, damaged ({type(e).__name__}: {e})") from e


def _read(path: Path, limits: ReadLimits) -> ECGRecord:
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    data = check_file(path, limits)
    _check_inflated_size(data, path, limits)
    try:
        # from memory (the file is within max_file_bytes): pydicom reads an element of the length it declares,
        # and from a file that length (up to 4 GiB) is allocated even past the end; a BytesIO gives what is there.
        # force: a data set written without its 128-byte preamble and "DICM" (detect.py recognises it)
        ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as e:
        raise ECGNetError(f"{path}: cannot be read as DICOM, truncated or damaged ({type(e).__name__}: {e})") from e
    groups = ds.get("WaveformSequence")
    sop = str(ds.get("SOPClassUID", ""))
    if not groups:
        cut = " — truncated or incomplete?" if sop in ECG_SOP_CLASSES else ""  # an ECG's class, without its ECG
        raise ECGNetError(f"{path}: a DICOM file without a waveform (SOP class {sop or '?'}: "
                          f"{ECG_SOP_CLASSES.get(sop, 'not an ECG')}){cut}")
    chosen = _rhythm_groups(groups, path)
    rate = check_rate(number(chosen[0].get("SamplingFrequency", "?"), "SamplingFrequency", path), path)
    n_samples = int(chosen[0].get("NumberOfWaveformSamples", 0))
    n_channels = sum(int(g.get("NumberOfWaveformChannels", 0)) for g in chosen)
    limits.check_signals(n_channels, path)
    limits.check_samples(n_samples, n_channels, rate, path)
    little_endian = ds.original_encoding[1] is not False  # (Explicit VR) Big Endian: its samples are big-endian
    warnings: list[str] = []
    leads: dict[str, np.ndarray] = {}
    for group in chosen:
        _group_leads(group, path, little_endian, leads, warnings)
    uncalibrated = _uncalibrated(chosen, leads)
    if uncalibrated:
        warnings.append(f"lead(s) {', '.join(display(x) for x in uncalibrated)} without a ChannelSensitivity (or one "
                        "of 0): samples not calibrated (read as 1 sample unit each), amplitudes not trusted")
    notes = [] if len(chosen) == 1 else [f"the leads come from {len(chosen)} multiplex groups of one recording ("
                                         f"{', '.join(repr(str(g.get('MultiplexGroupLabel', ''))) for g in chosen)})"]
    leads = _without_padding(leads, rate, path, warnings, notes)
    if sop not in ECG_SOP_CLASSES:
        notes.append(f"ECG waveform filed under SOP class {sop or '(none)'}, not an ECG storage class")
    return assemble(path, leads, rate, "dicom", statements=_statements(ds), patient=_patient(ds), warnings=warnings,
                    notes=notes, age=_age(ds), sex=sex_from(ds.get("PatientSex")), amplitude_trusted=not uncalibrated)


def _uncalibrated(groups, leads: dict) -> list[str]:
    """The standard leads read whose channel has no ChannelSensitivity, or one of 0 (DICOM requires it of calibrated
    samples; 0 was read as 1)."""
    missing = {_lead(ch)[1] for g in groups for ch in g.get("ChannelDefinitionSequence", [])
               if ch.get("ChannelSensitivity") in (None, "") or float(ch.get("ChannelSensitivity")) == 0}
    return [lead for lead in leads if lead in missing]


def _group_leads(group, path: Path, little_endian: bool, leads: dict[str, np.ndarray], warnings: list[str]) -> None:
    """A multiplex group's standard leads in mV, added to ``leads`` (its size checked against the budget by the
    caller); a sample holding the group's ``WaveformPaddingValue`` (no signal there) is NaN. A lead already read
    (a 13th channel repeating lead II as a rhythm strip) must hold the same signal: two differing ones are refused."""
    n_channels = int(group.get("NumberOfWaveformChannels", 0))
    n_samples = int(group.get("NumberOfWaveformSamples", 0))
    key = (int(group.get("WaveformBitsAllocated", 0)), str(group.get("WaveformSampleInterpretation", "")))
    if "WaveformData" not in group:  # a file cut short inside its waveform sequence
        raise ECGNetError(f"{path}: a waveform group without its samples (no WaveformData): truncated or incomplete")
    if key not in _DTYPES:
        raise ECGNetError(f"{path}: waveform samples of {key[0]} bits, interpretation {key[1]!r}, are not read")
    data = group.get("WaveformData", b"") or b""
    dtype = np.dtype(_DTYPES[key]).newbyteorder("<" if little_endian else ">")
    expected = n_samples * n_channels * dtype.itemsize
    if len(data) < expected:
        raise ECGNetError(f"{path}: WaveformData holds {len(data)} bytes, the waveform declares {n_channels} "
                          f"channels × {n_samples} samples ({expected} bytes): truncated")
    digital = np.frombuffer(data[:expected], dtype=dtype).reshape(n_samples, n_channels).T
    channels = list(group.get("ChannelDefinitionSequence", []))
    if len(channels) != n_channels:
        raise ECGNetError(f"{path}: {len(channels)} channel definitions for {n_channels} channels")
    padded = _padded(digital, bytes(group.get("WaveformPaddingValue", b"") or b""), dtype)
    for i, ch in enumerate(channels):
        label, name = _lead(ch)
        if name is None:
            warnings.append(f"channel {label!r} is not one of the 12 standard leads: ignored")
            continue
        units = ch.get("ChannelSensitivityUnitsSequence")
        unit = str(units[0].get("CodeValue", "")) if units else None
        sensitivity = (float(ch.get("ChannelSensitivity", 1.0) or 1.0)
                       * float(ch.get("ChannelSensitivityCorrectionFactor", 1.0) or 1.0))
        values = (digital[i] * sensitivity + float(ch.get("ChannelBaseline", 0.0) or 0.0)) * units_to_mv(unit, path)
        if padded is not None:
            values[padded[i]] = np.nan
        if name in leads and not np.allclose(leads[name], values, rtol=0, atol=0.01, equal_nan=True):
            raise ECGNetError(f"{path}: lead {display(name)} on two channels holding different signals; which to "
                              "read is unclear")
        leads.setdefault(name, values)


def _padded(digital: np.ndarray, padding: bytes, dtype: np.dtype) -> np.ndarray | None:
    """Where samples hold the group's padding value — one at an end of the sample type's range (0x8000 in 16-bit
    signed samples), which no signal reaches; a padding value inside the range (0) is an ordinary sample too, so
    it marks nothing (None)."""
    if len(padding) < dtype.itemsize:
        return None
    value = np.frombuffer(padding[:dtype.itemsize], dtype)[0]
    info = np.iinfo(dtype)
    return digital == value if value in (info.min, info.max) else None


def _without_padding(leads: dict[str, np.ndarray], rate: float, path: Path, warnings: list[str],
                     notes: list[str]) -> dict[str, np.ndarray]:
    """The leads less the samples a device marked as padding (NaN here: no signal). A lead of padding alone was
    not recorded and is left out; padding at the start or end of the leads is cut; padding inside them is a gap
    in the recording, refused (read as samples, −32768 was −82 mV in V6 and HYP a positive call)."""
    empty = [name for name, values in leads.items() if np.isnan(values).all()]
    if empty:
        warnings.append(f"channel(s) {', '.join(display(x) for x in empty)} hold only the waveform padding value "
                        "(not recorded): left out")
    leads = {name: values for name, values in leads.items() if name not in empty}
    if not leads:
        if empty:
            raise ECGNetError(f"{path}: every lead holds only the waveform padding value: no signal recorded")
        return leads  # no standard lead at all: assemble says so
    gaps = np.any(np.isnan(np.stack(list(leads.values()))), axis=0)
    if not gaps.any():
        return leads
    valid = np.flatnonzero(~gaps)
    padded = [display(name) for name, values in leads.items() if np.isnan(values).any()]
    if valid.size == 0 or valid[-1] - valid[0] + 1 != valid.size:
        raise ECGNetError(f"{path}: lead(s) {', '.join(padded)} hold the waveform padding value (no signal) inside "
                          "the recording: gaps in its leads are not read")
    start, end = int(valid[0]), int(valid[-1]) + 1
    cut = [f"{n / rate:.3g} s at the {where}" for n, where in ((start, "start"), (len(gaps) - end, "end")) if n]
    notes.append(f"cut {' and '.join(cut)} where lead(s) {', '.join(padded)} hold the waveform padding value "
                 "(no signal)")
    return {name: values[start:end] for name, values in leads.items()}


def _check_inflated_size(data: bytes, path: Path, limits: ReadLimits) -> None:
    """A data set in the Deflated Explicit VR Little Endian transfer syntax must inflate to at most
    ``max_file_bytes`` — pydicom inflates it whole, and 1 MiB of deflate can hold 1 GiB: measured here, a
    chunk at a time, before pydicom reads it."""
    import zlib

    syntax, start = _transfer_syntax(data)
    if syntax != "1.2.840.10008.1.2.1.99":  # Deflated Explicit VR Little Endian
        return
    inflate, pending, size = zlib.decompressobj(-zlib.MAX_WBITS), data[start:], 0
    try:
        while pending and size <= limits.max_file_bytes:
            size += len(inflate.decompress(pending, 1 << 20))
            pending = inflate.unconsumed_tail
    except zlib.error as e:
        raise ECGNetError(f"{path}: cannot be read as DICOM, its deflated data set is damaged ({e})") from e
    if size > limits.max_file_bytes:
        raise ECGNetError(f"{path}: a deflated DICOM data set that inflates to over {limits.max_file_bytes} bytes, "
                          "the limit of max_file_bytes")


def _transfer_syntax(data: bytes) -> tuple[str | None, int]:
    """(the file meta group's TransferSyntaxUID, the offset after the group) from the bytes — the group is
    explicit VR little endian after the preamble and 'DICM'; (None, 0) without one."""
    at, syntax = 132, None
    if data[128:132] != b"DICM":
        return None, 0
    while at + 8 <= len(data) and data[at:at + 2] == b"\x02\x00":  # group 0002
        element, vr = struct.unpack_from("<H", data, at + 2)[0], data[at + 4:at + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            if at + 12 > len(data):
                break
            length, head = struct.unpack_from("<I", data, at + 8)[0], 12
        else:
            length, head = struct.unpack_from("<H", data, at + 6)[0], 8
        if element == 0x0010:
            syntax = data[at + head:at + head + length].rstrip(b"\x00 ").decode("ascii", "replace")
        at += head + length
    return syntax, at


def _rhythm_groups(groups, path: Path) -> list:
    """The multiplex group with the most standard leads among those not median beats (an original one on a
    tie), then any other of its timing (rate, length, time offset) that holds leads it lacks: the IODs allow
    the 12 leads in several groups (limb leads in one, chest leads in another)."""
    candidates = [g for g in groups if "MEDIAN" not in str(g.get("MultiplexGroupLabel", "")).upper()]
    if not candidates:
        raise ECGNetError(f"{path}: holds only median-beat waveforms, no rhythm recording")

    def leads(g) -> set:
        return {_lead(ch)[1] for ch in g.get("ChannelDefinitionSequence", [])} - {None}

    def timing(g) -> tuple:
        return tuple(_value(g.get(k)) for k in ("SamplingFrequency", "NumberOfWaveformSamples",
                                                 "MultiplexGroupTimeOffset"))

    best = max(candidates, key=lambda g: (len(leads(g)), str(g.get("WaveformOriginality", "ORIGINAL")).upper()
                                          == "ORIGINAL"))
    chosen, have = [best], leads(best)
    for g in candidates:
        if g is not best and timing(g) == timing(best) and leads(g) - have:
            chosen.append(g)
            have |= leads(g)
    return chosen


def _value(value) -> float | str:
    """A DS/US element as a number to compare ('500' = '500.0'; absent: 0), or its text when it is none."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return str(value)


def _lead(ch) -> tuple[str, str | None]:
    src = ch.get("ChannelSourceSequence")
    if not src:
        return str(ch.get("ChannelLabel", "?")), lead_name(str(ch.get("ChannelLabel", "")))
    meaning, code = str(src[0].get("CodeMeaning", "")), str(src[0].get("CodeValue", ""))
    m = re.fullmatch(r"(?:5\.6\.3-9-|2:)(\d+)", code)  # SCP-ECG lead code, or MDC's 2:N (same numbers)
    label = str(ch.get("ChannelLabel", ""))  # free text: used only when the coded source names no lead
    if (m and int(m.group(1)) == _SCP_INVERTED_AVR) or inverted(meaning):
        return meaning or code, None  # −aVR by its code or meaning: not the standard lead, whatever the other says
    name = lead_name(meaning) or lead_name(label)
    if name is None and m:
        name = _SCP_LEADS.get(int(m.group(1)))
    if name is None and code.startswith("MDC_ECG_LEAD_"):
        name = lead_name(code)
    return meaning or code, name


def _statements(ds) -> list[str]:
    out = [str(a.get("UnformattedTextValue", "")).strip() for a in ds.get("WaveformAnnotationSequence", [])]
    return list(dict.fromkeys(x for x in out if x))


def _name(value) -> str:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``) as "Family, Given Middle" — which part is
    the family name stays visible, the carets do not."""
    parts = (str(value or "").split("=")[0].split("^") + [""] * 5)[:5]  # the alphabetic group, of up to three
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    first = " ".join(x for x in (prefix, given, middle) if x)
    return ", ".join(x for x in (" ".join(x for x in (family, suffix) if x), first) if x)


def _acquired(ds) -> str:
    """When the waveform was acquired: AcquisitionDateTime, else the first of the acquisition's, the content's
    and the study's date, with its time when the file has one (compact DICOM DA + TM, as the page reads them)."""
    if ds.get("AcquisitionDateTime"):
        return str(ds.get("AcquisitionDateTime"))
    for date, time in (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"),
                       ("StudyDate", "StudyTime")):
        if ds.get(date):
            return str(ds.get(date)).strip() + str(ds.get(time, "") or "").strip()
    return ""


def _age(ds) -> float | None:
    """PatientAge ('055Y', '006M', '010W', '003D'), else from PatientBirthDate to the acquisition's date."""
    age = str(ds.get("PatientAge", "") or "").strip()
    per_year = {"Y": 1, "M": 12, "W": 52.1775, "D": 365.25}
    if age[-1:] in per_year and age[:-1].isdigit():
        return age_from(round(int(age[:-1]) / per_year[age[-1]], 2))
    acquired = next((str(ds.get(k)) for k in ("AcquisitionDateTime", "AcquisitionDate", "ContentDate", "StudyDate")
                     if ds.get(k)), None)
    return age_on(ds.get("PatientBirthDate"), acquired)


def _patient(ds) -> dict:
    return {"id": str(ds.get("PatientID", "") or ""), "name": _name(ds.get("PatientName")),
            "birth_date": str(ds.get("PatientBirthDate", "") or ""),
            "acquired": _acquired(ds),
            "device": " ".join(str(ds.get(k, "") or "") for k in ("Manufacturer", "ManufacturerModelName")).strip()}
