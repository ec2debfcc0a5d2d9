"""Hostile input against the WFDB reader (the CLI's path): each case of the generated corpus
(``tests/hostile.py``) is refused with one line naming the limit, or read within the budget, in a
subprocess whose peak memory must stay ≤ 1 GB; symbolic links, FIFOs and directories; FLAC parity
with wfdb's own writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.records import LEADS, read_ecg
from ecgnet.errors import ECGNetError
from hostile import CASES, directory_signal, fifo_signal, plain_record, symlink_escape

PEAK_MB = 1024
_RUNNER = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import scipy.signal  # imported before the clock starts: a one-time cost, not the case's
import hostile
from ecgnet.data.records import read_ecg
from ecgnet.errors import ECGNetError
def peak_mb():  # VmHWM: this process's own peak; ru_maxrss would carry the parent's (pytest's) across exec
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
out = {}
for name in sys.argv[2:]:
    with tempfile.TemporaryDirectory() as tmp:
        header = hostile.CASES[name][0](Path(tmp))
        start = time.perf_counter()
        try:
            rec = read_ecg(header, 100, resample=True)
            outcome, message = "read", str(rec.signal.shape)
        except ECGNetError as e:
            outcome, message = "refused", str(e).replace(str(tmp), "TMP")
        out[name] = {"outcome": outcome, "message": message, "seconds": time.perf_counter() - start,
                     "peak_mb": peak_mb()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def corpus_results():
    """Every case read in one subprocess, refused cases first: the peak after each case bounds its own."""
    order = sorted(CASES, key=lambda n: CASES[n][1] == "read")
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(Path(__file__).parent), *order],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_record_refused_or_read_within_budget(corpus_results, case):
    result = corpus_results[case]
    print(f"{case}: {result['outcome']} in {result['seconds']:.2f} s, peak {result['peak_mb']:.0f} MB "
          f"— {result['message'][:160]}")
    assert result["outcome"] == CASES[case][1], result["message"]
    assert result["peak_mb"] <= PEAK_MB
    assert result["seconds"] < 30  # generous: the figures are in benchmarks/hostile_replay.py
    if result["outcome"] == "refused":
        message = result["message"]
        assert message.startswith("TMP/") and "\n" not in message and len(message) < 400, message


@pytest.mark.parametrize("case, limit", [("flac_1khz_1h", "max_seconds"), ("flac_10khz_1h_declared", "max_seconds"),
                                         ("plain_100hz_1h", "max_seconds"), ("flac_no_length", "max_values"),
                                         ("many_signal_lines", "max_header_bytes"),
                                         ("many_signals_small", "max_signals"), ("huge_header", "max_header_bytes")])
def test_refusals_name_the_limit_and_its_value(corpus_results, case, limit):
    message, value = corpus_results[case]["message"], getattr(DEFAULT_LIMITS, limit)
    assert f"({limit}" in message and (f"{value:g} s" if limit == "max_seconds" else str(value)) in message


def test_the_lead_list_in_a_refusal_is_capped(corpus_results):
    message = corpus_results["wrong_leads_24"]["message"]
    assert "found 24" in message and "(18 more)" in message and "lead_with_a_rather_long_name_23" not in message


# --- limits are settings ------------------------------------------------------------------------

def test_limits_can_be_tightened_and_widened(tmp_path):
    header = plain_record(tmp_path, "r", samples=1000)  # 10 s at 100 Hz
    with pytest.raises(ECGNetError, match=r"declares 10 s of signal, over the limit of 5 s \(max_seconds; --max-seconds widens it\)"):
        read_ecg(header, limits=ReadLimits(max_seconds=5))
    with pytest.raises(ECGNetError, match=r"12000 decoded values \(max_values; --max-values widens it\)|over the limit of 11999"):
        read_ecg(header, limits=ReadLimits(max_values=11_999))
    with pytest.raises(ECGNetError, match=r"declares 12 signals, over the limit of 8 \(max_signals; --max-signals widens it\)"):
        read_ecg(header, limits=ReadLimits(max_signals=8))
    with pytest.raises(ECGNetError, match=r"over the limit of 100 bytes \(max_header_bytes\)"):
        read_ecg(header, limits=ReadLimits(max_header_bytes=100))
    assert read_ecg(header, limits=ReadLimits(max_values=12_000)).signal.shape == (12, 1000)


def test_a_compressed_file_is_bounded_by_its_size_too(tmp_path):
    from hostile import flac_record

    header = flac_record(tmp_path, "f", 500, 10)
    size = max((tmp_path / "f_1.dat").stat().st_size, (tmp_path / "f_2.dat").stat().st_size)
    with pytest.raises(ECGNetError, match=r"signal file f_\d\.dat\): \d+ bytes, over the limit .*max_file_bytes"):
        read_ecg(header, 500, limits=ReadLimits(max_file_bytes=size - 1))


# --- files that are not what they seem (the CLI reads the user's folders) ------------------------

def test_a_signal_file_linked_outside_the_folder_is_refused_without_its_size(tmp_path):
    header = symlink_escape(tmp_path)
    target = (header.parent / "esc.dat").resolve()
    with pytest.raises(ECGNetError, match="esc.dat is a link that leads outside the record's folder") as info:
        read_ecg(header)
    assert str(target.stat().st_size) not in str(info.value) and str(target.parent) not in str(info.value)


def test_a_link_inside_the_folder_is_read(tmp_path):
    header = plain_record(tmp_path, "r")
    (tmp_path / "r.dat").rename(tmp_path / "data.bin")
    os.symlink("data.bin", tmp_path / "r.dat")
    assert read_ecg(header).signal.shape == (12, 1000)


def test_a_link_to_a_device_is_refused(tmp_path):
    header = plain_record(tmp_path, "r")
    (tmp_path / "r.dat").unlink()
    os.symlink("/dev/zero", tmp_path / "r.dat")
    with pytest.raises(ECGNetError, match="leads outside the record's folder"):
        read_ecg(header)


@pytest.mark.parametrize("make", [fifo_signal, directory_signal], ids=["fifo", "directory"])
def test_fifos_and_directories_are_not_regular_files(tmp_path, make):
    header = make(tmp_path)
    with pytest.raises(ECGNetError, match=r"its signal file \w+\.dat is not a regular file") as info:
        read_ecg(header)
    assert "missing" not in str(info.value)


def test_a_fifo_header_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "p.hea")
    with pytest.raises(ECGNetError, match=r"p\.hea: the header is not a regular file"):
        read_ecg(tmp_path / "p.hea")


# --- FLAC: parity with wfdb's own writer ----------------------------------------------------------

@pytest.mark.parametrize("fmt, gain", [("516", 1000.0), ("508", 50.0)])
def test_flac_records_written_by_wfdb_read_as_their_plain_twin(tmp_path, fmt, gain):
    rng = np.random.default_rng(0)
    signal = np.round(rng.normal(0, 0.5, (12, 1000)) * gain) / gain  # on the ADC grid
    signal = np.clip(signal, -100 / gain, 100 / gain)  # 8-bit range for 508
    for name, f in (("flac", fmt), ("plain", "16")):
        wfdb.wrsamp(name, fs=500, units=["mV"] * 12, sig_name=list(LEADS), p_signal=signal.T, fmt=[f] * 12,
                    adc_gain=[gain] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    assert len(list(tmp_path.glob("flac*.dat"))) == 2  # FLAC holds ≤ 8 channels: wfdb writes two files
    flac, plain = read_ecg(tmp_path / "flac.hea", 500), read_ecg(tmp_path / "plain.hea", 500)
    np.testing.assert_array_equal(flac.signal, plain.signal)
    np.testing.assert_allclose(flac.signal, signal.astype(np.float32), atol=1e-6)


# --- the CLI: the same budget, usage errors for implausible metadata, strict JSON -----------------------

def _cli(*args):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    return CliRunner().invoke(app, ["predict", "--checkpoint", "baseline_time", "--no-progress", *map(str, args)])


@pytest.mark.parametrize("option, value", [("--age", "inf"), ("--age", "nan"), ("--age", "-1"), ("--height", "1e9"),
                                           ("--weight", "-inf")])
def test_cli_implausible_metadata_is_a_usage_error(tmp_path, option, value):
    result = _cli(plain_record(tmp_path, "r"), option, value)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {option} ") and "is not a plausible" in result.stderr  # names the option


def test_cli_refuses_hostile_records_with_the_limit_and_prints_strict_json(tmp_path):
    from hostile import flac_1khz_1h

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good, bomb = plain_record(tmp_path / "a", "r"), flac_1khz_1h(tmp_path / "b")
    result = _cli(good, bomb, "--json")
    assert result.exit_code == 1
    assert "(max_seconds; --max-seconds widens it)" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    parsed = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the JSON output"))
    assert [("error" in r) for r in parsed] == [False, True]
    tight = _cli(good, "--max-seconds", "5")
    assert tight.exit_code == 1 and "over the limit of 5 s (max_seconds" in tight.stderr


def test_cli_names_a_fifo_not_a_regular_file(tmp_path):
    result = _cli(fifo_signal(tmp_path))
    assert result.exit_code == 1 and "is not a regular file" in result.stderr and "missing" not in result.stderr


@pytest.mark.parametrize("seconds, message", [(7200, r"over the limit of 600 s \(max_seconds; --max-seconds widens it\)"),
                                               (500, r"X1\.mat holds \d+ bytes; the header's 250000 samples")])
def test_a_mat_record_is_bounded_like_a_dat(tmp_path, seconds, message):
    """Challenge .mat records (format 16 after a MAT header): the declared length is checked against the
    budget, then against the file, before wfdb reads a sample."""
    from test_records import write_challenge

    path, _ = write_challenge(tmp_path, "X1", fs=500, seconds=2)
    lines = path.read_text().splitlines()
    fields = lines[0].split()
    fields[3] = str(500 * seconds)
    path.write_text("\n".join([" ".join(fields), *lines[1:]]) + "\n")
    with pytest.raises(ECGNetError, match=message):
        read_ecg(path, 500)
