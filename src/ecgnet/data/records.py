"""One 12-lead ECG from a WFDB record, whatever its source: PTB-XL (``.dat``), PhysioNet/CinC Challenge
(``.mat``, format ``16+24``), any sampling rate, any length → :class:`ECGRecord` (signal in mV, the
reader's warnings, age and sex from the header).

The reader refuses only what is really wrong (no header, a signal that does not match the header's
checksums, missing leads, unknown units, NaNs) with one :class:`ECGNetError` naming the file. Before
wfdb parses the header or reads a sample, its bytes and claims are checked against the budget
``limits`` (:class:`~ecgnet.data.limits.ReadLimits`; :mod:`ecgnet.data.wfdb_header`): a header over
64 kB or announcing more than 24 signals, a record line whose numbers wfdb would misread, a signal file
that is not a regular file inside the record's folder or too short for the samples the header
announces, a FLAC stream holding fewer, a sampling rate outside 10 Hz–100 kHz, or more samples × signals
than the budget is refused, so a hostile record cannot make the reader allocate more than the budget
(fuzzed: ``tests/fuzzing.py``; hostile corpus: ``tests/hostile.py``).
What the reader did as a matter of routine is a note, what is readable but questionable a warning:

- notes (``ECGRecord.notes``): the record was resampled, its header had a release quirk that was read
  in its unambiguous sense (a record line naming ``E00015.mat``), channels that are no standard lead
  (Frank's vx, vy, vz) were left out, or a record of the 8 independent leads got III, aVR, aVL, aVF
  derived from I and II;
- a warning that keeps the calls: amplitude steps coarser than 10 µV (:func:`resolution_warning`);
- **amplitude** warnings (``ECGRecord.amplitude_trusted`` is False): gain 0 (WFDB's "uncalibrated";
  read at WFDB's default 200 ADU/mV), every lead with the same range (a per-lead normalised signal),
  a median lead range outside 0.3–12 mV, or a flat lead. The bounds hold every record of PTB-XL's
  training folds 1–8 (median lead range 0.38–9.5 mV; lead ranges differ by ≥ 10 % of their mean).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb

from ecgnet.data.leads import INDEPENDENT, LEADS, LIMB_FROM_I_II, display, lead_name
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.patient import age_from, sex_from
from ecgnet.data.quality import LeadQuality, lead_quality
from ecgnet.data.wfdb_header import (check_record_line, check_sizes, fixed_record_line, header_lines, header_units,
                                     read_header_bytes, signal_files, with_length, zero_gains)
from ecgnet.errors import ECGNetError

UNITS_TO_MV = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3,  # every reader's
               "microvolt": 1e-3, "microvolts": 1e-3, "nv": 1e-6, "v": 1e3, "volt": 1e3, "volts": 1e3}
MEDIAN_RANGE_MV = (0.3, 12.0)  # plausible median peak-to-peak lead range (PTB-XL folds 1–8: 0.38–9.5)
FLAT_LEAD_MV = 0.02
SAME_RANGE_SPREAD = 0.02  # std / mean of the 12 lead ranges; PTB-XL folds 1–8: ≥ 0.10
COARSE_STEP_MV = 0.010  # amplitude steps coarser than this move the calls (reports/formats/quantization.md)


@dataclass
class ECGRecord:
    """A record's 12 standard leads (LEADS order) in mV at ``sampling_rate``, and what the reader noticed."""

    path: Path
    signal: np.ndarray  # (12, samples) float32 mV
    sampling_rate: float  # of ``signal``
    source_rate: float  # as recorded
    warnings: list[str] = field(default_factory=list)
    amplitude_trusted: bool = True
    age: float | None = None
    sex: str | None = None  # "male" / "female"
    comments: list[str] = field(default_factory=list)
    format: str = "wfdb"  # the file's format (ecgnet.data.readers.FORMATS)
    derived_leads: list[str] = field(default_factory=list)  # leads computed from others, not recorded
    statements: list[str] = field(default_factory=list)  # the device's own interpretation; never a model input
    patient: dict = field(default_factory=dict)  # what the file says of the patient/acquisition (id, name, date …)
    quality: list[LeadQuality] | None = None  # per-lead flags (ecgnet.data.quality); None: measured on ``signal``
    notes: list[str] = field(default_factory=list)  # routine, not a concern: "resampled: 500 Hz → 100 Hz" …

    def __post_init__(self):
        if self.quality is None and self.signal.ndim == 2 and self.signal.shape == (len(LEADS), self.signal.shape[1]) \
                and self.signal.shape[1] >= 2:
            self.quality = lead_quality(self.signal, self.sampling_rate, LEADS)

    @property
    def seconds(self) -> float:
        return self.signal.shape[-1] / self.sampling_rate


