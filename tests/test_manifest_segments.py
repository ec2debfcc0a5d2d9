"""A manifest's records over 10 s: the cache keeps every 10 s segment ``predict`` scores them in; training draws
one of them each time the record is drawn, and scoring (cross-validation, zero-shot, a run trained once) averages
over them — so out-of-fold figures are what ``predict`` gives on the same files."""

from __future__ import annotations

import pickle
from dataclasses import replace
import numpy as np
import pytest

from conftest import write_wfdb
from ecgnet.data.collections import read_manifest
from ecgnet.data.dataset import CropDataset, Split
from ecgnet.data.records import read_ecg
from ecgnet.data.signals import segment_starts

# records at 100 Hz: 25 s (segments at 0, 10 and 15 s), 10 s (none), 10.5 s (two: 0 and 0.5 s)
LENGTHS = {"long": 2500, "ten": 1000, "just_over": 1050}


@pytest.fixture
def loaded(tmp_path):
    for i, (name, samples) in enumerate(LENGTHS.items()):
        write_wfdb(tmp_path / "recs", name, fs=100, samples=samples, seed=i)
    text = "record,A\n" + "".join(f"recs/{name}.hea,{i % 2}\n" for i, name in enumerate(LENGTHS))
    (tmp_path / "m.csv").write_text(text)
    collection = read_manifest(tmp_path / "m.csv")
    return collection.load_signals(100, cache_dir=tmp_path / "cache", workers=1, progress=False), tmp_path


def test_segment_starts_cover_the_record_the_last_ending_at_its_end():
    assert segment_starts(1000, 100) == [0] and segment_starts(700, 100) == [0]
    assert segment_starts(2500, 100) == [0, 1000, 1500]
    assert segment_starts(1001, 100) == [0, 1]
    assert segment_starts(3000, 100) == [0, 1000, 2000]


def test_the_cache_keeps_a_long_record_s_segments_and_its_centre_row(loaded):
    collection, folder = loaded
    seg = collection._segments
    assert collection.info["records_over_10_s"] == 2 and seg.count.tolist() == [3, 0, 2]
    for i, name in enumerate(LENGTHS):
        own = read_ecg(folder / "recs" / f"{name}.hea", 100, resample=True).signal
        centre = (own.shape[-1] - 1000) // 2
        np.testing.assert_allclose(collection.signal[i], own[:, centre:centre + 1000], atol=1e-6)
        for k, start in enumerate(segment_starts(own.shape[-1], 100) if seg.count[i] else []):
            np.testing.assert_allclose(seg.array[seg.first[i] + k], own[:, start:start + 1000], atol=1e-6)
    sub = collection.subset([2, 0])  # the segments follow their records
    assert sub._segments.count.tolist() == [2, 3]
    np.testing.assert_array_equal(sub._segments.array[sub._segments.first[1]], seg.array[seg.first[0]])


def test_a_cache_reopened_or_built_in_parallel_has_the_same_segments(loaded):
    collection, folder = loaded
    again = read_manifest(folder / "m.csv").load_signals(100, cache_dir=folder / "cache", workers=1, progress=False)
    assert isinstance(again._segments.array, np.memmap)  # reused, memory-mapped
    parallel = read_manifest(folder / "m.csv").load_signals(100, cache_dir=folder / "other", workers=2,
                                                            progress=False)
    np.testing.assert_array_equal(np.asarray(parallel._segments.array), np.asarray(collection._segments.array))
    assert parallel._segments.first.tolist() == collection._segments.first.tolist()


def _scored_by_long_time(collection):
    """(the bundled long_time's Predictor, (its model, config, metadata scaler), cross-validation's scoring of every
    record of ``collection`` with them)."""
    from ecgnet.data.ptbxl import MetadataScaler
    from ecgnet.inference.predictor import Predictor
    from ecgnet.runs import load_run
    from ecgnet.training.collection_scoring import predict

    predictor = Predictor("long_time")
    model, config, _ = load_run(predictor.run_dir)
    scaler = MetadataScaler(*(np.asarray(predictor.info["metadata_scaler"][k]) for k in ("mean", "std")))
    return predictor, (model, config, scaler), predict(model, collection, np.arange(len(collection)), scaler, config)


