"""The readers under Hypothesis: damaged WFDB headers and signal files, configs, ``#Dx`` lines and
RECORDS lists end in a clean one-line ``ECGNetError`` naming the file, or a correct result (the cases
and the oracle are in ``tests/fuzzing.py``; ``benchmarks/fuzz_campaign.py`` runs them 100 k times).

The examples are derandomised (the same ones every run, so the suite cannot flake) and bounded to a few
seconds; the 5 s deadline per example is a hang detector on a loaded 2-core machine, not a speed test.
The regressions below pin what the campaign found and the allocation guard of ``records.py``.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings

import fuzzing
from ecgnet.config import load_config, parse_config
from ecgnet.data.record_files import find_records
from ecgnet.data.external import parse_dx
from ecgnet.data.records import read_ecg
from ecgnet.errors import ECGNetError

FUZZ = settings(derandomize=True, database=None, deadline=timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MAX_PEAK_BYTES = 64 * 2**20  # the synthetic records hold < 50 kB of samples


@settings(FUZZ, max_examples=60)
@given(fuzzing.record_cases())
def test_damaged_records(case):
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        try:
            fuzzing.check_record(case, Path(tmp))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"{peak / 2**20:.0f} MiB allocated for a record of < 50 kB"


@settings(FUZZ, max_examples=150)
@given(fuzzing.config_values())
def test_config_values(raw):
    fuzzing.check_config(raw)


@settings(FUZZ, max_examples=60)
@given(fuzzing.YAML_TEXT)
def test_config_files(data):
    with tempfile.TemporaryDirectory() as tmp:
        fuzzing.check_config_file(data, Path(tmp))


@settings(FUZZ, max_examples=150)
@given(fuzzing.dx_headers())
def test_dx_lines(text):
    fuzzing.check_dx(text)


@settings(FUZZ, max_examples=40)
@given(fuzzing.record_trees())
def test_records_lists(tree):
    with tempfile.TemporaryDirectory() as tmp:
        fuzzing.check_find_records(tree, Path(tmp))


# --- the allocation guard: a header's claims are checked before wfdb reads a sample ----------------

def _header(path: Path, **fields) -> Path:
    """The record's header with record-line fields replaced (n_sig, fs, sig_len as strings)."""
    lines = path.read_text().splitlines()
    name, n_sig, fs, sig_len = lines[0].split()[:4]
    values = {"n_sig": n_sig, "fs": fs, "sig_len": sig_len, **fields}
    lines[0] = " ".join([name, values["n_sig"], values["fs"], values["sig_len"]]).rstrip()
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def no_wfdb_read(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("wfdb.rdrecord was called: the guard let the header through")

    monkeypatch.setattr(wfdb, "rdrecord", refuse)


@pytest.mark.parametrize("sig_len, message", [  # the file holds 1000
    ("1000000000000", r"declares 10000000000 s of signal, over the limit of 600 s \(max_seconds; --max-seconds widens it\)"),
    ("2000", r"rec\.dat holds 24000 bytes; the header's 2000 samples")])
def test_more_samples_than_the_file_holds_refused_before_reading(write_record, no_wfdb_read, sig_len, message):
    path = _header(write_record()[0], sig_len=sig_len)  # the file holds 1000 samples × 12 leads
    with pytest.raises(ECGNetError, match=message) as info:
        read_ecg(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("fs", ["0", "0.001", "1000000000"])
def test_implausible_sampling_rates_refused_before_reading(write_record, no_wfdb_read, fs):
    path = _header(write_record()[0], fs=fs)
    with pytest.raises(ECGNetError, match="sampling rate .* outside 10 Hz–100000 Hz") as info:
        read_ecg(path, resample=True)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fields", [{"fs": "-100"}, {"fs": "1e2"}, {"fs": "٣"}, {"sig_len": "1e12"},
                                    {"sig_len": "-5"}])
