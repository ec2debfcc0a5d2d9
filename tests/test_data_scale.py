"""Data at scale: memory-mapped splits (SignalRows), frontend statistics read in chunks, and the signal
cache built by several processes (byte-identical to a serial build; a failing record is one error)."""

from __future__ import annotations

import filecmp
import json
import pickle
import sys
import warnings

import numpy as np
import pytest
import torch

from ecgnet.data import signals
from ecgnet.data.dataset import CropDataset, SignalRows, Split
from ecgnet.errors import ECGNetError
from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.modalities.spectrogram import SpectrogramFrontend
from ecgnet.modalities.time import TimeFrontend, lead_statistics

from conftest import write_wfdb


# --- SignalRows: a split's rows of the memory-mapped cache --------------------------------------

@pytest.fixture
def cache_array(tmp_path):
    """(memmap of a 40 × 12 × 100 .npy, the same array in memory, the rows of a 'split')."""
    rng = np.random.default_rng(0)
    data = (rng.normal(0, 0.3, (40, 12, 100)) + np.arange(12)[:, None] * 0.1).astype(np.float32)
    np.save(tmp_path / "cache.npy", data)
    rows = np.sort(rng.choice(40, 17, replace=False))
    return np.load(tmp_path / "cache.npy", mmap_mode="r"), data, rows


INDICES = [0, 5, -1, np.int64(3), slice(2, 9), slice(None, None, 3), slice(-4, None), slice(5, 2),
           [3, 1, 1], np.array([0, 16, 7]), np.arange(17) % 2 == 0, torch.tensor([2, 4]),
           (slice(None), slice(None), slice(10, 20)), (3, 2), (3, slice(None), slice(5, 8)), (-2, [0, 11]),
           ([1, 2], [0, 3]), (slice(1, 4), [0, 2]), (slice(1, 4), 5, slice(None, 3)), (Ellipsis, 5),
           (np.array([4, 2]), slice(None), slice(0, 50))]


@pytest.mark.parametrize("key", INDICES, ids=[repr(k)[:40] for k in INDICES])
def test_signal_rows_index_as_the_array_would(cache_array, key):
    mm, data, rows = cache_array
    view, expected = SignalRows(mm, rows), data[rows]
    numpy_key = key.numpy() if isinstance(key, torch.Tensor) else key
    got = view[key]
    assert type(got) is np.ndarray  # a plain array, not a memmap
    np.testing.assert_array_equal(got, expected[numpy_key])
    assert got.shape == expected[numpy_key].shape and got.dtype == np.float32