def test_scoring_averages_a_long_record_s_segments_as_predict_does(loaded):
    """The bundled model through cross-validation's scoring and through predict, on the same files."""
    from ecgnet.training.collection_scoring import predict

    collection, folder = loaded
    predictor, (model, config, scaler), scored = _scored_by_long_time(collection)
    for i, name in enumerate(LENGTHS):
        record = read_ecg(folder / "recs" / f"{name}.hea", predictor.rate, resample=True)
        expected = predictor.predict_signal(record.signal, predictor.metadata_vector())
        np.testing.assert_allclose(scored[i], expected, atol=1e-5)
    centre_only = predict(model, replace(collection, _segments=None), np.arange(1), scaler, config)
    assert np.abs(centre_only[0] - scored[0]).max() > 1e-4  # the segments changed the long record's score


def test_training_draws_every_segment_and_validation_reads_the_centre(loaded):
    collection, _ = loaded
    signal = collection.signal
    split = Split(collection.records, signal, np.zeros((len(collection), 8), np.float32), collection.y)
    seg = collection._segments
    candidates = [seg.array[seg.first[0] + k] for k in range(3)]
    np.random.seed(0)
    drawing = CropDataset(split, crop=None, draw_segments=True)
    seen = set()
    for _ in range(60):
        x = drawing[0]["signal"].numpy()
        seen.add(next(k for k, c in enumerate(candidates) if np.array_equal(c, x)))
    assert seen == {0, 1, 2}
    np.testing.assert_array_equal(drawing[1]["signal"].numpy(), signal[1])  # a 10 s record: its row
    windows = CropDataset(split, crop=250, draw_segments=True)
    assert windows[0]["signal"].shape == (12, 250)
    np.testing.assert_array_equal(CropDataset(split)[0]["signal"].numpy(), signal[0])  # the centre, every time


def test_signal_rows_with_segments_pickle_the_path_not_the_data(loaded):
    collection, _ = loaded
    signal = collection.signal
    blob = pickle.dumps(signal)
    assert len(blob) < 10_000  # 2 × 48 kB of rows and 5 × 48 kB of segments not copied
    back = pickle.loads(blob)
    assert isinstance(back.segments.array, np.memmap)
    rows, owner = back.each_segment()
    assert owner.tolist() == [0, 0, 0, 1, 2, 2] and rows.shape == (6, 12, 1000)
    np.testing.assert_array_equal(rows[3:4][0], signal[1])


def test_a_damaged_segments_file_is_rebuilt_and_data_verify_checks_it(loaded):
    from ecgnet.data.signals import verify_caches

    collection, folder = loaded
    expected = np.array(collection._segments.array)  # read now: truncating the file in place breaks its mapping
    cache = folder / "cache"
    report = verify_caches(cache, progress=False)
    assert report.ok and sorted(report.good)[1].endswith(".segments.npy")
    segments = next(cache.glob("*.segments.npy"))
    segments.write_bytes(segments.read_bytes()[:-4000])  # truncated
    assert not verify_caches(cache, progress=False).ok
    with pytest.warns(UserWarning, match="segments: .*truncated"):
        again = read_manifest(folder / "m.csv").load_signals(100, cache_dir=cache, workers=1, progress=False)
    np.testing.assert_array_equal(np.asarray(again._segments.array), expected)
    assert verify_caches(cache, progress=False).ok
    assert not list(cache.glob("*.seg[0-9]*"))  # no worker part left behind