def test_record_lines_wfdb_misreads_are_refused(write_record, no_wfdb_read, fields):
    """wfdb reads ``-100`` Hz as its default 250 Hz, ``1e2`` Hz as 1 Hz, ``1e12`` samples as 1 (found by fuzzing)."""
    path = _header(write_record()[0], **fields)
    with pytest.raises(ECGNetError, match="malformed record line") as info:
        read_ecg(path, resample=True)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_longer_than_ten_minutes_refused_before_reading(write_record, no_wfdb_read):
    path, _ = write_record(fs=10, samples=6_010)  # 601 s at 10 Hz, all on disk
    with pytest.raises(ECGNetError, match=r"declares 601 s of signal, over the limit of 600 s \(max_seconds; --max-seconds widens it\)"):
        read_ecg(path, 10)


@pytest.mark.parametrize("file", ["../rec.dat", "/dev/zero", "missing.dat"])
def test_signal_files_outside_the_folder_or_missing_refused(write_record, no_wfdb_read, tmp_path, file):
    path, _ = write_record(directory=tmp_path / "a")
    path.write_text(path.read_text().replace("rec.dat", file))
    with pytest.raises(ECGNetError, match="cannot be read as a WFDB record") as info:
        read_ecg(path)
    assert str(path) in str(info.value)


def test_the_guard_lets_a_long_valid_record_through(write_record):
    path, signal = write_record(samples=6000)  # 60 s at 100 Hz
    np.testing.assert_allclose(read_ecg(path).signal, signal, atol=1e-6)


# --- what the fuzzing found (each failed before its fix) -------------------------------------------

def test_a_signal_line_without_checksum_is_not_a_type_error(write_record):
    path, signal = write_record()
    lines = path.read_text().splitlines()
    fields = lines[3].split()
    lines[3] = " ".join(fields[:5])  # lead III: file, format, gain, resolution, zero; no checksum, no name
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGNetError, match=r"12 standard leads.*found 12, not standard: \(unnamed\); missing: III") as info:
        read_ecg(path)  # no name for lead III: refused as a missing lead, not a TypeError
    assert str(path) in str(info.value)


def test_a_garbled_checksum_field_is_not_a_type_error(write_record):
    path, signal = write_record()
    lines = path.read_text().splitlines()
    fields = lines[3].split()
    fields[5] = "«x"  # the initial value of lead III: wfdb then reads no checksum for it
    lines[3] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    try:
        rec = read_ecg(path)
    except ECGNetError as e:
        assert str(path) in str(e)
    else:
        np.testing.assert_allclose(rec.signal, signal, atol=1e-6)


@pytest.mark.parametrize("raw, fragment", [
    ({"name": "x", "model": {"name": "m"}, "training": {"lr": float("inf")}}, "training.lr"),
    ({"name": "x", "model": {"name": "m"}, "data": {"stride_seconds": float("inf")}}, "data.stride_seconds"),
    ({"name": "x", "model": {"name": "m"}, "data": {"stride_seconds": 0.001}}, "at least one sample"),
    ({"name": "x", "model": {"name": "m"}, "data": {"crop_seconds": 0.004}}, "at least one sample"),
    ({"name": "x", "model": {"name": "m"}, "seed": -1}, "seed"),
    ({"name": "x", "model": {"name": "m"}, "seed": 2**32}, "seed"),
    ({"name": "x", "model": {"name": "m"}, "a\nb": 1}, "'a\\nb': Extra inputs"),
])
def test_configs_the_fuzzing_found(raw, fragment):
    with pytest.raises(ECGNetError, match="fuzz.yaml: invalid config") as info:
        parse_config(raw, source="fuzz.yaml")
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("data, fragment", [
    (b"name: x\n\x00", "not valid YAML"),
    (b"name: caf\xe9\n", "not UTF-8 text"),
    (b"- " * 1200, "nested too deeply"),
])
def test_config_files_the_fuzzing_found(tmp_path, data, fragment):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    with pytest.raises(ECGNetError, match=fragment) as info:
        load_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unicode_digits_are_not_snomed_codes():
    assert parse_dx("#Dx: 164889003, 426783006") == ["164889003", "426783006"]
    for token in ("²", "٣", "１２３"):
        with pytest.raises(ECGNetError, match=f"'{token}' is not a SNOMED CT code"):
            parse_dx(f"#Dx: 164889003,{token}")