def test_signal_rows_behave_as_an_array(cache_array):
    mm, data, rows = cache_array
    view, expected = SignalRows(mm, rows), data[rows]
    assert len(view) == 17 and view.shape == (17, 12, 100) and view.ndim == 3 and view.dtype == np.float32
    assert view.nbytes == expected.nbytes
    np.testing.assert_array_equal(np.asarray(view), expected)
    np.testing.assert_array_equal(np.asarray(view, dtype=np.float64), expected.astype(np.float64))
    assert type(np.asarray(view)) is np.ndarray
    np.testing.assert_array_equal(np.stack(list(view)), expected)
    np.testing.assert_array_equal(torch.as_tensor(view[:5]).numpy(), expected[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not torch's slow row-by-row path ("a list of numpy.ndarrays")
        np.testing.assert_array_equal(torch.as_tensor(view).numpy(), expected)
    with pytest.raises(IndexError):
        view[17]
    with pytest.raises(ValueError):
        np.array(view, copy=False)
    row = view[0]
    row[:] = 99  # a copy: the cache is untouched
    np.testing.assert_array_equal(view[0], expected[0])
    assert "SignalRows(shape=(17, 12, 100)" in repr(view)
    empty = SignalRows(mm, [])
    assert len(empty) == 0 and np.asarray(empty).shape == (0, 12, 100)


def test_signal_rows_pickle_the_path_not_the_data(cache_array):
    mm, data, rows = cache_array
    view = SignalRows(mm, rows)
    blob = pickle.dumps(view)
    assert len(blob) < 2000 < view.nbytes
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.asarray(again), data[rows])
    in_memory = pickle.loads(pickle.dumps(SignalRows(data, rows)))  # a plain array travels whole
    np.testing.assert_array_equal(np.asarray(in_memory), data[rows])


def test_crop_dataset_gives_the_same_crops_from_the_view_and_from_memory(cache_array):
    mm, data, rows = cache_array
    meta, y = np.zeros((17, 8), np.float32), np.zeros((17, 5), np.float32)
    lazy = CropDataset(Split(np.arange(17), SignalRows(mm, rows), meta, y), crop=25)
    eager = CropDataset(Split(np.arange(17), data[rows], meta, y), crop=25)
    for ds in (lazy, eager):
        np.random.seed(3)
        ds.items = [ds[i]["signal"] for i in range(17)]
    assert all(torch.equal(a, b) and a.shape == (12, 25) for a, b in zip(lazy.items, eager.items))
    whole = CropDataset(Split(np.arange(17), SignalRows(mm, rows), meta, y))
    assert torch.equal(whole[4]["signal"], torch.from_numpy(data[rows[4]]))


# --- frontend statistics in chunks ----------------------------------------------------------------

def _old_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The statistics as TimeFrontend.fit computed them before (the whole array, float32 torch)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return t.mean(dim=(0, 2)).numpy(), t.std(dim=(0, 2)).numpy()


def test_lead_statistics_in_chunks_equal_the_whole(cache_array):
    mm, data, rows = cache_array
    whole_mean, whole_std = lead_statistics(data[rows], chunk_records=10_000)
    for chunk in (1, 5, 16):
        mean, std = lead_statistics(SignalRows(mm, rows), chunk_records=chunk)
        np.testing.assert_allclose(mean, whole_mean, rtol=1e-12)
        np.testing.assert_allclose(std, whole_std, rtol=1e-12)
    old_mean, old_std = _old_fit(data[rows])
    np.testing.assert_allclose(whole_mean, old_mean, rtol=1e-6)
    np.testing.assert_allclose(whole_std, old_std, rtol=1e-6)
    x = data[rows].astype(np.float64)
    np.testing.assert_allclose(whole_std, x.std(axis=(0, 2), ddof=1), rtol=1e-12)


def test_frontends_fit_the_same_from_a_view_as_from_memory(cache_array):
    mm, data, rows = cache_array
    view = SignalRows(mm, rows)
    for make in (TimeFrontend, FrequencyFrontend, SpectrogramFrontend):
        a, b = make().fit(view), make().fit(data[rows])
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), (make.__name__, name)
    old_mean, old_std = _old_fit(data[rows])
    fitted = TimeFrontend().fit(view)
    np.testing.assert_allclose(fitted.mean.squeeze(1).numpy(), old_mean, rtol=1e-6)
    np.testing.assert_allclose(fitted.std.squeeze(1).numpy(), old_std, rtol=1e-6)


def test_fit_frontends_of_a_model_from_a_view(cache_array):
    from ecgnet.models import build_model
    from ecgnet.training.fit import fit_frontends

    mm, data, rows = cache_array
    models = [build_model("time_resnet1d", 5, widths=[8]) for _ in range(2)]
    fit_frontends(models[0], SignalRows(mm, rows))
    fit_frontends(models[1], data[rows])
    fitted = {n: (x, models[1].state_dict()[n]) for n, x in models[0].state_dict().items()
              if n.endswith((".mean", ".std")) and "frontend" in n}
    assert fitted and not torch.equal(fitted[next(iter(fitted))][0], torch.zeros(12, 1))
    for name, (x, y) in fitted.items():
        assert torch.equal(x, y), name


# --- the cache built by several processes ---------------------------------------------------------

@pytest.fixture
def ptbxl_50(tmp_path):
    """A PTB-XL-like folder of 50 synthetic records (8–12 s, so some are padded and some cropped)."""
    root = tmp_path / "ptbxl"
    filenames = {}
    for ecg_id in range(1, 51):
        filenames[ecg_id] = f"records100/00000/{ecg_id:05d}_lr"
        write_wfdb(root / "records100" / "00000", f"{ecg_id:05d}_lr", samples=800 + 8 * ecg_id, seed=ecg_id)
    (root / "ptbxl_database.csv").write_text(
        "ecg_id,filename_lr\n" + "".join(f"{e},{f}\n" for e, f in filenames.items()))
    return root, filenames


def _build(root, filenames, directory, workers):
    directory.mkdir(parents=True, exist_ok=True)
    array_path, index_path = directory / "c.npy", directory / "c.json"
    signals.build_cache(root, filenames, 100, array_path, index_path, workers=workers)
    return array_path, json.loads(index_path.read_text())


