"""Real EDF/BDF files by an independent writer that ship with a library: pyedflib's test files (EDFlib's test
generator and EDFbrowser's exports): EDF+ and plain EDF of 11 signals at 200 Hz, 24-bit BDF+ of 5 signals at
5 rates each in data records of 1 s, 0.5 s and 2 s (rates of 487.5 and 499.5 Hz), and an EEG channel ('Fp1',
its physical range inverted) whose start has a subsecond offset and whose annotations are UTF-8 (edfio ships
none). They hold generic signals, no ECG lead. As they are, each is refused in one line that names the file and
its signals; relabelled here to ECG leads (the 16-byte label fields rewritten, every other byte kept) their
samples, in mV at the file's rate, are pyedflib's. Files of fewer than 8 leads, or of leads at different rates,
are no 12-lead ECG (read_source refuses them): their channels are compared through ``read_channels``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.readers import detect, read_ecg_any, read_source
from ecgnet.data.readers.edf import read_channels
from ecgnet.data.records import LEADS
from ecgnet.errors import ECGNetError

pyedflib = pytest.importorskip("pyedflib")
from pyedflib import highlevel  # noqa: E402

PACKAGE = Path(pyedflib.__file__).parent
TESTS = ["test_generator.edf", "test_legacy.edf", "test_generator.bdf", "test_generator_datarec_generator_0_5.bdf",
         "test_generator_datarec_generator_2.bdf", "test_subsecond.edf", "test_utf8.edf"]
FILES = [PACKAGE / "tests" / "data" / name for name in TESTS] + [PACKAGE / "data" / "test_generator.edf"]
EIGHT = ["ECG I", "ECG II", "V1", "V2", "V3", "V4", "V5", "V6"]  # the 8 independent leads
BDF_SECONDS = {"test_generator.bdf": 1.0, "test_generator_datarec_generator_0_5.bdf": 0.5,
               "test_generator_datarec_generator_2.bdf": 2.0}


def installed(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"pyedflib's {path.name} is not installed")
    return path


def relabelled(path: Path, out: Path, labels: list, dimensions: dict | None = None) -> Path:
    """A copy of ``path`` whose first signals are labelled ``labels`` (str as UTF-8, or bytes; None: kept) and whose
    physical dimension fields are ``dimensions`` ({signal: text}); every other byte as the writer wrote it."""
    data = bytearray(path.read_bytes())
    n = int(data[252:256])
    for i, label in enumerate(labels):
        if label is not None:
            field = label.encode("utf-8") if isinstance(label, str) else label
            data[256 + 16 * i:256 + 16 * (i + 1)] = field.ljust(16)
    for i, dimension in (dimensions or {}).items():
        data[256 + 96 * n + 8 * i:256 + 96 * n + 8 * (i + 1)] = dimension.encode().ljust(8)
    out.write_bytes(bytes(data))
    return out


def pyedflib_signals(path: Path) -> tuple[list[np.ndarray], list[dict]]:
    """pyedflib's physical samples of each signal and its signal headers (a plain EDF's 'EDF Annotations' channel,
    a signal to pyedflib, left out: EDF+ defines it, and ECGNet and edfio take it as one in any EDF)."""
    signals, headers, _ = highlevel.read_edf(str(path))
    kept = [i for i, h in enumerate(headers) if h["label"] != "EDF Annotations"]
    return [signals[i] for i in kept], [headers[i] for i in kept]


def assert_float32_of(actual: np.ndarray, expected: np.ndarray) -> None:
    """A record's signal holds ``expected`` to float32's precision (read_ecg_any's signal is float32)."""
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_file_as_it_is_is_refused_naming_its_signals(path):
    """Refused before: 'holds 0 standard lead(s) (none)', which did not say that its channels' labels were the
    cause, nor what they were."""
    installed(path)
    labels = [h["label"] for h in pyedflib_signals(path)[1]]
    assert detect(path) == "edf"
    for read in (read_source, lambda p: read_ecg_any(p, resample=True)):
        with pytest.raises(ECGNetError) as e:
            read(path)
        said = str(e.value)
        assert said.startswith(f"{path}: no ECG lead ") and "\n" not in said
        assert f"'{labels[0]}'" in said and "EDF Annotations" not in said and "BDF Annotations" not in said
        assert (f"among its {len(labels)} signals" if len(labels) > 1 else "in its one signal") in said


def test_ecgnet_predict_says_one_line_for_each_file():
    files = [installed(path) for path in FILES]
    result = CliRunner().invoke(app, ["predict", *map(str, files)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(files), result.output
    for path, line in zip(files, errors):
        assert line.startswith(f"error: {path}: no ECG lead "), line


@pytest.mark.parametrize("path", [FILES[0], FILES[1], FILES[-1]], ids=["edf+", "plain edf", "pyedflib/data"])
@pytest.mark.parametrize("dimension", ["uV", "mV"])
def test_eleven_signals_relabelled_as_8_leads_read_as_pyedflib_reads_them(tmp_path, path, dimension):
    """600 s at 200 Hz in data records of 1 s, 3 signals beside the leads; the samples in mV are pyedflib's
    (µV / 1000, or as written when the dimension says mV), at the file's rate through read_ecg_any too."""
    installed(path)
    ecg = relabelled(path, tmp_path / "eight.edf", EIGHT, {i: dimension for i in range(8)})
    signals, headers = pyedflib_signals(ecg)
    to_mv = 1e-3 if dimension == "uV" else 1.0
    for rec in (read_source(ecg), read_ecg_any(ecg, sampling_rate=200)):
        assert rec.source_rate == rec.sampling_rate == 200 == headers[0]["sample_frequency"]
        assert rec.signal.shape == (12, len(signals[0])) == (12, 120_000)
        for i, label in enumerate(EIGHT):
            assert_float32_of(rec.signal[LEADS.index(label.removeprefix("ECG "))], signals[i] * to_mv)
        assert rec.derived_leads == ["III", "aVR", "aVL", "aVF"]
        assert_float32_of(rec.signal[LEADS.index("III")], (signals[1] - signals[0]) * to_mv)
        ignored = ", ".join(repr(h["label"]) for h in headers[8:])
        assert rec.warnings[0] == f"3 channels are not among the 12 standard leads: ignored ({ignored})"


def test_patient_fields_are_pyedflibs(tmp_path):
    path = installed(FILES[0])
    rec = read_source(relabelled(path, tmp_path / "eight.edf", EIGHT))
    reader = pyedflib.EdfReader(str(path))
    try:
        start, code, birth = reader.getStartdatetime(), reader.getPatientCode(), reader.getBirthdate()
        sex = reader.getSex() if hasattr(reader, "getSex") else reader.getGender()
    finally:
        reader.close()
    assert rec.patient["acquired"] == start.strftime("%Y-%m-%d %H:%M:%S") == "2011-04-04 12:57:02"
    assert rec.patient["id"] == code == "abcxyz99" and rec.sex == sex.lower() == "male"
    assert birth == "30 jun 1969" and rec.patient["birth_date"] == "1969-06-30" and rec.age == 41
    legacy = read_source(relabelled(installed(FILES[1]), tmp_path / "legacy.edf", EIGHT))
    assert legacy.patient["identification"] == "Legacy patient description" and legacy.sex is None


@pytest.mark.parametrize("name", BDF_SECONDS)
def test_bdf_24_bit_at_5_rates_in_records_of_half_one_and_two_seconds(tmp_path, name):
    """Each channel at its own rate (samples per record / record duration: 487.5 Hz in records of 2 s), its
    24-bit samples pyedflib's; as 5 leads at 5 rates it is no 12-lead ECG, refused naming the rates."""
    path = installed(PACKAGE / "tests" / "data" / name)
    ecg = relabelled(path, tmp_path / name, ["I", "II", "V1", "V2", "V3"])
    signals, headers = pyedflib_signals(ecg)
    rates = [h["sample_frequency"] for h in headers]
    assert float(ecg.read_bytes()[244:252]) == BDF_SECONDS[name] and len(set(rates)) == 5
    found = read_channels(ecg, DEFAULT_LIMITS, twelve_lead=False)
    assert [c.lead for c in found.channels] == ["I", "II", "V1", "V2", "V3"]
    for channel, expected, rate in zip(found.channels, signals, rates):
        assert channel.rate == rate and len(channel.mv) == len(expected) == 30 * rate
        np.testing.assert_allclose(channel.mv, expected / 1000, rtol=0, atol=1e-12)
    said = ", ".join(f"{r:g}" for r in sorted(rates))
    with pytest.raises(ECGNetError, match=rf"the ECG channels have different sampling rates \({said} Hz\)"):
        read_source(ecg)


@pytest.mark.parametrize("name", BDF_SECONDS)
def test_bdf_leads_between_signals_at_other_rates(tmp_path, name):
    """Two leads (800 and 975 samples a record) interleaved with signals at three other rates and the
    annotation signal: each lead is its own samples, not a neighbour's, with the others named as left out."""
    path = installed(PACKAGE / "tests" / "data" / name)
    ecg = relabelled(path, tmp_path / name, [None, "ECG II", None, "ECG V2"], {1: "mV", 3: "mV"})
    signals, headers = pyedflib_signals(ecg)
    found = read_channels(ecg, DEFAULT_LIMITS, twelve_lead=False)
    assert [(c.label, c.lead, c.rate) for c in found.channels] == [
        ("ECG II", "II", headers[1]["sample_frequency"]), ("ECG V2", "V2", headers[3]["sample_frequency"])]
    for channel, expected in zip(found.channels, (signals[1], signals[3])):
        np.testing.assert_allclose(channel.mv, expected, rtol=0, atol=1e-9)
    assert found.warnings == [f"3 channels are not among the 12 standard leads: ignored "
                              f"({', '.join(repr(headers[i]['label']) for i in (0, 2, 4))})"]
    with pytest.raises(ECGNetError, match=r"holds 2 standard lead\(s\) \(II, V2\)"):
        read_source(ecg)


@pytest.mark.parametrize("name", ["test_subsecond.edf", "test_utf8.edf"])
def test_a_subsecond_start_inverted_range_and_utf8_annotations(tmp_path, name):
    """EDFbrowser's Fp1 at 128 Hz, physical range 8711..-8711 (inverted): pyedflib's samples, not sign-flipped.
    The first data record starts 0.3945312 s after the header's second: the recording is continuous (onsets
    relative to it), its start time has that fraction, and the annotations (one in Chinese, UTF-8) are those
    pyedflib reads, relative to the start. pyedflib's own getStartdatetime says .039453 s (it divides EDFlib's
    100 ns units by 100): its raw ``starttime_subsecond`` is compared."""
    path = installed(PACKAGE / "tests" / "data" / name)
    ecg = relabelled(path, tmp_path / name, ["ECG II"])
    with pytest.raises(ECGNetError, match=r"holds 1 standard lead\(s\) \(II\)"):
        read_source(ecg)
    signals, headers = pyedflib_signals(ecg)
    assert headers[0]["physical_min"] > headers[0]["physical_max"]
    found = read_channels(ecg, ReadLimits(max_seconds=698), twelve_lead=False)  # 11 min 38 s
    (channel,) = found.channels
    assert channel.lead == "II" and channel.rate == headers[0]["sample_frequency"] == 128
    np.testing.assert_allclose(channel.mv, signals[0] / 1000, rtol=0, atol=1e-12)
    reader = pyedflib.EdfReader(str(ecg))
    try:
        start, subsecond = reader.getStartdatetime(), reader.starttime_subsecond
        onsets, _, texts = reader.readAnnotations()
    finally:
        reader.close()
    fraction = f"{subsecond / 1e7:.6f}"[1:]  # EDFlib's units of 100 ns
    assert found.patient["acquired"] == f"{start:%Y-%m-%d %H:%M:%S}{fraction}" == "2020-01-24 04:05:56.394531"
    assert [a.text for a in found.annotations] == list(texts)
    np.testing.assert_allclose([a.onset for a in found.annotations], onsets, atol=1e-7)
    assert found.sex == "female" and found.patient["birth_date"] == "1998-01-20" and found.age == 22
    assert not found.patient.get("name")  # 'X,X': last and first name unknown (was read as the name 'X,X')
    if name == "test_utf8.edf":
        assert "中文测试八个字" in texts


def test_a_utf8_or_latin1_label_is_named_as_written(tmp_path):
    """A label in UTF-8 ('呼吸', respiration) was named in the warning as Latin-1 read it ('å\\x91¼å\\x90¸');
    Latin-1 ('Atmung ä') stays readable. pyedflib refuses both files (EDF asks for ASCII labels); ECGNet reads
    the leads and names the channel left out as the writer wrote it. A UTF-8 label cut inside a character by the
    field's 16 bytes (was: all of it in mojibake) is named up to that character; a Latin-1 letter in the last byte
    stays one."""
    path = installed(FILES[0])
    cut = "呼吸呼吸呼吸".encode()[:16]  # 18 bytes: the sixth character's first byte is the field's last
    for label, shown in (("呼吸", "'呼吸'"), (b"Atmung \xe4", "'Atmung ä'"), (cut, "'呼吸呼吸呼'"),
                         (b"Thorax-Atmung  \xe4", "'Thorax-Atmung  ä'")):
        ecg = relabelled(path, tmp_path / "labels.edf", [*EIGHT, label])
        rec = read_source(ecg)
        assert rec.warnings[0] == f"3 channels are not among the 12 standard leads: ignored ({shown}, 'sine 17 Hz', " \
                                  "'sine 50 Hz')"
        assert rec.signal.shape == (12, 120_000)
