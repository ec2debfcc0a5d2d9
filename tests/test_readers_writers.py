"""Files as other writers make them: EDF/BDF from pyedflib, edfio and (built here as it exports) MNE, DICOM
waveforms in the variants devices write (units, correction factor, baseline, 32-bit samples, SCP-ECG and MDC
codes, channel order, several multiplex groups, padding) and WFDB records in every sample format — each read
back in mV within its quantisation, in the right lead order, at the right rate and length, without spurious
warnings, or refused with one error naming the file. Found in an audit against pyedflib 0.1.42, edfio 0.4.18,
MNE 1.13 (its EDF export is edfio; MNE is not a test dependency, so its files are built with edfio as it
builds them), pydicom 3.0 and wfdb 4.3; what the audit found is named in each test."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ecg_writers import NAMES, ecg

from ecgnet.data.readers import read_ecg_any, read_source
from ecgnet.data.records import read_ecg
from ecgnet.errors import ECGNetError

pyedflib = pytest.importorskip("pyedflib")
edfio = pytest.importorskip("edfio")
pydicom = pytest.importorskip("pydicom")
wfdb = pytest.importorskip("wfdb")


def read_quietly(path):
    """read_source(path), failing on any Python warning raised while reading (a library's own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_source(path)


def refused(path, match):
    with pytest.raises(ECGNetError, match=match) as e:
        read_source(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


# --- EDF / BDF ------------------------------------------------------------------------------------------

def pyedflib_file(path, x, fs=500, labels=NAMES, dimension="uV", scale=1000.0, digital=(-32768, 32767),
                  physical=(-10.0, 10.0), file_type=None, extra=(), annotations=()):
    """An EDF+ (or ``file_type``) file of ``x`` (mV) by pyedflib; ``extra``: (label, rate, values, dimension)."""
    writer = pyedflib.EdfWriter(str(path), len(labels) + len(extra),
                                file_type=pyedflib.FILETYPE_EDFPLUS if file_type is None else file_type)
    try:
        headers = [{"label": label, "dimension": dimension, "sample_frequency": fs, "physical_min": physical[0] * scale,
                    "physical_max": physical[1] * scale, "digital_min": digital[0], "digital_max": digital[1]}
                   for label in labels]
        headers += [{"label": label, "dimension": dim, "sample_frequency": rate, "physical_min": -200,
                     "physical_max": 200, "digital_min": -32768, "digital_max": 32767} for label, rate, _, dim in extra]
        writer.setSignalHeaders(headers)
        for onset, duration, text in annotations:
            writer.writeAnnotation(onset, duration, text)
        writer.writeSamples([x[i] * scale for i in range(len(labels))] + [values for _, _, values, _ in extra])
    finally:
        writer.close()
    return path


@pytest.mark.parametrize("style", ["{}-Ref", "ECG {}-REF", "ECG {} - Ref"])
def test_edf_labels_with_a_reference_suffix_name_their_lead(tmp_path, style):
    """EEG-style montages name each channel against its reference ('V1-Ref', 'ECG I-REF'): every lead was
    passed over and the file refused as 'holds 0 standard lead(s)'."""
    x = ecg(500)
    path = pyedflib_file(tmp_path / "ref.edf", x, labels=[style.format(n) for n in NAMES])
    rec = read_quietly(path)
    assert np.abs(rec.signal - x).max() < 0.002 and rec.warnings == []


@pytest.mark.parametrize("style", ["{}", "Lead {}", "EKG {}", "ECG {}"])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_edf_label_conventions_in_any_case(tmp_path, style, case):
    x = ecg(250)
    path = pyedflib_file(tmp_path / "labels.edf", x, fs=250, labels=[case(style.format(n)) for n in NAMES])
    assert np.abs(read_quietly(path).signal - x).max() < 0.002


def test_edf_a_lead_on_two_channels_is_refused_not_read_from_the_first(tmp_path):
    """A 12-lead file with an extra 'ECG II' channel before 'II' was read from whichever came first, here a
    flat one: lead II 1.2 mV off, and only a 'flat lead' warning said anything (WFDB refuses the same file)."""
    x = ecg(500)
    labels = ["ECG II", *NAMES]
    signal = np.vstack([np.zeros((1, x.shape[1])), x])
    path = pyedflib_file(tmp_path / "twice.edf", signal, labels=labels, dimension="mV", scale=1.0)
    refused(path, r"lead\(s\) on more than one channel \(II on 'ECG II', 'II'\); which to read is unclear")


@pytest.mark.parametrize("variant", ["bdf+", "volts", "12-bit offset", "asymmetric physical", "extra channels",
                                     "annotations"])
def test_edf_variants_real_recorders_write(tmp_path, variant):
    """Read as written (no finding; kept so that they stay read): pyedflib's 24-bit BDF+, a dimension of V, a
    12-bit ADC range 0..4095, an asymmetric physical range, respiration/SpO2/pleth at 25/1/100 Hz beside the
    leads (named in one warning), and EDF+ annotations."""
    x = ecg(500)
    kw, tol = {}, 0.002
    if variant == "bdf+":
        kw, tol = dict(file_type=pyedflib.FILETYPE_BDFPLUS, digital=(-8388608, 8388607)), 1e-4
    elif variant == "volts":
        kw = dict(dimension="V", scale=1e-3)
    elif variant == "12-bit offset":
        kw, tol = dict(digital=(0, 4095), physical=(-6.0, 6.0)), 1.01 * 12 / 4095  # pyedflib truncates: 1 step
    elif variant == "asymmetric physical":
        kw, tol = dict(digital=(-2048, 2047), physical=(-3.2768, 8.0)), 1.01 * 11.2768 / 4095
    elif variant == "extra channels":
        kw = dict(labels=[f"ECG {n}" for n in NAMES], extra=[("Resp", 25, np.sin(np.arange(250) / 25), "Ohm"),
                                                             ("SpO2", 1, np.full(10, 97.0), "%"),
                                                             ("Pleth", 100, np.sin(np.arange(1000) / 10), "")])
    else:
        kw = dict(annotations=[(0.5, -1, "Recording starts"), (3.2, 0.5, "Artifact")])
    path = pyedflib_file(tmp_path / ("e.bdf" if variant == "bdf+" else "e.edf"), x, **kw)
    rec = read_quietly(path)
    ignored = (["3 channels are not among the 12 standard leads: ignored ('Resp', 'SpO2', 'Pleth')"]
               if variant == "extra channels" else [])
    assert rec.source_rate == 500 and rec.signal.shape == (12, 5000) and rec.warnings == ignored
    assert np.abs(rec.signal - x).max() < tol


def test_edf_channels_that_are_no_lead_are_named_in_one_warning(tmp_path):
    """A 'Resp' channel (or an unlabelled one) beside the 12 leads was passed over in silence, where the DICOM,
    MUSE and HL7 readers warn of the channels they leave out: one warning names them, through to read_ecg_any;
    the EDF+ annotation channel is the format's own, not named; the 12 leads alone get no such warning."""
    x = ecg(500)
    resp = ("Resp", 25, np.sin(np.arange(250) / 25), "Ohm")
    path = pyedflib_file(tmp_path / "resp.edf", x, extra=[resp], annotations=[(1.0, -1, "Start")])
    rec = read_quietly(path)
    assert np.abs(rec.signal - x).max() < 0.002
    assert rec.warnings == ["channel 'Resp' is not one of the 12 standard leads: ignored"]
    assert rec.warnings[0] in read_ecg_any(path, 500).warnings
    unlabelled = ("", 100, np.zeros(1000), "")
    rec = read_quietly(pyedflib_file(tmp_path / "two.edf", x, extra=[resp, unlabelled]))
    assert rec.warnings == ["2 channels are not among the 12 standard leads: ignored ('Resp', (unlabelled))"]
    signals = [edfio.EdfSignal(x[i], sampling_frequency=500, label=n, physical_dimension="mV",
                               physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    signals += [edfio.EdfSignal(np.zeros(5000), sampling_frequency=500, label=f"EEG {k}") for k in range(10)]
    edfio.Edf(signals).write(tmp_path / "eeg.edf")
    rec = read_quietly(tmp_path / "eeg.edf")
    assert rec.warnings == ["10 channels are not among the 12 standard leads: ignored ('EEG 0', 'EEG 1', 'EEG 2', "
                            "'EEG 3', 'EEG 4', 'EEG 5', 'EEG 6', 'EEG 7' … (2 more))"]
    twelve = pyedflib_file(tmp_path / "twelve.edf", x, annotations=[(1.0, -1, "Start")])
    assert read_quietly(twelve).warnings == [] and read_ecg_any(twelve, 500).warnings == []


@pytest.mark.parametrize("seconds", [60, 300])
def test_edf_of_one_and_five_minutes_is_read_whole(tmp_path, seconds):
    x = ecg(500, seconds=seconds)
    rec = read_quietly(pyedflib_file(tmp_path / "long.edf", x))
    assert rec.signal.shape == (12, 500 * seconds) and np.abs(rec.signal - x).max() < 0.002


def edf_as_mne_exports(path, x, fs, record_seconds=None):
    """What ``mne.export.export_raw(..., fmt='edf')`` writes (MNE 1.13, through edfio): ECG channels in µV over
    their own range; a length that fills no whole data record padded with each channel's last value and an
    annotation 'BAD_ACQ_SKIP' over the padding; a non-integer rate as floor(rate) samples per data record of
    floor(rate) / rate s (rounded to 8 characters)."""
    n = x.shape[1]
    annotations = []
    if record_seconds is None:
        width = int(np.ceil(n / fs) * fs) - n
        if width:
            x = np.pad(x, ((0, 0), (0, width)), "edge")
            annotations.append(edfio.EdfAnnotation((n - 1) / fs + 1 / fs, width / fs, "BAD_ACQ_SKIP"))
        rate = fs
    else:
        rate = np.floor(fs) / record_seconds
    signals = [edfio.EdfSignal(x[i] * 1000, sampling_frequency=rate, label=name, physical_dimension="uV",
                               physical_range=(x[i].min() * 1000, x[i].max() * 1000), digital_range=(-32768, 32767))
               for i, name in enumerate(NAMES)]
    edfio.Edf(signals, data_record_duration=record_seconds, annotations=annotations).write(path)
    return path


def test_the_padding_mne_appends_to_the_last_data_record_is_cut(tmp_path):
    """MNE pads a recording that fills no whole data record with each channel's last value (annotated
    BAD_ACQ_SKIP): 5,001 samples read as 5,500, a flat half second appended to every lead."""
    x = ecg(500, seconds=10.002)
    rec = read_quietly(edf_as_mne_exports(tmp_path / "mne.edf", x, 500))
    assert rec.signal.shape == (12, 5001) and np.abs(rec.signal - x).max() < 0.002
    assert any("cut the last 0.998 s" in n and "BAD_ACQ_SKIP" in n for n in rec.notes) and rec.warnings == []
    whole = read_quietly(edf_as_mne_exports(tmp_path / "whole.edf", ecg(500), 500))  # nothing padded, nothing cut
    assert whole.signal.shape == (12, 5000) and not any("cut" in n for n in whole.notes)


def test_an_edf_at_a_non_integer_rate_is_not_taken_for_a_discontinuous_one(tmp_path):
    """MNE exports 250.4 Hz as 250 samples per data record of 0.998403 s; edfio writes the onsets as
    '6.988821000000001' (float rounding) and, comparing them exactly, calls its own file discontinuous: it was
    refused as EDF+D (499.7 Hz likewise). A real gap is still refused (tests/test_readers_binary.py)."""
    fs = 250.4
    record = round(np.floor(fs) / fs, 6)  # 8 characters, as MNE rounds it
    x = ecg(fs, seconds=10 * record)
    path = edf_as_mne_exports(tmp_path / "rate.edf", x, fs, record_seconds=record)
    rec = read_quietly(path)
    assert abs(rec.source_rate - fs) < 0.01 and rec.signal.shape == x.shape and np.abs(rec.signal - x).max() < 0.002
    assert abs(read_ecg_any(path, 100, resample=True).signal.shape[1] - 1000 * record) < 3


def test_an_edf_with_its_annotation_signal_first_reads_its_leads(tmp_path):
    """Some writers put the 'EDF Annotations' signal first: the leads keep their own dimensions and data."""
    x = ecg(500)
    data = pyedflib_file(tmp_path / "last.edf", x, annotations=[(1.0, -1, "Start")]).read_bytes()
    n, header = int(data[252:256]), int(data[184:192])
    widths = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32]
    per = [int(data[256 + 216 * n + 8 * i:256 + 216 * n + 8 * (i + 1)]) for i in range(n)]
    order = [n - 1, *range(n - 1)]  # pyedflib writes the annotation signal last
    out, at = bytearray(data[:256]), 256
    for width in widths:
        out += b"".join(data[at + width * i:at + width * (i + 1)] for i in order)
        at += width * n
    starts = np.cumsum([0] + [2 * p for p in per])
    for r in range(int(data[236:244])):
        base = header + r * starts[-1]
        out += b"".join(data[base + starts[i]:base + starts[i + 1]] for i in order)
    (tmp_path / "first.edf").write_bytes(bytes(out))
    assert np.abs(read_quietly(tmp_path / "first.edf").signal - x).max() < 0.002


# --- DICOM ----------------------------------------------------------------------------------------------

TWELVE_LEAD, GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1", "1.2.840.10008.5.1.4.1.1.9.1.2"
SCP_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62, "aVL": 63,
             "aVF": 64}
PER_MV = {"uV": 1000.0, "mV": 1.0, "V": 1e-3}


def dicom_group(x, fs=500, leads=NAMES, unit="uV", sensitivity=2.5, correction=1.0, baseline=0.0, bits=16,
                scheme="SCPECG", meaning=True, label="RHYTHM", originality="ORIGINAL", padding=None):
    """A multiplex group of ``x`` (mV, NAMES order) holding ``leads``: amplitude = (value × sensitivity ×
    correction + baseline) in ``unit``, as DICOM PS3.3 C.10.9.1.4 defines it (pydicom's waveform_array too)."""
    from pydicom.dataset import Dataset

    group = Dataset()
    group.MultiplexGroupLabel, group.WaveformOriginality = label, originality
    group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = len(leads), x.shape[1]
    group.SamplingFrequency, group.WaveformBitsAllocated = fs, bits
    group.WaveformSampleInterpretation = {16: "SS", 32: "SL"}[bits]
    if padding is not None:
        group.WaveformPaddingValue = padding
    channels = []
    for name in leads:
        channel, source, units = Dataset(), Dataset(), Dataset()
        source.CodeValue, source.CodingSchemeDesignator = {"SCPECG": f"5.6.3-9-{SCP_CODES[name]}",
                                                          "MDC": f"2:{SCP_CODES[name]}"}[scheme], scheme
        if meaning:
            source.CodeMeaning = f"Lead {name}"
        units.CodeValue, units.CodingSchemeDesignator, units.CodeMeaning = unit, "UCUM", unit
        channel.ChannelSourceSequence, channel.ChannelSensitivityUnitsSequence = [source], [units]
        channel.ChannelSensitivity, channel.ChannelSensitivityCorrectionFactor = sensitivity, correction
        channel.ChannelBaseline, channel.WaveformBitsStored = baseline, bits
        channels.append(channel)
    group.ChannelDefinitionSequence = channels
    physical = x[[NAMES.index(n) for n in leads]] * PER_MV[unit]
    digital = np.round((physical - baseline) / (sensitivity * correction))
    group.WaveformData = digital.astype({16: "<i2", 32: "<i4"}[bits]).T.tobytes()  # multiplexed
    return group


def dicom_file(path, groups, sop=TWELVE_LEAD):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID, ds.SOPInstanceUID = meta, sop, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientSex = "ECG", "W-1", "F"
    ds.WaveformSequence = groups
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("kw", [dict(unit="mV", sensitivity=0.0025), dict(unit="V", sensitivity=2.5e-6),
                                dict(sensitivity=5.0, correction=0.5), dict(baseline=-100.0),
                                dict(unit="mV", sensitivity=0.001, baseline=0.25), dict(bits=32, sensitivity=0.1),
                                dict(scheme="MDC"), dict(scheme="MDC", meaning=False), dict(meaning=False)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("sop", [TWELVE_LEAD, GENERAL_ECG])
def test_dicom_units_corrections_baselines_and_lead_codes(tmp_path, kw, sop):
    """Read as pydicom's own waveform_array converts the same file (no finding; kept so that they stay read)."""
    x = ecg(500)
    path = dicom_file(tmp_path / "e.dcm", [dicom_group(x, **kw)], sop)
    rec = read_quietly(path)
    assert rec.signal.shape == (12, 5000) and rec.source_rate == 500 and rec.warnings == []
    reference = pydicom.dcmread(path).waveform_array(0).T / PER_MV[kw.get("unit", "uV")]
    np.testing.assert_allclose(rec.signal, reference, atol=1e-9)
    assert np.abs(rec.signal - x).max() < 0.002


def test_dicom_channels_in_another_order_are_read_by_their_codes(tmp_path):
    x = ecg(500)
    order = ["V1", "V2", "V3", "V4", "V5", "V6", "aVF", "III", "I", "aVL", "II", "aVR"]
    rec = read_quietly(dicom_file(tmp_path / "order.dcm", [dicom_group(x, leads=order)]))
    assert np.abs(rec.signal - x).max() < 0.002


@pytest.mark.parametrize("median_label, rhythm_label", [("MEDIAN BEAT", "RHYTHM"), ("", ""),
                                                        ("Median beats", "Rhythm")])
def test_dicom_median_beats_before_the_rhythm_are_passed_over(tmp_path, median_label, rhythm_label):
    x, median = ecg(500), ecg(500, seconds=1.2, seed=5)
    groups = [dicom_group(median, label=median_label, originality="DERIVED"), dicom_group(x, label=rhythm_label)]
    rec = read_quietly(dicom_file(tmp_path / "median.dcm", groups))
    assert rec.signal.shape == (12, 5000) and np.abs(rec.signal - x).max() < 0.002


def test_dicom_leads_in_two_multiplex_groups_of_one_recording_are_joined(tmp_path):
    """The ECG IODs allow the 12 leads in several multiplex groups: limb leads in one, chest leads in another were
    refused as 'lacks lead(s) V1 … V6'. Groups of another rate or length (median beats) are not joined."""
    x, median = ecg(500), ecg(500, seconds=1.2, seed=5)
    groups = [dicom_group(x, leads=NAMES[:6]), dicom_group(x, leads=NAMES[6:]),
              dicom_group(median, leads=NAMES[6:], label="MEDIAN BEAT", originality="DERIVED")]
    rec = read_quietly(dicom_file(tmp_path / "split.dcm", groups))
    assert np.abs(rec.signal - x).max() < 0.002 and any("2 multiplex groups" in n for n in rec.notes)
    other = [dicom_group(x, leads=NAMES[:6]), dicom_group(ecg(250), fs=250, leads=NAMES[6:])]
    refused(dicom_file(tmp_path / "rates.dcm", other), r"lacks lead\(s\) V1, V2, V3, V4, V5, V6")


def test_a_13th_channel_repeating_a_lead_is_read_once_but_two_different_ones_are_refused(tmp_path):
    x = ecg(500)
    group = dicom_group(x, leads=[*NAMES, "II"])
    rec = read_quietly(dicom_file(tmp_path / "rhythm.dcm", [group]))
    assert np.abs(rec.signal - x).max() < 0.002
    digital = np.frombuffer(group.WaveformData, "<i2").reshape(-1, 13).copy()
    digital[:, 12] = 0  # the 13th channel, 'Lead II', flat
    group.WaveformData = digital.tobytes()
    refused(dicom_file(tmp_path / "two.dcm", [group]), "lead II on two channels holding different signals")


def test_a_dicom_value_longer_than_its_vr_allows_reads_without_pydicoms_warning(tmp_path):
    """A 20-character MultiplexGroupLabel (SH allows 16) printed pydicom's 'The value length (20) exceeds the
    maximum length of 16 allowed for VR SH' on stderr for every read, twice."""
    x = ecg(500)
    with warnings.catch_warnings():  # pydicom warns on writing it too
        warnings.simplefilter("ignore")
        path = dicom_file(tmp_path / "long.dcm", [dicom_group(x, label="Rhythm (10 seconds)")])
    assert np.abs(read_quietly(path).signal - x).max() < 0.002


def test_dicom_reads_in_two_threads_leave_pydicoms_validation_setting_as_it_was(tmp_path):
    """disable_value_validation() sets pydicom's process-wide setting and restores what it saw on entering: two
    reads overlapping in `ecgnet serve`'s worker threads let the first restore validation under the second (its
    UserWarning back mid-read) and the second then restore 'off' for the whole process. One read at a time."""
    import sys
    import threading

    from pydicom import config

    x = ecg(500)
    with warnings.catch_warnings():  # pydicom warns on writing it
        warnings.simplefilter("ignore")
        path = dicom_file(tmp_path / "long.dcm", [dicom_group(x, label="Rhythm (10 seconds)")])
    before = (config.settings._reading_validation_mode, config.settings.reading_validation_mode,
              config.settings._writing_validation_mode)
    start, errors, read = threading.Barrier(2), [], []

    def reader():
        start.wait()
        try:
            for _ in range(20):
                read.append(np.abs(read_source(path).signal - x).max())
        except BaseException as e:  # noqa: BLE001 — reported by the main thread
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: overlapping reads, were they allowed to overlap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pydicom's warning on a read that validation came back under
            threads = [threading.Thread(target=reader) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and len(read) == 40 and max(read) < 0.002
    assert (config.settings._reading_validation_mode, config.settings.reading_validation_mode,
            config.settings._writing_validation_mode) == before


def test_dicom_waveform_padding_is_no_signal(tmp_path):
    """Samples holding the group's WaveformPaddingValue (0x8000: no input) were read as −82 mV: V6 'saturated' and
    hypertrophy a positive call. Padding at the end is cut; a lead of padding alone is left out; padding inside
    the recording is refused."""
    x = ecg(500)

    def padded(name, channels, samples):
        group = dicom_group(x, padding=b"\x00\x80")
        digital = np.frombuffer(group.WaveformData, "<i2").reshape(-1, 12).copy()
        digital[np.ix_(samples, channels)] = -32768
        group.WaveformData = digital.tobytes()
        return dicom_file(tmp_path / name, [group])

    rec = read_quietly(padded("tail.dcm", [11], np.arange(4900, 5000)))
    assert rec.signal.shape == (12, 4900) and np.abs(rec.signal - x[:, :4900]).max() < 0.002
    assert any("cut 0.2 s at the end" in n and "V6" in n for n in rec.notes)
    rec = read_quietly(padded("avr.dcm", [3], np.arange(5000)))  # aVR not recorded: derived from I and II
    assert rec.derived_leads == ["aVR"] and np.abs(rec.signal - x).max() < 0.004
    assert any("aVR hold only the waveform padding value" in w for w in rec.warnings)
    refused(padded("inside.dcm", [11], np.arange(2000, 2100)), r"lead\(s\) V6 hold the waveform padding value .* "
                                                                 "inside the recording")
    refused(padded("none.dcm", list(range(12)), np.arange(5000)), "every lead holds only the waveform padding value")
    group = dicom_group(x, padding=b"\x00\x00")  # a padding value of 0 is an ordinary sample: it marks nothing
    digital = np.frombuffer(group.WaveformData, "<i2").reshape(-1, 12).copy()
    digital[2000:2100, 11] = 0  # V6 at exactly 0 for 0.2 s: signal, not a gap
    group.WaveformData = digital.tobytes()
    rec = read_quietly(dicom_file(tmp_path / "zero.dcm", [group]))
    assert rec.signal.shape == (12, 5000) and np.abs(rec.signal[11, 2000:2100]).max() < 0.002


# --- WFDB -----------------------------------------------------------------------------------------------

def packed_10_bit(path, digital: np.ndarray, fmt: str) -> None:
    """Samples (frames × signals, within ±511) in WFDB format 310 or 311 (signal(5)): three 10-bit samples in
    4 bytes, frame after frame; wfdb reads both formats but writes neither."""
    flat = digital.astype(np.int64).ravel() & 0x3FF
    a, b, c = flat[0::3], flat[1::3], flat[2::3]
    if fmt == "311":  # one 32-bit little-endian word: a in bits 0-9, b in 10-19, c in 20-29
        data = (a | (b << 10) | (c << 20)).astype("<u4").tobytes()
    else:  # two 16-bit words: a and b in bits 1-10, c's low 5 bits in the first's 11-15, its high 5 in the second's
        first, second = (a << 1) | ((c & 0x1F) << 11), (b << 1) | ((c >> 5) << 11)
        data = np.stack([first, second], 1).astype("<u2").tobytes()
    path.write_bytes(data)


@pytest.mark.parametrize("fmt", ["310", "311"])
def test_wfdb_formats_310_and_311(tmp_path, fmt):
    """No finding; 310/311 had no test (the byte count per sample, 4/3, is in the header check)."""
    x = ecg(500)
    digital = np.clip(np.round(x.T * 200), -511, 511).astype(np.int64)
    packed_10_bit(tmp_path / f"r{fmt}.dat", digital, fmt)
    sums = [(int(s) + 32768) % 65536 - 32768 for s in digital.sum(0)]
    lines = [f"r{fmt} 12 500 5000"] + [f"r{fmt}.dat {fmt} 200/mV 10 0 {digital[0, k]} {sums[k]} 0 {name}"
                                       for k, name in enumerate(NAMES)]
    (tmp_path / f"r{fmt}.hea").write_text("\n".join(lines) + "\n")
    expected = wfdb.rdrecord(str(tmp_path / f"r{fmt}")).p_signal.T
    rec = read_ecg(tmp_path / f"r{fmt}.hea", 500)
    np.testing.assert_allclose(rec.signal, expected, atol=1e-6)
    assert np.abs(rec.signal - x).max() < 0.003 and rec.warnings == [] and rec.notes == []


def test_a_ptb_style_record_with_frank_leads_and_wfdbs_own_gains(tmp_path):
    """PTB's layout (lowercase names, vx/vy/vz after the 12 leads, 1 kHz) with the gains and baselines
    wfdb.wrsamp computes itself (non-integer gains, baselines near −30,000); a Windows (CRLF) copy of its
    header; and a 5-minute record."""
    x = ecg(1000)
    names = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz"]
    signal = np.vstack([x, 0.5 * x[:3]]).T
    wfdb.wrsamp("s0010", fs=1000, units=["mV"] * 15, sig_name=names, p_signal=signal, fmt=["16"] * 15,
                write_dir=str(tmp_path))
    rec = read_ecg(tmp_path / "s0010.hea", 1000)
    assert np.abs(rec.signal - x).max() < 0.002 and rec.warnings == [] and rec.amplitude_trusted
    assert rec.notes == ["left out 3 channel(s) that are no standard lead: vx, vy, vz"]
    text = (tmp_path / "s0010.hea").read_text()
    (tmp_path / "crlf.hea").write_bytes(text.replace("s0010 ", "crlf ", 1).replace("\n", "\r\n").encode())
    np.testing.assert_array_equal(read_ecg(tmp_path / "crlf.hea", 1000).signal, rec.signal)
    long = ecg(500, seconds=300)
    wfdb.wrsamp("long", fs=500, units=["mV"] * 12, sig_name=NAMES, p_signal=long.T.copy(), fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    assert read_ecg(tmp_path / "long.hea", 100, resample=True).signal.shape == (12, 30000)


def test_a_multi_segment_record_is_refused_as_such(tmp_path):
    """wfdb writes multi-segment headers (and rdrecord joins them); ECGNet does not read them
    (docs/formats.md): one line says so, naming the header."""
    x = ecg(500)
    for k, part in enumerate((x[:, :2500], x[:, 2500:])):
        wfdb.wrsamp(f"seg_{k}", fs=500, units=["mV"] * 12, sig_name=NAMES, p_signal=part.T.copy(), fmt=["16"] * 12,
                    adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    multi = wfdb.MultiRecord(record_name="multi", n_sig=12, fs=500, sig_len=5000, seg_name=["seg_0", "seg_1"],
                             seg_len=[2500, 2500])
    multi.n_seg = 2  # wfdb 4.3's constructor does not set it
    multi.wrheader(write_dir=str(tmp_path))
    with pytest.raises(ECGNetError, match=r"multi\.hea: .*a multi-segment record") as e:
        read_ecg_any(tmp_path / "multi.hea", 100, resample=True)
    assert "\n" not in str(e.value)
    assert read_ecg(tmp_path / "seg_0.hea", 500).signal.shape == (12, 2500)


def test_a_dicom_channel_without_sensitivity_is_read_but_not_trusted(tmp_path):
    """ChannelSensitivity is required of calibrated samples (PS3.3 C.10.9.1.4): without it the samples' scale is
    unknown. Read as 1 µV per unit, as before, but said, and the amplitudes not trusted (no calls are made)."""
    x = ecg(500)
    group = dicom_group(x, sensitivity=1.0)
    for channel in group.ChannelDefinitionSequence[:2]:  # I and II
        del channel.ChannelSensitivity
    rec = read_quietly(dicom_file(tmp_path / "raw.dcm", [group]))
    assert np.abs(rec.signal - x).max() < 0.002 and not rec.amplitude_trusted
    assert any("lead(s) I, II without a ChannelSensitivity (or one of 0)" in w for w in rec.warnings)
    assert read_quietly(dicom_file(tmp_path / "ok.dcm", [dicom_group(x)])).amplitude_trusted
    zero = dicom_group(x, sensitivity=1.0)
    zero.ChannelDefinitionSequence[0].ChannelSensitivity = 0  # was read as 1: 'or 1.0'
    assert not read_quietly(dicom_file(tmp_path / "zero.dcm", [zero])).amplitude_trusted