def header_path(path: str | os.PathLike) -> Path:
    """A ``.hea``/``.dat``/``.mat`` path or a record name → the header's path. Only a known suffix is replaced: a
    record named ``rec.copy`` has the header ``rec.copy.hea`` (it once became ``rec.hea``, another record)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return path
    return path.with_suffix(".hea") if suffix in (".dat", ".mat") else path.with_name(path.name + ".hea")


# said of a record whose 12 leads are one signal, by every reader; no amplitude warning is added to it
NO_ECG = ("all 12 leads are identical throughout: no ECG was recorded (electrodes off?), only a flat line or the "
          "device's calibration pulse")


def read_ecg(path: str | os.PathLike, sampling_rate: float = 100, resample: bool = False,
             limits: ReadLimits = DEFAULT_LIMITS, quality: bool = True) -> ECGRecord:
    """Read and check one WFDB record (see the module docstring); ``resample`` allows any source rate;
    ``limits``: what the reader agrees to decode; ``quality=False`` skips the per-lead quality flags
    (``ECGRecord.quality`` is then empty), for callers that keep only the signal."""
    header = header_path(path)
    warnings: list[str] = []
    notes: list[str] = []
    raw = read_header_bytes(header, limits)  # the header's text, read once for the checks wfdb does not make
    rec = _read_wfdb(header, raw, notes, limits)
    faster = [f"{n} ({k}×)" for n, k in zip(rec.sig_name or [], rec.samps_per_frame or []) if k and k > 1]
    if faster:
        notes.append(f"{_listed(faster)} stored at a multiple of the record's {rec.fs:g} Hz: averaged per frame to "
                     f"{rec.fs:g} Hz, as wfdb reads them")
    names = [s or "" for s in rec.sig_name]  # a signal line without a description has no name
    channels, derived = _lead_channels(header, names, notes)
    units = header_units(raw)  # as written: wfdb reads '/µV' as V
    units = units if len(units) == len(names) else list(rec.units)
    scale = [UNITS_TO_MV.get((u or "mV").strip().lower()) for u in units]
    if None in [scale[c] for c in channels]:
        raise ECGNetError(f"{header}: unknown signal units {_listed(sorted(set(str(units[c]) for c in channels)))} "
                          "(need V, mV, µV or nV)")
    scale = [1.0 if x is None else x for x in scale]  # an ignored channel's units do not matter
    uncalibrated = [names[c] for c in zero_gains(raw) if c in channels]  # a left-out channel's gain does not matter
    amplitude_ok = not uncalibrated  # wfdb reads gain 0 as 200 ADU/mV without a word
    if not amplitude_ok:
        warnings.append(f"uncalibrated: gain 0 in the header for {_listed(uncalibrated)} (WFDB's 'uncalibrated', read "
                        "at 200 ADU/mV), so amplitudes are arbitrary — fix the header's gain")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # checked just below
        try:
            physical = rec.dac(return_res=64)  # WFDB's invalid-sample value becomes NaN
            physical *= np.asarray(scale)
        except (TypeError, ValueError, OverflowError) as e:  # a baseline beyond 64 bits: an object array
            raise ECGNetError(f"{header}: cannot convert the samples to physical units "
                              f"({type(e).__name__}: {' '.join(str(e).split())})") from e
    signal = physical.T[channels]
    del physical  # a copy in LEADS order: the float64 samples and wfdb's int64 ones go (an hour: 2 × 35 MB)
    if derived:  # the 8 independent leads: III, aVR, aVL, aVF from I and II, in place of the placeholder rows
        for lead in derived:
            signal[LEADS.index(lead)] = LIMB_FROM_I_II[lead](signal[0], signal[1])
    rec.d_signal = None
    if not np.isfinite(signal).all():
        raise ECGNetError(f"{header}: the signal contains NaN or infinite samples")
    if np.all(signal == signal[:1]):  # leads off: a flat line or a calibration pulse (the other readers say it too)
        problems, coarse = [NO_ECG], None  # and nothing else: 'flat lead', 'the same 1 mV' … would repeat it
    else:
        problems = amplitude_problems(signal)  # on the signal as recorded: resampling changes lead ranges
        coarse = resolution_warning(signal)  # likewise: resampling hides the steps
    if coarse:
        warnings.append(coarse)
    flags = lead_quality(signal, rec.fs, LEADS) if quality else []  # likewise: resampling smooths a clipped plateau
    out = at_model_rate(signal, rec.fs, sampling_rate, resample, header, notes)
    warnings += problems
    age, sex = header_demographics(rec.comments or [])
    return ECGRecord(header, out, float(sampling_rate), float(rec.fs),
                     warnings, amplitude_ok and not problems, age, sex, list(rec.comments or []), quality=flags,
                     notes=notes, derived_leads=[display(d) for d in derived])


def at_model_rate(signal: np.ndarray, source_rate: float, sampling_rate: float, resample: bool, path,
                  notes: list[str]) -> np.ndarray:
    """The last step of every reader: the signal at the model's rate (resampled when ``resample``, said in
    ``notes``; else a rate mismatch is an error naming ``path``) as contiguous float32, finite."""
    if source_rate != sampling_rate:
        if not resample:
            raise ECGNetError(f"{path}: sampled at {source_rate:g} Hz, the model expects {sampling_rate:g} Hz "
                              "(resampling is off: drop --no-resample, or pass resample=True)")
        if signal.shape[-1] < 2:  # no line through its ends: the resampler would give NaN
            raise ECGNetError(f"{path}: {signal.shape[-1]} sample(s) per lead: too short to resample (or to diagnose)")
        signal = resample_signal(signal, source_rate, sampling_rate)
        notes.append(f"resampled: {source_rate:g} Hz → {sampling_rate:g} Hz")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(signal, dtype=np.float32)
    if not np.isfinite(out).all():  # a gain like 1e-40/mV: finite in float64, infinite in float32
        raise ECGNetError(f"{path}: amplitudes beyond float32's range (~3e38 mV): a wrong gain or scale in the file?")
    return out


def _lead_channels(header: Path, names: list[str], notes: list[str]) -> tuple[list[int], list[str]]:
    """(the channel of each of the 12 LEADS, the leads to derive from I and II): every standard lead
    once, or the 8 independent ones (I, II, V1–V6; the limb leads derived). Channels that are no standard
    lead (Frank X, Y, Z; a rhythm channel) are left out with a note; anything else is one error."""
    leads = [lead_name(n) for n in names]
    twice = sorted({display(x) for x in leads if x and leads.count(x) > 1})
    if twice:
        raise ECGNetError(f"{header}: lead(s) {', '.join(twice)} on more than one channel; which to read is unclear")
    have = [x for x in LEADS if x in leads]
    eight = set(have) == set(INDEPENDENT)  # all four limb leads absent: a known layout, not a gap
    derived = list(LIMB_FROM_I_II) if eight else []
    missing = [x for x in LEADS if x not in have and x not in derived]
    if missing:
        odd = [n or "(unnamed)" for n, lead in zip(names, leads) if lead is None]
        found = (f"not standard: {_listed(odd, 6)}" if odd else _listed(names))
        raise ECGNetError(f"{header}: expected the 12 standard leads {', '.join(LEADS)} (or the 8 independent "
                          f"ones I, II, V1–V6), found {len(names)}, {found}; missing: "
                          f"{', '.join(display(x) for x in missing)}")
    extra = [n or "(unnamed)" for n, lead in zip(names, leads) if lead is None]
    if extra:
        notes.append(f"left out {len(extra)} channel(s) that are no standard lead: {_listed(extra, 6)}")
    if derived:
        notes.append(f"derived {', '.join(display(x) for x in derived)} from I and II (the record stores "
                     f"{len(have)} leads: {', '.join(display(x) for x in have)})")
    first = leads.index("I")  # placeholders for derived leads, overwritten once the signal is in mV
    return [leads.index(x) if x in leads else first for x in LEADS], derived


def read_record(path: str | os.PathLike, sampling_rate: float = 100, resample: bool = False,
                limits: ReadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Only the (12, samples) float32 mV signal of :func:`read_ecg` (the signal caches' reader: no quality
    flags are measured)."""
    return read_ecg(path, sampling_rate, resample, limits, quality=False).signal