def test_a_manifest_of_10_s_records_has_no_segments(tmp_path):
    for i in range(2):
        write_wfdb(tmp_path / "recs", f"r{i}", fs=500, seed=i)
    (tmp_path / "m.csv").write_text("record,A\nrecs/r0.hea,1\nrecs/r1.hea,0\n")
    c = read_manifest(tmp_path / "m.csv").load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    assert c._segments is None and c.signal.segments is None and "records_over_10_s" not in c.info
    assert not list((tmp_path / "cache").glob("*.segments.*"))


def test_the_readers_other_warnings_are_kept_with_the_collection(tmp_path):
    """Training printed only 'amplitudes not trusted' of what the readers said; a record read with another warning
    (here 50 µV amplitude steps: the calls stay, the detail is rounded away) was trained on without a word, where
    predict prints it (a user-workflow audit). The cache keeps the warnings; train logs them."""
    import wfdb

    from conftest import LEADS

    write_wfdb(tmp_path / "recs", "fine", fs=100, seed=0)
    signal = np.round(np.random.default_rng(1).normal(0, 0.4, (1000, 12)) / 0.05) * 0.05
    wfdb.wrsamp("coarse", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=signal, fmt=["16"] * 12,
                adc_gain=[20.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path / "recs"))
    (tmp_path / "m.csv").write_text("record,A\nrecs/fine.hea,1\nrecs/coarse.hea,0\n")
    c = read_manifest(tmp_path / "m.csv").load_signals(100, cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert [r for r, _ in c.info["reader_warnings"]] == ["recs/coarse.hea"]
    assert "coarse amplitude resolution: 50 µV per step" in c.info["reader_warnings"][0][1]
    assert "untrusted_amplitude" not in c.info
    again = read_manifest(tmp_path / "m.csv").load_signals(100, cache_dir=tmp_path / "cache", progress=False)
    assert again.info["reader_warnings"] == c.info["reader_warnings"]  # kept in the cache's index


# --- records under 10 s: kept at their own length, scored as predict scores them --------------------------------

# at 500 Hz, read at 100 Hz: 6 s (600 samples), 3 s (300), 10 s, 25 s
SHORT = {"six": 3000, "three": 1500, "ten": 5000, "long": 12500}


@pytest.fixture
def with_short(tmp_path):
    for i, (name, samples) in enumerate(SHORT.items()):
        write_wfdb(tmp_path / "recs", name, fs=500, samples=samples, seed=10 + i)
    (tmp_path / "m.csv").write_text("record,A\n" + "".join(f"recs/{n}.hea,{i % 2}\n" for i, n in enumerate(SHORT)))
    collection = read_manifest(tmp_path / "m.csv")
    return collection.load_signals(100, cache_dir=tmp_path / "cache", workers=1, progress=False), tmp_path


def test_the_cache_keeps_a_short_record_s_own_length(with_short):
    import json

    from ecgnet.data.collections import cache

    collection, folder = with_short
    seg = collection._segments
    assert seg.length.tolist() == [600, 300, 1000, 1000] and seg.count.tolist() == [0, 0, 0, 3]
    assert collection.signal.own_lengths().tolist() == [600, 300, 1000, 1000]
    own = read_ecg(folder / "recs" / "six.hea", 100, resample=True).signal
    np.testing.assert_allclose(collection.signal[0][:, :600], own, atol=1e-6)  # the row starts with the record
    index = json.loads(next((folder / "cache").glob("manifest*[0-9a-f].json")).read_text())
    assert index["lengths"] == {"0": 600, "1": 300}
    sub = collection.subset([3, 1])  # the lengths follow their records, through a subset and a pickle
    assert sub.signal.own_lengths().tolist() == [1000, 300]
    assert pickle.loads(pickle.dumps(sub.signal)).own_lengths().tolist() == [1000, 300]
    assert sub.signal.take(np.array([False, True])).own_lengths().tolist() == [300]
    paths = [folder / "recs" / "six.hea"]  # a cache of the layout before the lengths is not reused
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache, "LAYOUT", "repeat+segments+warnings")
        before = cache.cache_key(paths, 100)
    assert cache.cache_key(paths, 100) != before