def test_parallel_build_is_byte_identical_to_serial(ptbxl_50, tmp_path):
    root, filenames = ptbxl_50
    serial, serial_index = _build(root, filenames, tmp_path / "serial", 1)
    parallel, parallel_index = _build(root, filenames, tmp_path / "parallel", 2)
    assert filecmp.cmp(serial, parallel, shallow=False)
    assert serial_index["integrity"] == parallel_index["integrity"]
    assert serial_index["ecg_ids"] == parallel_index["ecg_ids"] == list(range(1, 51))
    assert sorted(p.name for p in parallel.parent.iterdir()) == ["c.json", "c.npy"]  # no temporary file
    array = np.load(parallel, mmap_mode="r")
    for ecg_id in (1, 26, 50):
        expected = signals.fit_length(signals.read_record(root / filenames[ecg_id]), 1000)
        np.testing.assert_array_equal(array[ecg_id - 1], expected)
    # through load_signals (lock, index, checks), as PTBXL opens it
    ids, opened = signals.load_signals(root, filenames, 100, tmp_path / "cache", workers=2)
    assert ids.tolist() == list(range(1, 51))
    np.testing.assert_array_equal(np.asarray(opened), np.load(serial))


def test_real_records_parallel_equal_serial(ptbxl_root, tmp_path):
    from ecgnet.data import ptbxl

    filenames = ptbxl.read_database(ptbxl_root)["filename_lr"].to_dict()
    subset = {e: filenames[e] for e in sorted(filenames)[::437][:50]}
    serial, _ = _build(ptbxl_root, subset, tmp_path / "serial", 1)
    parallel, _ = _build(ptbxl_root, subset, tmp_path / "parallel", 2)
    assert filecmp.cmp(serial, parallel, shallow=False)


def _unlocked(directory):
    return sorted(p.name for p in directory.iterdir() if p.suffix != ".lock")


def test_a_bad_record_in_a_worker_is_one_error_naming_it(ptbxl_50, tmp_path):
    root, filenames = ptbxl_50
    dat = root / f"{filenames[37]}.dat"
    dat.write_bytes(dat.read_bytes()[:1000])  # shorter than its header says
    cache = tmp_path / "cache"
    with pytest.raises(ECGNetError, match="ecg_id 37") as info:
        signals.load_signals(root, filenames, 100, cache, workers=2)
    assert "00037_lr" in str(info.value)
    assert _unlocked(cache) == []  # no .npy, no .json, no temporary file


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers see the monkeypatch")
def test_any_exception_in_a_worker_becomes_one_ecgnet_error(ptbxl_50, tmp_path, monkeypatch):
    root, filenames = ptbxl_50
    real = signals.read_record

    def broken(path, *args, **kwargs):
        if "00012_lr" in str(path) or "00044_lr" in str(path):
            raise ValueError("simulated wfdb failure")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(signals, "read_record", broken)
    with pytest.raises(ECGNetError, match=r"ecg_id (12|44): .*ValueError: simulated wfdb failure"):
        _build(root, filenames, tmp_path / "cache", 2)
    assert _unlocked(tmp_path / "cache") == []


def test_worker_count(monkeypatch):
    monkeypatch.setattr(signals.os, "cpu_count", lambda: 16)
    assert signals.resolve_workers(None, 21837) == 4
    assert signals.resolve_workers(None, 1200) == 2  # at least 500 records each
    assert signals.resolve_workers(None, 5) == 1  # a tiny build stays in this process
    assert signals.resolve_workers(3, 5) == 3 and signals.resolve_workers(8, 5) == 5
    monkeypatch.setattr(signals.os, "cpu_count", lambda: None)
    assert signals.resolve_workers(None, 21837) == 1
    with pytest.raises(ECGNetError, match="at least 1"):
        signals.resolve_workers(0, 10)


# --- PTBXL splits on the real cache -----------------------------------------------------------------

def test_splits_are_views_unless_asked_into_memory(ptbxl_superdiagnostic):
    data = ptbxl_superdiagnostic
    lazy = data.split("val", max_records=300, seed=1)
    eager = data.split("val", max_records=300, seed=1, in_memory=True)
    assert isinstance(lazy.signal, SignalRows) and type(eager.signal) is np.ndarray
    np.testing.assert_array_equal(lazy.ecg_ids, eager.ecg_ids)
    np.testing.assert_array_equal(np.asarray(lazy.signal), eager.signal)
    np.testing.assert_array_equal(lazy.signal[10:20, :, 100:350], eager.signal[10:20, :, 100:350])


def test_real_training_statistics_match_the_old_fit(ptbxl_superdiagnostic):
    """Chunked float64 statistics against the old whole-array float32 fit: the std agrees to 1e-6
    relative; the per-lead means (≈ 1e-3 mV) to 1e-6 of the std — float32's own rounding of the old sum."""
    train = ptbxl_superdiagnostic.split("train", max_records=2000, seed=0)
    mean, std = lead_statistics(train.signal)
    old_mean, old_std = _old_fit(np.asarray(train.signal))
    np.testing.assert_allclose(std, old_std, rtol=1e-6)
    assert np.all(np.abs(mean - old_mean) <= 1e-6 * std)