def _listed(names: list[str], most: int = 12) -> str:
    """Names for a message, at most ``most`` of them, each cut at 20 characters."""
    shown = [n if len(n) <= 20 else n[:19] + "…" for n in names[:most]]
    return ", ".join(shown) + (f" … ({len(names) - most} more)" if len(names) > most else "")


def _read_wfdb(header: Path, raw: bytes, notes: list[str], limits: ReadLimits) -> wfdb.Record:
    """wfdb's digital read (``raw``: the header's bytes); a record line naming its file (``E00015.mat``) is
    read as the record name (and said in ``notes``)."""
    name = header.with_suffix("")
    try:
        return _checked_rdrecord(name, raw, header, limits, notes)
    except ECGNetError:
        raise
    except Exception as e:  # wfdb raises many types for malformed files
        fixed = fixed_record_line(header, raw)
        if fixed is None:
            raise ECGNetError(f"{header}: cannot be read as a WFDB record ({type(e).__name__}: {e})") from e
    rec = _read_rewritten(header, fixed.encode(), limits, notes)
    notes.append(f"header quirk: the record line names '{header_lines(raw)[0].split()[0]}'; "
                 f"read as record '{name.name}'")
    return rec


def _read_rewritten(header: Path, text: bytes, limits: ReadLimits, notes: list[str],
                    checksums: bool = True) -> wfdb.Record:
    """:func:`_checked_rdrecord` of the record with ``text`` as its header: the text beside links to the
    signal files, in a temporary folder."""
    name = header.with_suffix("")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / header.name).write_bytes(text)
        for file in signal_files(text):  # as the signal lines name them (r_1.dat beside r.hea; checked as bare names)
            f = header.parent / file
            if os.path.basename(file) == file and f.is_file() and not (Path(tmp) / file).exists():
                os.symlink(f.resolve(), Path(tmp) / file) if hasattr(os, "symlink") else shutil.copy(f, tmp)
        try:
            return _checked_rdrecord(Path(tmp) / name.name, text, header, limits, notes, checksums)
        except ECGNetError as e:
            raise ECGNetError(str(e).replace(f"{tmp}/", "")) from e.__cause__
        except Exception as e:
            said = str(e).replace(f"{tmp}/", "")  # name the record's own files, not the temporary folder
            raise ECGNetError(f"{header}: cannot be read as a WFDB record ({type(e).__name__}: {said})") from e