def test_a_short_record_is_scored_as_predict_scores_it(with_short):
    """A 6 s record: predict scores its own 600 samples (windows at 0, 1.25, 2.5 and 3.5 s); cross-validation's
    scoring scored its row repeated to 10 s (windows across the join too)."""
    from ecgnet.training.collection_scoring import predict

    collection, folder = with_short
    predictor, (model, config, scaler), scored = _scored_by_long_time(collection)
    for i, name in enumerate(SHORT):
        expected = predictor.predict_file(folder / "recs" / f"{name}.hea")
        probs = {d["class"]: d["probability"] for d in expected["diagnoses"]}
        np.testing.assert_allclose(scored[i], [probs[c] for c in predictor.classes], atol=1e-5)  # 6 decimals
        record = read_ecg(folder / "recs" / f"{name}.hea", predictor.rate, resample=True)
        np.testing.assert_allclose(scored[i], predictor.predict_signal(record.signal, predictor.metadata_vector()),
                                   atol=1e-6)
    repeated = replace(collection, _segments=replace(collection._segments, length=None))
    before = predict(model, repeated, np.arange(2), scaler, config)
    assert np.abs(before - scored[:2]).max() > 1e-4  # the repeated row was scored otherwise
    np.testing.assert_allclose(predict(model, collection, np.array([2, 0]), scaler, config), scored[[2, 0]],
                               atol=1e-6)  # in any order (other batches: float rounding only)


def test_training_crops_a_short_record_within_its_own_length(with_short):
    collection, _ = with_short
    signal = collection.signal
    split = Split(collection.records, signal, np.zeros((len(collection), 8), np.float32), collection.y)
    row = signal[0]
    np.random.seed(0)
    crops = CropDataset(split, crop=250, draw_segments=True)
    starts = set()
    for _ in range(80):
        x = crops[0]["signal"].numpy()
        starts.add(next(s for s in range(751) if np.array_equal(row[:, s:s + 250], x)))
    assert max(starts) <= 350 and len(starts) > 40  # never across the join at 600
    np.testing.assert_array_equal(CropDataset(split, crop=None, draw_segments=True)[0]["signal"].numpy(), row)
    for _ in range(40):  # 3 s: crops start in its first 0.5 s
        x = crops[1]["signal"].numpy()
        assert any(np.array_equal(signal[1][:, s:s + 250], x) for s in range(51))


def test_short_records_are_scored_batch_by_batch(tmp_path, monkeypatch):
    """A cart that always records 8 s makes nearly every row short: they were read all at once (100k records at
    100 Hz: 4.8 GB) instead of ``batch_size`` rows at a time, as every other row is (review)."""
    from ecgnet.data.dataset import Segments, SignalRows
    from ecgnet.inference.batch import predict_proba
    from ecgnet.models import build_model

    n = 600
    array = np.lib.format.open_memmap(tmp_path / "rows.npy", mode="w+", dtype=np.float32, shape=(n, 12, 1000))
    array[:] = 0.1
    array.flush()
    rows = SignalRows(np.load(tmp_path / "rows.npy", mmap_mode="r"), np.arange(n),
                      Segments(np.zeros((0, 12, 1000), np.float32), np.zeros(n, np.intp), np.zeros(n, np.intp),
                               np.full(n, 800)))
    reads = []
    read = SignalRows.__getitem__
    monkeypatch.setattr(SignalRows, "__getitem__", lambda self, key: reads.append(read(self, key)) or reads[-1])
    p = predict_proba(build_model("time_resnet1d", 5, widths=[8, 8]), rows, np.zeros((n, 8), np.float32), 250, 125,
                      "max", batch_size=256)
    assert p.shape == (n, 5) and max(len(r) for r in reads) == 256
