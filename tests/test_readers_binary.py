"""DICOM (written by pydicom, also under another SOP class), EDF/EDF+ (written by pyedflib and edfio) and
SCP-ECG, and files of no ECG format: read from what independent writers produce, malformed ones refused
with one ECGNetError naming the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from ecg_writers import NAMES, ecg, write_dicom, write_edf_pyedflib

from ecgnet.data.limits import ReadLimits
from ecgnet.data.readers import READ, detect, read_source
from ecgnet.data.records import LEADS
from ecgnet.errors import ECGNetError

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"


def refused(path, match, **kw):
    with pytest.raises(ECGNetError, match=match) as e:
        read_source(path, **kw)
    assert str(path) in str(e.value)


# --- DICOM ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sop", ["1.2.840.10008.5.1.4.1.1.9.1.1", "1.2.840.10008.5.1.4.1.1.9.1.2",
                                 "1.2.840.10008.5.1.4.1.1.9.4.1"])  # 12-lead, general ECG, basic voice audio
def test_dicom_written_by_pydicom(tmp_path, sop):
    x = ecg(500)
    path = write_dicom(tmp_path / "e.dcm", x, sop_class=sop)
    assert detect(path) == "dicom"
    rec = read_source(path)
    assert rec.format == "dicom" and rec.source_rate == 500 and np.abs(rec.signal - x).max() < 0.002
    assert rec.statements == ["Sinus rhythm"] and rec.sex == "male" and rec.age == 55
    other = not sop.startswith("1.2.840.10008.5.1.4.1.1.9.1.")
    assert other == any("SOP class" in m for m in rec.warnings + list(getattr(rec, "notes", [])))


def test_dicom_without_preamble(tmp_path):
    import pydicom

    x = ecg(500)
    ds = pydicom.dcmread(write_dicom(tmp_path / "e.dcm", x))
    ds.preamble = None
    del ds.file_meta  # the bare data set: no preamble, no "DICM", no file meta group
    ds.save_as(tmp_path / "bare", enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert (tmp_path / "bare").read_bytes()[128:132] != b"DICM"
    assert detect(tmp_path / "bare") == "dicom"
    assert np.abs(read_source(tmp_path / "bare").signal - x).max() < 0.002
    ds.save_as(tmp_path / "implicit", enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert detect(tmp_path / "implicit") == "dicom"  # was 'a binary file of unknown format' (found in an audit)
    np.testing.assert_array_equal(read_source(tmp_path / "implicit").signal, read_source(tmp_path / "bare").signal)


def test_dicom_8_leads_and_malformed(tmp_path):
    x = ecg(500)
    rec = read_source(write_dicom(tmp_path / "eight.dcm", x, leads=["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]))
    assert rec.derived_leads == ["III", "aVR", "aVL", "aVF"] and np.abs(rec.signal - x).max() < 0.004  # 2 quanta
    refused(write_dicom(tmp_path / "three.dcm", x, leads=["I", "II", "III"]), "holds 3 standard lead")
    refused(write_dicom(tmp_path / "e.dcm", x), "over the limit", limits=ReadLimits(max_seconds=5))
    data = (tmp_path / "e.dcm").read_bytes()
    (tmp_path / "trunc.dcm").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "trunc.dcm", "cannot be read as DICOM|truncated")


# --- EDF ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels,dimension", [(NAMES, "mV"), ([f"ECG {n}" for n in NAMES], "uV"),
                                              ([f"ECG-{n}" for n in NAMES], "mV"), ([f"EKG_{n}" for n in NAMES], "uV")])
def test_edf_written_by_pyedflib(tmp_path, labels, dimension):
    x = ecg(500)
    path = write_edf_pyedflib(tmp_path / "e.edf", x, labels=labels, dimension=dimension)
    assert detect(path) == "edf"
    rec = read_source(path)
    assert rec.format == "edf" and rec.source_rate == 500 and np.abs(rec.signal - x).max() < 0.002


def test_edf_written_by_edfio_with_patient_fields(tmp_path):
    import datetime

    import edfio

    x = ecg(250)
    signals = [edfio.EdfSignal(x[i], sampling_frequency=250, label=n, physical_dimension="mV",
                               physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    edf = edfio.Edf(signals, patient=edfio.Patient(code="E-5", sex="F", birthdate=datetime.date(1950, 6, 1)),
                    recording=edfio.Recording(startdate=datetime.date(2020, 5, 31)), starttime=datetime.time(9, 30))
    edf.write(tmp_path / "e.edf")
    rec = read_source(tmp_path / "e.edf")
    assert rec.source_rate == 250 and np.abs(rec.signal - x).max() < 0.002
    assert rec.sex == "female" and rec.age == 69 and rec.patient["id"] == "E-5"


def test_bdf_written_by_edfio(tmp_path):
    import edfio

    x = ecg(500)
    signals = [edfio.BdfSignal(x[i], sampling_frequency=500, label=f"ECG {n}", physical_dimension="mV",
                               physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    edfio.Bdf(signals).write(tmp_path / "e.bdf")
    assert detect(tmp_path / "e.bdf") == "edf"
    rec = read_source(tmp_path / "e.bdf")
    assert rec.source_rate == 500 and np.abs(rec.signal - x).max() < 1e-4  # 24 bits


def test_edf_malformed(tmp_path):
    x = ecg(500)
    path = write_edf_pyedflib(tmp_path / "e.edf", x)
    data = path.read_bytes()
    (tmp_path / "trunc.edf").write_bytes(data[:-5000])
    refused(tmp_path / "trunc.edf", "truncated")
    refused(write_edf_pyedflib(tmp_path / "three.edf", x, labels=["I", "II", "III"]), "holds 3 standard lead")
    refused(write_edf_pyedflib(tmp_path / "v.edf", x, labels=["I", "II", *NAMES[6:11]]), "lacks lead.*V6")
    refused(path, "over the limit", limits=ReadLimits(max_values=10_000))
    bad = bytearray(data)
    bad[252:256] = b"9999"  # 9,999 signals declared
    (tmp_path / "signals.edf").write_bytes(bytes(bad))
    refused(tmp_path / "signals.edf", "9999 signals")


def test_edf_channels_at_different_rates_are_refused(tmp_path):
    import edfio

    x = ecg(500)
    signals = [edfio.EdfSignal(x[i] if i else x[i, ::2], sampling_frequency=500 if i else 250, label=n,
                               physical_dimension="mV", physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    edfio.Edf(signals).write(tmp_path / "rates.edf")
    refused(tmp_path / "rates.edf", "different sampling rates")


@pytest.mark.parametrize("gap", [lambda r: 5 if r >= 5 else 0,  # 5 s before data record 5
                                 lambda r: 0.0009 * r])  # 0.9 ms a record: under half a sample each, 8 ms in all
def test_a_discontinuous_edf_plus_is_refused(tmp_path, gap):
    """EDF+D (a 5 s gap before data record 5) was read as one continuous signal in silence; pyedflib refuses it
    too (found in an audit). So are gaps of less than half a sample a record that add up (a review). The same file
    marked EDF+C with contiguous onsets still reads."""
    x = ecg(500)
    data = bytearray(write_edf_pyedflib(tmp_path / "c.edf", x).read_bytes())
    n = int(data[252:256])
    records, header = int(data[236:244]), int(data[184:192])
    per = [int(data[256 + 216 * n + 8 * i: 256 + 216 * n + 8 * (i + 1)]) for i in range(n)]
    labels = [data[256 + 16 * i: 256 + 16 * (i + 1)].decode().strip() for i in range(n)]
    annotations, seconds = labels.index("EDF Annotations"), float(data[244:252])
    data[192:236] = b"EDF+D".ljust(44)
    for r in range(records):  # each record's time-keeping annotation: onsets jump by 5 s at record 5
        start = header + r * 2 * sum(per) + 2 * sum(per[:annotations])
        block = bytearray(2 * per[annotations])
        tal = f"+{r * seconds + gap(r):.6f}\x14\x14\x00".encode()
        block[:len(tal)] = tal
        data[start:start + len(block)] = block
    (tmp_path / "d.edf").write_bytes(bytes(data))
    refused(tmp_path / "d.edf", "discontinuous EDF\\+ recording \\(EDF\\+D")
    assert read_source(tmp_path / "c.edf").signal.shape == (12, 5000)


def test_the_edf_budget_counts_the_ecg_channels_and_a_holter_is_named_first(tmp_path):
    """The budget multiplied the fastest channel by every channel, so 12 leads at 500 Hz beside an 8 kHz pace
    channel (or an annotation channel) were refused for --max-values though 12 × 500 Hz were all to decode; a
    24 h 3-lead Holter was refused for its length before its leads (found in an audit)."""
    import edfio

    x = ecg(500, seconds=30)
    signals = [edfio.EdfSignal(x[i], sampling_frequency=500, label=n, physical_dimension="mV",
                               physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    signals.append(edfio.EdfSignal(np.zeros(30 * 8000), sampling_frequency=8000, label="Pace",
                                   physical_dimension="mV", physical_range=(-10, 10)))
    edfio.Edf(signals).write(tmp_path / "pace.edf")
    budget = ReadLimits(max_values=12 * 500 * 30)
    assert read_source(tmp_path / "pace.edf", limits=budget).signal.shape == (12, 15000)
    refused(tmp_path / "pace.edf", "over the limit", limits=ReadLimits(max_values=12 * 500 * 30 - 1))
    data = bytearray(write_edf_pyedflib(tmp_path / "holter.edf", ecg(500), labels=["II", "V1", "V5"]).read_bytes())
    data[236:244] = b"86400".ljust(8)  # 24 h of 1 s data records
    (tmp_path / "holter.edf").write_bytes(bytes(data))
    refused(tmp_path / "holter.edf", "holds 3 standard lead")


def test_a_plain_edf_free_text_patient_field_is_kept_whole(tmp_path):
    """'Mueller Hans 12.03.1950 M  ID 556677' was split as EDF+ subfields: id 'Mueller', name 'M'."""
    import edfio

    x = ecg(500)
    signals = [edfio.EdfSignal(x[i], sampling_frequency=500, label=n, physical_dimension="mV",
                               physical_range=(-10, 10)) for i, n in enumerate(NAMES)]
    edfio.Edf(signals).write(tmp_path / "plain.edf")
    data = bytearray((tmp_path / "plain.edf").read_bytes())
    data[8:88] = b"Mueller Hans 12.03.1950 M  ID 556677".ljust(80)
    (tmp_path / "plain.edf").write_bytes(bytes(data))
    rec = read_source(tmp_path / "plain.edf")
    assert rec.patient.get("identification") == "Mueller Hans 12.03.1950 M ID 556677"
    assert "id" not in rec.patient and "name" not in rec.patient and rec.sex is None


# --- SCP-ECG ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")
def test_scp_malformed(tmp_path):
    data = (FORMATS_DIR / "scp_ecg" / "ecgtoolkit_Example.scp").read_bytes()
    (tmp_path / "trunc.scp").write_bytes(data[: len(data) // 2])
    assert detect(tmp_path / "trunc.scp") == "scp-ecg"
    refused(tmp_path / "trunc.scp", "truncated")
    bad = bytearray(data)
    sec3 = int.from_bytes(data[22 + 10 * 3 + 6: 22 + 10 * 3 + 10], "little") - 1  # section 0's pointer to section 3
    bad[sec3 + 18 + 4: sec3 + 18 + 8] = (2 ** 31).to_bytes(4, "little")  # lead 1 ends at sample 2³¹
    (tmp_path / "huge.scp").write_bytes(bytes(bad))
    refused(tmp_path / "huge.scp", "over the limit")


# --- not an ECG ---------------------------------------------------------------------------------------

def test_files_of_other_kinds_get_one_line_naming_what_they_are(tmp_path):
    cases = {
        "a.png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
        "a.pdf": (b"%PDF-1.7\n" + bytes(100), "PDF document"),
        "a.csv": (b"time,I,II,III\n0,0.1,0.2,0.1\n", "CSV"),
        "a.xml": (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "root element <svg>"),
        "a.hea": (b"not a header at all\n", "malformed WFDB record line 'not a header at all'"),  # says what it lacks
    }
    for name, (data, what) in cases.items():
        (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("x.txt", "x")
    cases["a.zip"] = (b"", "zip archive")
    for name, (_, what) in cases.items():
        with pytest.raises(ECGNetError) as e:
            detect(tmp_path / name)
        message = str(e.value)
        assert what in message and str(tmp_path / name) in message and "\n" not in message
        assert READ in message or name == "a.hea"  # a header's own problem, not the list of formats


@pytest.mark.parametrize("label,lead", [("I", "I"), ("Lead I (Einthoven)", "I"), ("Lead aVR, augmented voltage, right arm", "AVR"),
                                        ("MDC_ECG_LEAD_AVF", "AVF"), ("ECG V1", "V1"), ("EKG II", "II"), ("DIII", "III"),
                                        ("avl", "AVL"), ("-aVR", None), ("V4R", None), ("ECG1", None), ("Pleth", None),
                                        ("ECG-I", "I"), ("Lead V2", "V2"), ("vx", None), ("MLII", None),
                                        ("Lead -aVR", None), ("ECG Lead -aVR", None), ("MDC_ECG_LEAD_-aVR", None),
                                        ("ECG -aVR", None), ("lead_-III", None), ("EKG-V1", "V1"),
                                        ("ECG - I", "I"), ("Lead - II", "II"), ("EKG - V1", "V1"),  # a spaced dash
                                        ("ECG LA-RA", "I"), ("LL-RA", "II"), ("LL-LA", "III"),  # electrode pairs
                                        ("RA-LA", None), ("RA-LL", None)])  # the reverse pair is the inverted lead
def test_device_lead_labels(label, lead):
    from ecgnet.data.readers.common import lead_name

    assert lead_name(label) == lead


@pytest.mark.parametrize("meaning, code", [("Lead -aVR", "5.6.3-9-62"), ("Lead aVR", "5.6.3-9-65")])
def test_an_inverted_avr_is_never_read_as_avr(tmp_path, meaning, code):
    """A channel of −aVR (Cabrera displays; DICOM 'Lead -aVR' or SCP-ECG code 65) was read as aVR with the wrong
    polarity, 1 mV off, without a word: the MI probability moved from 0.60 to 0.72 (found in an audit). It is left
    out and aVR derived from I and II, with a note."""
    import pydicom

    signal = ecg()
    path = write_dicom(tmp_path / "cabrera.dcm", signal)
    ds = pydicom.dcmread(path)
    group = ds.WaveformSequence[0]
    source = group.ChannelDefinitionSequence[3].ChannelSourceSequence[0]  # aVR
    source.CodeMeaning, source.CodeValue = meaning, code
    digital = np.frombuffer(group.WaveformData, "<i2").reshape(-1, 12).copy()
    digital[:, 3] = -digital[:, 3]  # the channel holds −aVR
    group.WaveformData = digital.tobytes()
    ds.save_as(path, enforce_file_format=True)
    rec = read_source(path)
    avr = rec.signal[LEADS.index("AVR")]
    np.testing.assert_allclose(avr, -(rec.signal[0] + rec.signal[1]) / 2, atol=1e-9)  # derived from I and II
    np.testing.assert_allclose(avr, signal[3], atol=0.01)  # the true aVR, not its inverse
    assert "aVR" in rec.derived_leads and any("aVR" in n for n in rec.notes + rec.warnings)


def test_a_big_endian_dicom_is_read_in_its_byte_order(tmp_path):
    """Explicit VR Big Endian waveforms were decoded as little-endian: up to 83 mV off, shown only as an
    amplitude warning (found in an audit; pydicom's own waveform_array assumes little-endian too)."""
    import pydicom
    from pydicom.uid import ExplicitVRBigEndian

    signal = ecg()
    little = write_dicom(tmp_path / "le.dcm", signal)
    ds = pydicom.dcmread(little)
    group = ds.WaveformSequence[0]
    group.WaveformData = np.frombuffer(group.WaveformData, "<i2").astype(">i2").tobytes()  # as a big-endian writer
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    pydicom.dcmwrite(tmp_path / "be.dcm", ds, implicit_vr=False, little_endian=False, force_encoding=True)
    assert pydicom.dcmread(tmp_path / "be.dcm").original_encoding == (False, False)
    np.testing.assert_array_equal(read_source(tmp_path / "be.dcm").signal, read_source(little).signal)


def test_dicom_age_from_the_birth_date_when_patient_age_is_absent(tmp_path):
    """No PatientAge but a birth date and an acquisition date: the age was None (EDF and Philips computed it)."""
    import pydicom

    ds = pydicom.dcmread(write_dicom(tmp_path / "a.dcm", ecg()))
    del ds.PatientAge
    ds.PatientBirthDate, ds.AcquisitionDateTime = "19610520", "20210304101112"
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    assert read_source(tmp_path / "a.dcm").age == 59
    ds.PatientAge = "006M"  # months
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    assert read_source(tmp_path / "a.dcm").age == 0.5


@pytest.mark.parametrize("micro", [b"\xb5V", b"\xc2\xb5V"])
def test_edf_micro_sign_in_latin_1_or_utf_8_is_microvolts(tmp_path, micro):
    """A dimension of 'µV' as Latin-1 (0xB5) or UTF-8 bytes was refused as unknown units '�V' (edfio decodes ASCII)."""
    x = ecg(500)
    path = write_edf_pyedflib(tmp_path / "u.edf", x, dimension="uV")
    data = bytearray(path.read_bytes())
    n = int(data[252:256])
    for i in range(n):  # each signal's 8-byte physical-dimension field
        start = 256 + 96 * n + 8 * i
        if data[start:start + 8].strip() == b"uV":
            data[start:start + 8] = micro.ljust(8)
    path.write_bytes(bytes(data))
    assert np.abs(read_source(path).signal - x).max() < 0.002


def test_a_dicom_channel_label_never_overrides_its_coded_lead(tmp_path):
    """Free-text ChannelLabels like 'ECG - I' (a spaced dash) were taken for inverted leads and every channel
    dropped ('holds 0 standard leads'), though each channel's code and meaning named its lead (found in review)."""
    import pydicom

    x = ecg()
    ds = pydicom.dcmread(write_dicom(tmp_path / "labels.dcm", x))
    for channel, name in zip(ds.WaveformSequence[0].ChannelDefinitionSequence, NAMES):
        channel.ChannelLabel = f"ECG - {name}" if name != "aVR" else "-aVR"  # even a label saying 'inverted'
    ds.save_as(tmp_path / "labels.dcm", enforce_file_format=True)
    assert np.abs(read_source(tmp_path / "labels.dcm").signal - x).max() < 0.002


def test_a_deflated_dicom_is_read_but_a_deflate_bomb_is_refused_before_inflating(tmp_path):
    """pydicom inflates a Deflated Explicit VR data set whole: 1 MiB of upload held ~1 GiB and took the server
    from 1.1 to 3.2 GiB in 9 s (found in a serve audit). The inflated size is measured, capped, first."""
    import zlib

    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    x = ecg(500)
    ds = pydicom.dcmread(write_dicom(tmp_path / "e.dcm", x))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    assert np.abs(read_source(tmp_path / "deflated.dcm").signal - x).max() < 0.002  # a real deflated file: read
    raw = (tmp_path / "deflated.dcm").read_bytes()
    meta_end = _file_meta_end(raw)  # the deflated data set follows the file meta group
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = b"\x08\x00\x16\x00UI\x1e\x00" + b"1.2.840.10008.5.1.4.1.1.9.1.1\x00" + b"\x09\x00\x10\x00OB\x00\x00" + \
        (8 << 20).to_bytes(4, "little")
    bomb = squeeze.compress(body) + squeeze.compress(bytes(8 << 20)) + squeeze.flush()  # 8 MiB of zeros: ~8 kB
    (tmp_path / "bomb.dcm").write_bytes(raw[:meta_end] + bomb)
    small = ReadLimits(max_file_bytes=1 << 20)
    with pytest.raises(ECGNetError, match=r"bomb\.dcm: a deflated DICOM data set that inflates to over 1048576 bytes"):
        read_source(tmp_path / "bomb.dcm", limits=small)
    (tmp_path / "damaged.dcm").write_bytes(raw[:meta_end] + b"\xff" * 64)
    with pytest.raises(ECGNetError, match=r"damaged\.dcm: .*deflated data set is damaged"):
        read_source(tmp_path / "damaged.dcm")


def _file_meta_end(raw: bytes) -> int:
    """The offset after a DICOM file's meta group (preamble, 'DICM', group 0002 of the length it declares)."""
    length = int.from_bytes(raw[140:144], "little")  # (0002,0000) UL: the group's length after this element
    return 144 + length


@pytest.mark.parametrize("field, message", [("0", "'0', is not a positive number of seconds"),
                                            ("nan", "'nan', is not a positive"), ("-1", "'-1', is not a positive"),
                                            ("1e-300", "sampling rate .* is outside"), ("x", "'x', is not a positive")])
def test_an_edf_data_record_duration_that_is_no_duration_is_refused_as_such(tmp_path, field, message):
    """A duration of 0 gave edfio's UnboundLocalError, 1e-300 or nan 'a discontinuous EDF+ recording' of a plain
    EDF file (found in a serve audit)."""
    data = bytearray(write_edf_pyedflib(tmp_path / "e.edf", ecg(500)).read_bytes())
    data[244:252] = field.encode().ljust(8)
    (tmp_path / "e.edf").write_bytes(bytes(data))
    refused(tmp_path / "e.edf", message)


def test_a_truncated_dicom_or_edf_is_said_to_be_truncated(tmp_path):
    """A DICOM cut inside its waveform sequence said 'waveform samples of 16 bits, interpretation '', are not read'
    (or only 'without a waveform' for a 12-lead ECG's SOP class), and an EDF cut inside its header 'declares 3584
    bytes … (need 3584; file of 1000 bytes)': each now says truncated (found in a hospital audit)."""
    from ecgnet.data.readers import read_ecg_any

    signal = np.random.default_rng(0).normal(0, 0.3, (12, 5000))
    raw = write_dicom(tmp_path / "a.dcm", signal).read_bytes()
    data_at = raw.index(b"\x00\x54\x10\x10")  # the tag (5400,1010) WaveformData, little endian
    for n in (data_at - 2, 420):  # just before WaveformData's tag, and just after the SOP class
        (tmp_path / "cut.dcm").write_bytes(raw[:n])
        with pytest.raises(ECGNetError, match="truncated or incomplete"):
            read_ecg_any(tmp_path / "cut.dcm", 100, resample=True)
    edf = write_edf_pyedflib(tmp_path / "a.edf", signal).read_bytes()
    (tmp_path / "cut.edf").write_bytes(edf[:1000])
    with pytest.raises(ECGNetError, match=r"cut.edf: 1000 bytes, shorter than its own header \(\d+ bytes for \d+ "
                                          r"signals\): truncated"):
        read_ecg_any(tmp_path / "cut.edf", 100, resample=True)