def _checked_rdrecord(name: Path, raw: bytes, header: Path, limits: ReadLimits, notes: list[str],
                      checksums: bool = True) -> wfdb.Record:
    """``wfdb.rdrecord`` of ``name`` (header bytes ``raw``), once its header's claims fit its signal files
    and ``limits`` (``header``: the header as given, for messages; its folder is the record's)."""
    hdr = wfdb.rdheader(str(name))
    check_record_line(hdr, raw, header)
    length = check_sizes(hdr, header.parent, header, limits)
    if any(hdr.skew or []):  # wfdb aligns a skewed signal and leaves its last samples invalid
        skewed = [n for n, k in zip(hdr.sig_name or [], hdr.skew) if k]
        raise ECGNetError(f"{header}: skewed signal(s) {_listed(skewed)} (the format field's ':skew') are not read; "
                          "write the record without skew (wfdb.wrsamp aligns it)")
    if hdr.sig_len == 0:  # header(5): unspecified length, and no checksum verification; wfdb cannot read it
        notes.append(f"the header gives 0 samples (unspecified): read the {length} its signal files hold; "
                     "checksums not verified")
        return _read_rewritten(header, with_length(raw, length), limits, notes, checksums=False)
    multi_frame = any(n > 1 for n in (hdr.samps_per_frame or []))  # several samples per frame (16x2)
    rec = wfdb.rdrecord(str(name), physical=False, smooth_frames=not multi_frame)
    sums = rec.calc_checksum(expanded=multi_frame) if checksums and rec.checksum is not None else None  # all samples
    if multi_frame:  # then averaged per frame, as wfdb's smooth_frames=True reads them (one read, not two)
        rec.d_signal, rec.e_d_signal = rec.smooth_frames("digital"), None
    if sums is not None and not _checksums_match(rec.checksum, sums):
        if any(int(h or 0) != 0 for h in rec.checksum):
            raise ECGNetError(f"{header}: the signal file does not match the header's checksums (corrupt signal "
                              "file?)")
        notes.append("the header's checksums are all 0 (not computed by its writer?): not verified")
    return rec


