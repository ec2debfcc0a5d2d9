"""EDF / EDF+ (and 24-bit BDF), read with edfio.

The fixed header is checked before edfio reads anything: the signal count against the budget, and the
declared data records × samples per record against the budget and against the file's size (a truncated
file is refused, not zero-padded). ECG channels are recognised by label (``I``, ``ECG II``, ``EKG V1``,
``aVR``, ``V1-Ref`` …; a lead on two channels is refused; a label is read as UTF-8, else Latin-1); EDF+ annotation
channels are skipped, other channels ('Resp', 'SpO2', unlabelled) are left out with one warning naming them, and a
file with no ECG channel is refused naming its first few. All ECG channels must share one sampling rate:
:func:`read_channels` gives them before that rule and the 12-lead assembly, each at its own rate, in mV.
The padding MNE appends to fill the last data record (annotated ``BAD_ACQ_SKIP``) is cut.
Patient fields come from the EDF+ patient identification (code, sex, birth date, name); a plain EDF's free
text is kept whole (``identification``). A discontinuous EDF+ (EDF+D) is refused: its segments are not one
signal (data-record onsets that differ from contiguous ones by less than half a sample, a writer's rounding,
are no gap). The budget counts the ECG channels, the only ones decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgnet.data.leads import display
from ecgnet.data.limits import ReadLimits
from ecgnet.data.patient import age_on, sex_from
from ecgnet.data.readers.common import assemble, check_lead_count, check_rate, lead_name, units_to_mv
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError

_MOST_NAMED = 8  # channels named in a warning or error (an EEG montage beside the ECG has dozens)


def read(path: Path, limits: ReadLimits) -> ECGRecord:
    path = Path(path)
    found = read_channels(path, limits)
    rates = sorted({channel.rate for channel in found.channels})
    if len(rates) > 1:
        raise ECGNetError(f"{path}: the ECG channels have different sampling rates "
                          f"({', '.join(f'{r:g}' for r in rates)} Hz)")
    rate = check_rate(rates[0], path)
    notes: list[str] = []
    leads = _without_padding(found.annotations, {c.lead: c.mv for c in found.channels}, rate, notes)
    return assemble(path, leads, rate, "edf", patient=found.patient, warnings=found.warnings, notes=notes,
                    age=found.age, sex=found.sex)


@dataclass(frozen=True)
class Channel:
    """One ECG channel as the file records it: its label, the lead the label names, its rate and its samples in mV."""

    label: str
    lead: str
    rate: float
    mv: np.ndarray


@dataclass(frozen=True)
class Channels:
    """A file's ECG channels, each at its own rate, before the 12-lead rules (one rate, every lead), and what
    the file says beside them: warnings, patient fields, its annotations (edfio's; none when its TALs are malformed)."""

    channels: list[Channel]
    warnings: list[str]
    patient: dict
    age: float | None
    sex: str | None
    annotations: list


def read_channels(path: Path, limits: ReadLimits, twelve_lead: bool = True) -> Channels:
    """The ECG channels of an EDF/BDF file, every check of the header done (budget, truncation, continuity, each lead
    once); ``twelve_lead``: refuse, from the header, a file of 3 leads or fewer (False: read any number of them)."""
    import edfio

    path = Path(path)
    size = path.stat().st_size
    limits.check_file_bytes(size, path)
    with open(path, "rb") as f:
        head = f.read(256)
        bdf = head[:1] == b"\xff"
        try:
            n_signals = int(head[252:256].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            header_bytes = int(head[184:192].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError) as e:
            raise ECGNetError(f"{path}: not a valid {'BDF' if bdf else 'EDF'} header ({e})") from e
        limits.check_signals(n_signals, path)
        if header_bytes != 256 * (n_signals + 1):
            raise ECGNetError(f"{path}: header declares {header_bytes} bytes for {n_signals} signals "
                              f"(need {256 * (n_signals + 1)}): corrupt")
        if size < header_bytes:
            raise ECGNetError(f"{path}: {size} bytes, shorter than its own header ({header_bytes} bytes for "
                              f"{n_signals} signals): truncated")
        signal_header = f.read(256 * n_signals)
    try:
        per_record = [int(signal_header[216 * n_signals + 8 * i: 216 * n_signals + 8 * (i + 1)].decode("ascii").strip())
                      for i in range(n_signals)]
    except (UnicodeDecodeError, ValueError) as e:
        raise ECGNetError(f"{path}: bad samples-per-record field in the signal headers ({e})") from e
    width = 3 if bdf else 2
    if n_records < 0 or any(n < 0 for n in per_record):
        raise ECGNetError(f"{path}: declares {n_records} data records (unknown or negative: a recording "
                          "still being written?)")
    labels = [_label(signal_header[16 * i:16 * (i + 1)]) for i in range(n_signals)]
    ecg = [i for i, label in enumerate(labels) if _lead(label) is not None]  # only these are decoded
    if not ecg:
        signals = _signals(labels)
        said = (f"among its {len(signals)} signals ({_named(signals)})" if len(signals) > 1
                else f"in its one signal ({signals[0]!r})" if signals and signals[0] else
                "in its one signal, unlabelled" if signals else "(annotations only)")
        raise ECGNetError(f"{path}: no ECG lead {said}; ECGNet reads channels labelled as the 12 standard leads "
                          "('I', 'ECG II', 'EKG V1' …)")
    if twelve_lead:
        check_lead_count([_lead(labels[i]) for i in ecg], path)  # a 3-lead Holter: said first, not its length
    _check_each_lead_once([labels[i] for i in ecg], path)
    field = head[244:252].decode("latin-1").strip()
    try:
        record_seconds = float(field)
    except ValueError:
        record_seconds = float("nan")
    if not (np.isfinite(record_seconds) and record_seconds > 0):  # 0 is for annotation-only EDF+ files
        raise ECGNetError(f"{path}: the duration of a data record, {field[:8]!r}, is not a positive number of seconds")
    most = max(per_record[i] for i in ecg)
    check_rate(most / record_seconds, path)  # before edfio divides by it
    limits.check_samples(n_records * most, len(ecg), most / record_seconds, path)
    need = header_bytes + n_records * sum(per_record) * width
    if size < need:
        raise ECGNetError(f"{path}: {size} bytes, the header declares {need} ({n_records} records): truncated")
    annotations = "BDF Annotations" if bdf else "EDF Annotations"  # edfio sets aside only its format's own
    try:
        rec = edfio.read_bdf(path) if bdf else edfio.read_edf(path, lazy_load_data=True)  # sizes checked above
    except Exception as e:  # edfio raises ValueError and others for malformed headers
        raise ECGNetError(f"{path}: cannot be read as {'BDF' if bdf else 'EDF'} ({type(e).__name__}: {e})") from e
    layout = _Layout(header_bytes, per_record, width, labels.index(annotations) if annotations in labels else None)
    if not rec.is_continuous and _gap(path, layout, n_records, record_seconds, most / record_seconds):
        raise ECGNetError(f"{path}: a discontinuous EDF+ recording (EDF+D, gaps between its data records): not "
                          "read — joined, its segments would make one signal that was never recorded")
    channels, warnings = [], []
    # physical dimensions as the header's bytes hold them (edfio decodes ASCII only: a Latin-1 or UTF-8 'µV' is '�V')
    dimensions = [_dimension(signal_header[96 * n_signals + 8 * i:96 * n_signals + 8 * (i + 1)])
                  for i in range(n_signals)]
    ordinary = [i for i, label in enumerate(labels) if label != annotations]
    unspecified = []
    for sig, index in zip(rec.signals, ordinary):  # edfio's signals: the header's, less the annotation channels
        name = _lead(labels[index])  # the header's label as read here (edfio's replaces bytes beyond ASCII)
        if name is None:
            continue
        rate = float(sig.sampling_frequency)
        limits.check_samples(int(round(rec.duration * rate)), len(ecg), rate, path)
        mv = np.asarray(sig.data, np.float64) * units_to_mv(dimensions[index] or None, path, default="uV")
        channels.append(Channel(labels[index], name, rate, mv))
        if not dimensions[index]:
            unspecified.append(labels[index])
    ignored = _ignored_channels(labels)
    if ignored:
        warnings.append(ignored)
    if unspecified:
        warnings.append(f"{len(unspecified)} ECG channel(s) without a physical dimension ({', '.join(unspecified[:3])}"
                        f"{' …' if len(unspecified) > 3 else ''}): read as µV")
    try:
        said = list(rec.annotations)
    except Exception:  # malformed TALs: no annotation is read (the padding, if any, stays)
        said = []
    patient, age, sex = _patient(rec)
    return Channels(channels, warnings, patient, age, sex, said)


@dataclass(frozen=True)
class _Layout:
    """Where a data record keeps each signal: the header's size, samples per record, bytes per sample, and the
    (first) annotation signal, whose first TAL is the record's onset (None: plain EDF)."""

    header_bytes: int
    per_record: list[int]
    width: int
    annotations: int | None


def _ignored_channels(labels: list[str]) -> str | None:
    """The warning naming the channels that are no standard lead ('Resp', 'SpO2', an unlabelled one), as the
    DICOM, MUSE and HL7 readers warn of theirs; EDF+/BDF+ annotation channels are the format's own, not named."""
    extra = _signals([label for label in labels if _lead(label) is None])
    if not extra:
        return None
    if len(extra) == 1:
        return f"channel {_named(extra)} is not one of the 12 standard leads: ignored"
    return f"{len(extra)} channels are not among the 12 standard leads: ignored ({_named(extra)})"


def _signals(labels: list[str]) -> list[str]:
    """The labels of signals: EDF+/BDF+ annotation channels are the format's own, not signals."""
    return [label for label in labels if label not in ("EDF Annotations", "BDF Annotations")]


def _named(labels: list[str]) -> str:
    """The signals among ``labels``, the first few by name: 'Resp', 'SpO2', (unlabelled) … (3 more)."""
    names = [repr(label) if label else "(unlabelled)" for label in _signals(labels)]
    more = len(names) - _MOST_NAMED
    return ", ".join(names[:_MOST_NAMED]) + (f" … ({more} more)" if more > 0 else "")


def _label(field: bytes) -> str:
    """A signal's label: UTF-8 when its bytes are (EDF asks for ASCII; some writers use UTF-8), else Latin-1,
    so that a warning names '呼吸' or 'Atmung ä' as the writer wrote it. A UTF-8 label cut at the field's 16 bytes
    inside a character ('呼吸呼吸呼吸' is 18) is read up to that character when UTF-8 characters come before it (a
    Latin-1 letter in the last byte, 'ä' of '…atmung ä', stays one)."""
    try:
        return field.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and not field[:e.start].isascii():
            return field[:e.start].decode("utf-8").strip()
        return field.decode("latin-1").strip()


def _check_each_lead_once(labels: list[str], path: Path) -> None:
    """Refuse a lead on two channels ('ECG II' beside 'II'): which is the 12-lead's is unclear (WFDB likewise)."""
    names = [_lead(label) for label in labels]
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        said = "; ".join(f"{display(n)} on {', '.join(repr(lb) for lb, m in zip(labels, names) if m == n)}"
                         for n in twice)
        raise ECGNetError(f"{path}: lead(s) on more than one channel ({said}); which to read is unclear")


def _gap(path: Path, layout: _Layout, n_records: int, record_seconds: float, rate: float) -> bool:
    """Whether a data record's onset (its first TAL) leaves a gap after the one before: more than half a sample
    from contiguous. edfio compares the onsets exactly, so '6.988821000000001' after '5.990418' with records of
    0.998403 s (edfio's own rounding, in a file MNE exported at 250.4 Hz) was a gap."""
    if layout.annotations is None or n_records < 2:
        return False
    start = layout.width * sum(layout.per_record[:layout.annotations])
    size = layout.width * layout.per_record[layout.annotations]
    stride = layout.width * sum(layout.per_record)
    data = np.memmap(path, np.uint8, "r", offset=layout.header_bytes, shape=(n_records, stride))
    onsets = []
    for record in data[:, start:start + size]:
        m = re.match(rb"([+-]\d+(?:\.\d*)?)\x14\x14", bytes(record))
        if m is None:
            raise ECGNetError(f"{path}: data record {len(onsets) + 1} has no onset in its annotation signal (EDF+ "
                              "needs one per record): not a valid EDF+ file")
        onsets.append(float(m.group(1)))
    steps = np.diff(onsets) - record_seconds
    # and in all: small gaps add up (1 ms a record, 3.6 s an hour), within the header's 8-character rounding
    drift = np.asarray(onsets) - onsets[0] - np.arange(len(onsets)) * record_seconds
    return bool(np.any(np.abs(steps) > 0.5 / rate) or np.any(np.abs(drift) > 0.5 / rate + len(onsets) * 1e-6))


def _without_padding(annotations: list, leads: dict, rate: float, notes: list[str]) -> dict:
    """The leads less the tail MNE pads its last data record with (its last values, annotated 'BAD_ACQ_SKIP' to
    the recording's end): 10.002 s exported by MNE read as 11 s, a flat second appended to every lead."""
    n = len(next(iter(leads.values())))
    ends = [a.onset for a in annotations if a.text == "BAD_ACQ_SKIP" and a.duration
            and a.onset + a.duration >= n / rate - 1 / rate]
    keep = int(round(min(ends) * rate)) if ends else n
    if not 2 <= keep < n:
        return leads
    notes.append(f"cut the last {(n - keep) / rate:.3g} s: padding of the last data record (annotated BAD_ACQ_SKIP, "
                 "as MNE exports), not ECG")
    return {name: values[:keep] for name, values in leads.items()}


def _dimension(field: bytes) -> str:
    """A signal's physical dimension; 'µV' in Latin-1 (0xB5) or UTF-8 (0xC2 0xB5), as devices write it, is uV."""
    field = field.strip()
    if field in (b"\xb5V", b"\xc2\xb5V"):
        return "uV"
    return field.decode("ascii", errors="replace")


def _lead(label: str) -> str | None:
    """'ECG I', 'EKG-V1', 'ECG_II': the prefix and its separator go; 'ECG -aVR' keeps its sign (an inverted lead);
    a reference suffix goes too ('V1-Ref', 'ECG I-REF': EEG-style montages name each channel against its reference)."""
    label = re.sub(r"[-\s]+ref$", "", label.strip(), flags=re.I)
    return lead_name(re.sub(r"^(ECG|EKG)(-|_|\s*)", "", label, flags=re.I))


def _patient(rec) -> tuple[dict, float | None, str | None]:
    out: dict = {}
    try:
        start = rec.startdate
        out["acquired"] = f"{start.isoformat()} {rec.starttime.isoformat()}"
    except Exception:  # an anonymised or malformed start date
        start = None
    sex = age = None
    text = " ".join(str(rec.local_patient_identification).split())
    fields = text.split(" ")
    structured = (len(fields) >= 4 and fields[1].upper() in ("M", "F", "X")
                  and (fields[2] == "X" or re.fullmatch(r"\d{2}-[A-Za-z]{3}-\d{4}", fields[2]) is not None))
    if not structured:  # plain EDF's free text ('Mueller Hans 12.03.1950 M'): kept as written, not split up
        if text and set(fields) != {"X"}:
            out["identification"] = text
        return out, age, sex
    try:
        p = rec.patient
        unknown = set(p.name.split(",")) == {"X"}  # 'X', or 'X,X' (last and first name unknown)
        out.update(id=p.code if p.code != "X" else "", name="" if unknown else p.name.replace("_", " "))
        sex = sex_from(p.sex) if p.sex != "X" else None
        birth = p.birthdate
        if birth is not None:
            out["birth_date"] = birth.isoformat()
            if start is not None:
                age = age_on(birth, start)
    except Exception:  # plain EDF: a free-text patient field, not EDF+ subfields
        pass
    return out, age, sex