def test_records_lists_in_a_cycle_are_read_once(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.hea", "sub/b.hea"):
        (tmp_path / name).write_text("")
    (tmp_path / "RECORDS").write_text("a\nsub/\n./\n")
    (tmp_path / "sub" / "RECORDS").write_text("b\n../sub/\n")
    assert find_records([tmp_path / "RECORDS"]) == [tmp_path / "a.hea", tmp_path / "sub" / "b.hea"]


@pytest.mark.parametrize("line", ["../", "/", "../other/rec", "/etc/passwd"])
def test_records_lists_may_not_leave_their_folder(tmp_path, line):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "RECORDS").write_text(f"{line}\n")
    with pytest.raises(ECGNetError, match="is not a record or folder inside") as info:
        find_records([tmp_path / "db" / "RECORDS"])
    assert str(tmp_path / "db" / "RECORDS") in str(info.value)


def test_a_gain_that_overflows_float32_is_refused(write_record):
    path, _ = write_record()
    path.write_text(path.read_text().replace(" 1000.0(0)/mV ", " 1e-40(0)/mV "))
    with pytest.raises(ECGNetError, match="beyond float32's range") as info:
        read_ecg(path)  # was: a signal of infinities, returned as read
    assert str(path) in str(info.value)


def test_a_baseline_beyond_64_bits_is_refused(write_record):
    """Found by the campaign: wfdb's conversion raised numpy's UFuncTypeError."""
    path, _ = write_record()
    path.write_text(path.read_text().replace(" 1000.0(0)/mV ", f" 1000.0({10**40})/mV "))
    with pytest.raises(ECGNetError, match="cannot convert the samples to physical units") as info:
        read_ecg(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@settings(FUZZ, max_examples=60)
@given(fuzzing.format_cases())
def test_damaged_clinical_format_files(case):
    """MUSE/Philips/HL7 XML, DICOM, EDF+ (and SCP-ECG with ../shared): bytes flipped, cut, zeroed, extended,
    XML numbers replaced by nasty values — a clean refusal naming the file, or 12 finite leads, within
    the same memory bound as the WFDB cases."""
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        try:
            fuzzing.check_format(case, Path(tmp))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # found here: a DICOM file extended by 8 bytes (an element declaring 64 MiB past the end) made pydicom
    # allocate the declared length; the reader now parses from memory (readers/dicom.py)
    assert peak < MAX_PEAK_BYTES, f"{peak / 2**20:.0f} MiB allocated for a file of < 100 kB"


@pytest.mark.parametrize("count", [25, 100, 5000])
def test_many_signal_lines_are_refused_by_their_count_before_wfdb_parses(write_record, monkeypatch, count):
    """The issue's header of 50,000 signal lines cost wfdb minutes of parsing: counted in the bytes first."""
    def refuse(*args, **kwargs):
        raise AssertionError("wfdb parsed the header: the signal lines were not counted first")

    monkeypatch.setattr(wfdb, "rdheader", refuse)
    path, _ = write_record()
    lines = path.read_text().splitlines()
    lines[1:1] = [lines[1]] * (count - 12)
    lines[0] = lines[0].replace(" 12 ", f" {count} ", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGNetError, match=rf"declares {count} signals, over the limit of 24 \(max_signals; --max-signals widens it\)|"
                                          r"over the limit of 65536 bytes \(max_header_bytes\)"):
        read_ecg(path)


@pytest.mark.parametrize("edits", [
    (("extend", b"GIF8"), ("flip", 455, 0), ("flip", 574, 4)),  # pydicom: NotImplementedError (VR 'CQ')
    (("truncate", 1775),),  # pydicom: struct.error (unpack requires a buffer of 4 bytes)
], ids=["unknown-vr", "truncated-element"])
def test_damaged_dicom_found_by_the_campaign_is_refused(tmp_path, edits):
    """Found by benchmarks/fuzz_campaign.py (issue 22's run): exceptions pydicom raises when it first uses a
    damaged element, once outside the reader's list."""
    status = fuzzing.check_format(fuzzing.FormatCase("dicom", edits, False), tmp_path)
    assert status == "refused"