def _checksums_match(declared: list, computed: list) -> bool:
    """WFDB checksums are 16-bit (signed in headers, unsigned from wfdb): compare them modulo 2¹⁶ (a signal
    line without one is not checked)."""
    return all(h is None or int(h) % 65536 == int(c) % 65536 for h, c in zip(declared, computed))


def amplitude_step_mv(signal: np.ndarray, samples: int = 5000) -> float | None:
    """The recording's amplitude resolution in mV: per lead, the smallest difference between two distinct
    values among its first ``samples``; the median over leads (None when every lead is constant)."""
    steps = []
    for lead in np.asarray(signal, np.float64)[:, :samples]:
        gaps = np.diff(np.unique(lead))
        gaps = gaps[gaps > 1e-9]
        if gaps.size:
            steps.append(gaps.min())
    return float(np.median(steps)) if steps else None


def resolution_warning(signal: np.ndarray) -> str | None:
    """A warning when the amplitude steps are coarser than :data:`COARSE_STEP_MV` (PTB-XL's are 1 µV): the
    calls stay, but the fine detail the model reads (ST level, small waves) is rounded away."""
    step = amplitude_step_mv(signal)
    if step is None or step <= COARSE_STEP_MV:
        return None
    return (f"coarse amplitude resolution: {step * 1000:.3g} µV per step (the model was trained on 1 µV steps; on "
            "PTB-XL fold 9, steps of 20–60 µV change a call in 2–6 % of records): a wide physical range in the file?")


def amplitude_problems(signal: np.ndarray) -> list[str]:
    """Warnings for a (12, samples) mV signal whose amplitudes cannot be physiological."""
    ranges = signal.max(-1) - signal.min(-1)
    out = []
    flat = [LEADS[i] for i in np.flatnonzero(ranges < FLAT_LEAD_MV)]
    if flat:
        out.append(f"flat lead: {', '.join(flat)} (range < {FLAT_LEAD_MV} mV — lead off?)")
    if ranges.mean() > 0 and ranges.std() / ranges.mean() < SAME_RANGE_SPREAD:
        out.append(f"implausible amplitude: every lead spans the same {ranges.mean():.3g} mV "
                   "(normalised per lead, not in mV?)")
    median = float(np.median(ranges))
    low, high = MEDIAN_RANGE_MV
    if not low <= median <= high:
        out.append(f"implausible amplitude: the median lead range is {median:.3g} mV, outside {low:g}–{high:g} mV "
                   "(wrong gain or units in the header?)")
    return out


def header_demographics(comments: list[str]) -> tuple[float | None, str | None]:
    """``#Age: 74`` / ``#Sex: Male`` (Challenge style; also ``age 74`` / ``sex: F``, LUDB's ``#<age>: 51`` /
    ``#<sex>: F``, INCART's ``#<age>: 65 <sex>: F <diagnoses> …``) → (age, sex)."""
    age = sex = None
    for c in comments:
        for key, value in _key_values(c):
            if key == "age":
                age = age_from(value)
            elif key == "sex":
                sex = sex_from(value)
    return age, sex


def _key_values(comment: str) -> list[tuple[str, str]]:
    """'Age: 74', 'age 74' → [('age', '74')]; angle-bracketed keys, one (LUDB: '<age>: 74') or several on a line
    (INCART: '<age>: 65 <sex>: F <diagnoses> …') → one pair each."""
    if "<" in comment and re.search(r"<\w+>", comment):
        return [(k.lower(), v.strip()) for k, v in re.findall(r"<(\w+)>:?\s*([^<]*)", comment)]
    key, sep, value = comment.strip().partition(":")
    if not sep:
        key, _, value = comment.strip().partition(" ")
    return [(key.strip().lower(), value.strip())]


RESAMPLER = "scipy.signal.resample_poly, padtype='line'"  # in the collection cache's key: it shapes every row


def resample_signal(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling (anti-aliased) along the last axis. Beyond its ends a lead is taken to go on
    along the line through its first and last samples (``padtype='line'``), not to drop to zero: a lead with
    a baseline offset keeps it in its first and last samples, where zeros pulled them toward 0 (0.24 mV off at
    250 Hz, 0.36 mV at 1000 Hz for a 0.8 mV offset)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1, padtype="line")
