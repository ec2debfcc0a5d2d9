"""WFDB records → validated 12-lead arrays in mV, and the atomic dataset cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgnet.data import signals
from ecgnet.data.records import read_ecg
from ecgnet.data.signals import LEADS, fit_length, load_signals, read_record
from ecgnet.errors import ECGNetError

EXTRA_LEADS = (*LEADS, "X", "Y", "Z")


# --- one record ---------------------------------------------------------------------------------

def test_real_ptbxl_record(ptbxl_root):
    x = read_record(ptbxl_root / "records100" / "00000" / "00001_lr.hea")
    assert x.shape == (12, 1000) and x.dtype == np.float32
    assert np.isfinite(x).all()
    # the header of record 1 gives the first sample of each lead (ADC units, gain 1000/mV)
    first = {"I": -0.119, "II": -0.055, "III": 0.064, "AVR": 0.086, "AVL": -0.091, "AVF": 0.004,
             "V1": -0.069, "V2": -0.031, "V3": 0.0, "V4": -0.026, "V5": -0.039, "V6": -0.079}
    np.testing.assert_allclose(x[:, 0], [first[lead] for lead in LEADS], atol=1e-6)
    # the same record by name without suffix, and by its .dat
    np.testing.assert_array_equal(read_record(ptbxl_root / "records100" / "00000" / "00001_lr"), x)
    np.testing.assert_array_equal(read_record(ptbxl_root / "records100" / "00000" / "00001_lr.dat"), x)


def test_synthetic_record_round_trip(write_record):
    path, signal = write_record()
    x = read_record(path)
    assert x.shape == (12, 1000) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(x, signal, atol=1e-6)


def test_reordered_leads_come_back_in_standard_order(write_record):
    order = ("V6", "aVL", "I", "V1", "avr", "II", "V3", "AVF", "V2", "III", "V5", "V4")  # any case
    path, signal = write_record(leads=order)
    x = read_record(path)
    expected = np.stack([signal[[lead.upper() for lead in order].index(lead)] for lead in LEADS])
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_microvolt_units_are_converted(write_record):
    path, signal = write_record(units="uV")
    np.testing.assert_allclose(read_record(path), signal * 1e-3, atol=1e-8)


def test_fifteen_leads_read_the_twelve_and_say_what_was_left_out(write_record):
    """The original PTB database's layout: the 12 leads and Frank's X, Y, Z."""
    path, signal = write_record(leads=EXTRA_LEADS)
    rec = read_ecg(path)
    np.testing.assert_allclose(rec.signal, signal[:12], atol=1e-6)
    assert rec.notes == ["left out 3 channel(s) that are no standard lead: X, Y, Z"] and rec.warnings == []


def test_eight_independent_leads_get_the_limb_leads_derived(write_record):
    """GE MUSE's layout in WFDB (I, II, V1–V6), as the XML/EDF/DICOM readers already read it."""
    eight = tuple(name for name in LEADS if name not in ("III", "AVR", "AVL", "AVF"))
    path, written = write_record("eight", leads=eight)
    i, ii = written[0], written[1]
    rec = read_ecg(path)
    assert rec.derived_leads == ["III", "aVR", "aVL", "aVF"] and "derived III, aVR, aVL, aVF" in rec.notes[0]
    np.testing.assert_allclose(rec.signal[2], ii - i, atol=1e-5)  # Einthoven, Goldberger
    np.testing.assert_allclose(rec.signal[3], -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(rec.signal[5], ii - i / 2, atol=1e-5)
    np.testing.assert_allclose(rec.signal[[0, 1, *range(6, 12)]], written, atol=1e-6)  # the stored leads as written


def test_a_lead_on_two_channels_is_refused(write_record):
    path, _ = write_record()
    path.write_text(path.read_text().replace(" V2\n", " V1\n"))  # wfdb writes no duplicate names itself
    with pytest.raises(ECGNetError, match="V1 on more than one channel"):
        read_record(path)


def test_some_limb_leads_missing_is_a_gap_not_the_eight_lead_layout(write_record):
    path, _ = write_record(leads=tuple(x for x in LEADS if x != "AVL"))
    with pytest.raises(ECGNetError, match="missing: aVL"):
        read_record(path)


def test_micro_sign_units_are_read_as_microvolts(write_record):
    """wfdb parses '/µV' as 'V' (a thousandfold error): the units are read as the header writes them, in
    UTF-8 (µ or Greek μ) or Latin-1."""
    for name, unit, encoding in (("micro", "µV", "utf-8"), ("greek", "μV", "utf-8"), ("latin", "µV", "latin-1")):
        path, signal = write_record(name, units="uV")
        path.write_bytes(path.read_text().replace("/uV", f"/{unit}").encode(encoding))
        np.testing.assert_allclose(read_record(path), signal * 1e-3, atol=1e-8)
    path, signal = write_record("nano", units="uV")  # nV: every other reader knew it, the WFDB one refused it
    path.write_text(path.read_text().replace("/uV", "/nV"))
    np.testing.assert_allclose(read_record(path), signal * 1e-6, atol=1e-11)


def test_missing_lead_rejected(write_record):
    path, _ = write_record(leads=(*LEADS[:11], "X"))
    with pytest.raises(ECGNetError, match="12 standard leads") as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_500hz_needs_resample(write_record):
    path, signal = write_record(fs=500)
    with pytest.raises(ECGNetError, match="500 Hz") as info:
        read_record(path)
    assert str(path) in str(info.value) and "100 Hz" in str(info.value)
    x = read_record(path, resample=True)
    assert x.shape == (12, 1000) and x.dtype == np.float32
    # a low-pass resample keeps each lead's level (the per-lead offsets of the synthetic record)
    np.testing.assert_allclose(x.mean(1), signal.mean(1), atol=0.05)


def test_nan_samples_rejected(write_record):
    path, _ = write_record(nan=True)
    with pytest.raises(ECGNetError, match="NaN") as info:
        read_record(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage_short", "missing"])
def test_corrupt_dat_rejected(write_record, damage):
    path, _ = write_record()
    dat = path.with_suffix(".dat")
    data = dat.read_bytes()
    if damage == "truncated":
        dat.write_bytes(data[: len(data) // 3])
    elif damage == "empty":
        dat.write_bytes(b"")
    elif damage == "garbage_short":
        dat.write_bytes(np.random.default_rng(1).bytes(777))
    else:
        dat.unlink()
    with pytest.raises(ECGNetError, match="cannot be read as a WFDB record") as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_garbage_dat_of_the_right_length_rejected(write_record):
    path, _ = write_record()
    dat = path.with_suffix(".dat")
    rng = np.random.default_rng(3)
    # random samples avoiding -32768 (the NaN code), so only a checksum could tell
    dat.write_bytes(rng.integers(-32767, 32768, size=dat.stat().st_size // 2, dtype=np.int16).tobytes())
    with pytest.raises(ECGNetError, match="does not match the header's checksums"):
        read_record(path)


def test_garbage_header_rejected(write_record):
    path, _ = write_record()
    path.write_text("this is not a header\n\x00\x01\n")
    with pytest.raises(ECGNetError, match="cannot be read as a WFDB record") as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_missing_header(tmp_path):
    with pytest.raises(ECGNetError, match="no such WFDB header") as info:
        read_record(tmp_path / "nothing.hea")
    assert str(tmp_path / "nothing.hea") in str(info.value)


def test_header_without_dat_named(write_record):
    path, _ = write_record()
    path.unlink()  # the .dat alone is not a record
    with pytest.raises(ECGNetError, match="no such WFDB header"):
        read_record(path.with_suffix(".dat"))


def test_fit_length():
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(fit_length(x, 12), x)
    np.testing.assert_array_equal(fit_length(x, 8), x[:, 2:10])  # centre crop
    padded = fit_length(x, 15)
    assert padded.shape == (2, 15)
    np.testing.assert_array_equal(padded[:, :12], x)
    assert (padded[:, 12:] == 0).all()


# --- the dataset cache ----------------------------------------------------------------------------

@pytest.fixture
def mini_ptbxl(tmp_path, write_record):
    """A PTB-XL-like folder: 5 synthetic records (one short, one long) and a minimal database table."""
    root = tmp_path / "ptbxl"
    lengths = {1: 1000, 2: 1000, 3: 800, 4: 1200, 5: 1000}
    filenames = {}
    for ecg_id, n in lengths.items():
        filenames[ecg_id] = f"records100/00000/{ecg_id:05d}_lr"
        write_record(f"{ecg_id:05d}_lr", directory=root / "records100" / "00000", samples=n, seed=ecg_id)
    (root / "ptbxl_database.csv").write_text(
        "ecg_id,filename_lr\n" + "".join(f"{e},{f}\n" for e, f in filenames.items()))
    return root, filenames


def unlocked(cache):
    """The cache folder's files but the lock file, which filelock leaves in place by design."""
    return [p for p in cache.iterdir() if p.suffix != ".lock"]


def test_cache_matches_read_record(mini_ptbxl, tmp_path):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    ids, array = load_signals(root, filenames, 100, cache)
    assert ids.tolist() == [1, 2, 3, 4, 5]
    assert array.shape == (5, 12, 1000) and array.dtype == np.float32
    for row, ecg_id in enumerate(ids):
        expected = fit_length(read_record(root / filenames[int(ecg_id)]), 1000)
        np.testing.assert_array_equal(array[row], expected)
    assert (array[2, :, 800:] == 0).all()  # the 8 s record is zero-padded
    key = signals.cache_key(root, 100)
    assert sorted(p.name for p in cache.iterdir()) == [f"{key}.json", f"{key}.lock", f"{key}.npy"]
    index = json.loads((cache / f"{key}.json").read_text())
    assert index["ecg_ids"] == [1, 2, 3, 4, 5] and index["sampling_rate"] == 100


def test_failed_build_leaves_nothing(mini_ptbxl, tmp_path, monkeypatch):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    real, calls = signals.read_record, []

    def flaky(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise ECGNetError(f"{path}: simulated failure")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(signals, "read_record", flaky)
    with pytest.raises(ECGNetError, match="simulated failure"):
        load_signals(root, filenames, 100, cache)
    assert len(calls) == 3
    assert unlocked(cache) == []  # no final .npy, no .json, no temporary file (the lock file stays)

    monkeypatch.setattr(signals, "read_record", real)  # the next call builds a complete cache
    ids, array = load_signals(root, filenames, 100, cache)
    assert len(ids) == 5 and array.shape[0] == 5


def test_interrupted_build_leaves_nothing(mini_ptbxl, tmp_path, monkeypatch):
    """Ctrl-C (KeyboardInterrupt is no Exception) mid-build must not leave a half-written cache."""
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    real, calls = signals.read_record, []

    def interrupted(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(signals, "read_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_signals(root, filenames, 100, cache)
    assert unlocked(cache) == []


def test_second_load_does_not_rebuild(mini_ptbxl, tmp_path, monkeypatch):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    ids1, array1 = load_signals(root, filenames, 100, cache)
    first = np.array(array1)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(signals, "build_cache", no_rebuild)
    ids2, array2 = load_signals(root, filenames, 100, cache)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(np.asarray(array2), first)
    assert isinstance(array2, np.memmap)  # memory-mapped, not read into memory


def test_cache_env_and_key(mini_ptbxl, tmp_path, monkeypatch):
    root, filenames = mini_ptbxl
    monkeypatch.setenv(signals.CACHE_ENV, str(tmp_path / "envcache"))
    assert signals.cache_dir() == tmp_path / "envcache"
    key = signals.cache_key(root, 100)
    assert key.startswith("ptbxl100_") and key != signals.cache_key(root, 500)
    load_signals(root, filenames, 100)  # no directory given → $ECGNET_CACHE
    assert (tmp_path / "envcache" / f"{key}.npy").is_file()
    # a changed database table is a different cache
    db = root / "ptbxl_database.csv"
    db.write_text(db.read_text() + "\n")
    assert signals.cache_key(root, 100) != key


def test_cache_not_matching_its_index(mini_ptbxl, tmp_path):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    load_signals(root, filenames, 100, cache)
    key = signals.cache_key(root, 100)
    index = json.loads((cache / f"{key}.json").read_text())
    index["ecg_ids"] = index["ecg_ids"][:3]
    (cache / f"{key}.json").write_text(json.dumps(index))
    with pytest.raises(ECGNetError, match="delete it to rebuild"):
        load_signals(root, filenames, 100, cache)


# --- integrity: checksums in the index, checked on open (cheap) and by `data verify --cache` (full) ----

def _cache_files(root, cache):
    key = signals.cache_key(root, 100)
    return cache / f"{key}.npy", cache / f"{key}.json"


def test_the_index_records_the_arrays_checksums(mini_ptbxl, tmp_path):
    import hashlib

    root, filenames = mini_ptbxl
    load_signals(root, filenames, 100, tmp_path / "cache")
    array_path, index_path = _cache_files(root, tmp_path / "cache")
    integrity = json.loads(index_path.read_text())["integrity"]
    assert integrity["bytes"] == array_path.stat().st_size
    assert integrity["sha256"] == hashlib.sha256(array_path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["truncate", "extend", "flip_last_byte", "flip_a_sample", "index"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(mini_ptbxl, tmp_path, damage):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    _, array = load_signals(root, filenames, 100, cache)
    good = np.array(array)
    del array
    array_path, index_path = _cache_files(root, cache)
    data = bytearray(array_path.read_bytes())
    if damage == "truncate":
        del data[-5000:]
    elif damage == "extend":
        data += b"\0" * 48
    elif damage == "flip_last_byte":
        data[-1] ^= 0x01
    elif damage == "flip_a_sample":
        data[len(data) // 2] ^= 0x40
    if damage == "index":
        index_path.write_text(index_path.read_text()[:100])
    else:
        array_path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="rebuilding the signal cache"):
        ids, array = load_signals(root, filenames, 100, cache)
    np.testing.assert_array_equal(np.asarray(array), good)
    assert signals.verify_caches(cache, progress=False).ok


def test_verify_finds_what_the_sampled_check_cannot_see(mini_ptbxl, tmp_path, monkeypatch):
    """A large cache is only sampled on open; the full check sees every byte."""
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    load_signals(root, filenames, 100, cache)
    array_path, _ = _cache_files(root, cache)
    report = signals.verify_caches(cache, progress=False)
    assert report.ok and report.good == [array_path.name]
    data = bytearray(array_path.read_bytes())
    data[1000] ^= 0x08
    array_path.write_bytes(bytes(data))
    monkeypatch.setattr(signals, "sampled_sha256", lambda path: "blind")  # as if byte 1000 were not sampled
    index = json.loads(_cache_files(root, cache)[1].read_text())
    index["integrity"]["sampled_sha256"] = "blind"
    _cache_files(root, cache)[1].write_text(json.dumps(index))
    assert signals.cheap_check(*_cache_files(root, cache)) is None
    report = signals.verify_caches(cache, progress=False)
    assert not report.ok and "SHA-256 does not match" in report.damaged[array_path.name]
    assert "delete a damaged .npy and its .json" in report.summary()


def test_an_index_without_checksums_gets_them_on_first_open(mini_ptbxl, tmp_path):
    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    load_signals(root, filenames, 100, cache)
    array_path, index_path = _cache_files(root, cache)
    index = json.loads(index_path.read_text())
    legacy = {k: v for k, v in index.items() if k != "integrity"}
    index_path.write_text(json.dumps(legacy))
    load_signals(root, filenames, 100, cache)  # adopts the cache as found
    assert json.loads(index_path.read_text())["integrity"] == index["integrity"]


def test_data_verify_cache_through_the_cli(mini_ptbxl, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ecgnet.cli import app

    root, filenames = mini_ptbxl
    cache = tmp_path / "cache"
    load_signals(root, filenames, 100, cache)
    monkeypatch.setenv(signals.CACHE_ENV, str(cache))
    result = CliRunner().invoke(app, ["data", "verify", "--cache", "--no-progress"])
    assert result.exit_code == 0 and "1 signal cache(s) OK, 0 damaged" in result.stdout
    array_path, _ = _cache_files(root, cache)
    data = bytearray(array_path.read_bytes())
    data[-7] ^= 0x02
    array_path.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["data", "verify", "--cache", "--no-progress"])
    assert result.exit_code == 1 and "0 signal cache(s) OK, 1 damaged" in result.stdout


# --- two processes at once -------------------------------------------------------------------------

_RACER = """
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
from ecgnet.data import signals

root, cache, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
filenames = {int(k): v for k, v in json.loads(sys.argv[4]).items()}
real_read = signals.read_record

def slow_read(*args, **kwargs):  # widen the window in which both processes could build
    time.sleep(0.2)
    return real_read(*args, **kwargs)

real_build = signals.build_cache

def logged_build(*args, **kwargs):
    with open(log, "a") as f:
        f.write("build\\n")
    return real_build(*args, **kwargs)

signals.read_record, signals.build_cache = slow_read, logged_build
while not (cache.parent / "go").exists():  # start together
    time.sleep(0.01)
ids, array = signals.load_signals(root, filenames, 100, cache)
print(hashlib.sha256(np.asarray(array).tobytes()).hexdigest(), ids.tolist())
"""


def test_two_processes_build_the_cache_once(mini_ptbxl, tmp_path):
    import subprocess
    import sys

    root, filenames = mini_ptbxl
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    args = [sys.executable, "-c", _RACER, str(root), str(cache), str(log), json.dumps(filenames)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert log.read_text() == "build\n"  # one build; the other process waited for it
    digests = {out.strip() for out, _ in outputs}
    assert len(digests) == 1  # both read the same complete array
    _, array = load_signals(root, filenames, 100, cache)
    import hashlib
    assert digests == {f"{hashlib.sha256(np.asarray(array).tobytes()).hexdigest()} [1, 2, 3, 4, 5]"}
    assert signals.verify_caches(cache, progress=False).ok


def test_coarse_amplitude_steps_are_a_warning_that_keeps_the_calls(write_record):
    """A file written with a wide physical range (pyedflib at ±2 V: 61 µV per step) moves the model's
    calls (reports/formats/quantization.md); the reader says so, without withholding the calls."""
    from ecgnet.data.records import amplitude_step_mv, resolution_warning

    path, signal = write_record()
    assert resolution_warning(read_ecg(path).signal) is None and amplitude_step_mv(signal) == pytest.approx(0.001)
    coarse = np.round(signal / 0.061) * 0.061
    assert amplitude_step_mv(coarse) == pytest.approx(0.061)
    assert resolution_warning(coarse).startswith("coarse amplitude resolution: 61 µV per step")
    import wfdb  # the same signal written at 1/0.061 ADU per mV: steps of 61 µV

    wfdb.wrsamp("coarse", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=coarse.T, fmt=["16"] * 12,
                adc_gain=[1 / 0.061] * 12, baseline=[0] * 12, write_dir=str(path.parent))
    rec = read_ecg(path.parent / "coarse.hea")
    assert any(w.startswith("coarse amplitude resolution") for w in rec.warnings) and rec.amplitude_trusted


def test_a_missing_path_without_suffix_is_named_as_typed(tmp_path):
    """`predict rec.hea /nonexistent_dir/` said '/nonexistent_dir.hea: no such WFDB header', a file never typed."""
    from ecgnet.data.record_files import find_records
    from ecgnet.data.readers import read_ecg_any

    missing = tmp_path / "nonexistent_dir"
    assert find_records([f"{missing}/"]) == [missing]
    with pytest.raises(ECGNetError, match=f"^{missing}: no such file or folder, nor a WFDB record nonexistent_dir.hea"):
        read_ecg_any(missing)
