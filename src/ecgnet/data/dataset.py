"""PTB-XL for one task as arrays per split, and the torch Dataset that yields training crops.

``PTBXL`` joins the three sources on ``ecg_id``: labels of the task (records without one left out),
the signal cache, and the metadata scaled with training-fold statistics.

A split's signals stay in the memory-mapped cache by default (:class:`SignalRows`: rows are read when
indexed), so a process holds only what it is using, and processes reading the same cache share the
operating system's page cache instead of each holding a copy. ``in_memory=True`` copies the split into
the process instead (what ``data.in_memory`` in a config asks for; see ``benchmarks/bench_scaling.py``
for the two compared).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgnet.data import ptbxl, signals
from ecgnet.errors import ECGNetError


class SignalRows:
    """Some rows of a (records, leads, samples) array — the memory-mapped signal cache — read on demand.

    Behaves as the ndarray ``array[rows]`` would, without copying it: ``len``, ``shape``, ``dtype``,
    ``ndim``, ``nbytes``; indexing with an int, a slice, an integer or boolean array (optionally followed
    by indices of the other axes, e.g. ``view[:, :, :250]``) returns an ndarray read from the cache;
    ``np.asarray(view)`` and ``torch.as_tensor(view)`` read every row. Pickling sends the file's path and the rows, not the data (a
    DataLoader or DDP worker started by ``spawn`` reopens the memory map).

    ``segments`` (a manifest's records over or under 10 s, :class:`Segments`): a record over 10 s has its centre
    10 s as its row, and its segments are what training draws from and scoring averages over; a record under 10 s
    is the start of its (repeated) row, which training crops, whole-record training's batches
    (:mod:`ecgnet.training.length_batches`) and scoring windows stay within.
    """

    def __init__(self, array: np.ndarray, rows, segments: "Segments | None" = None) -> None:
        rows = np.asarray(rows, dtype=np.intp)
        if rows.ndim != 1:
            raise ValueError(f"rows must be one-dimensional, got shape {rows.shape}")
        if segments is not None and len(segments) != len(rows):
            raise ValueError(f"{len(segments)} records' segments for {len(rows)} rows")
        self._array, self._rows, self.segments = array, rows, segments

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._rows), *self._array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        where = getattr(self._array, "filename", None) or "an in-memory array"
        return f"SignalRows(shape={self.shape}, dtype={self.dtype}, of {where})"

    def __getitem__(self, key) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        if _is_int(first) or _is_index_array(first):
            # an int or an index array maps onto the cache's rows one for one, so numpy's rules for
            # the remaining indices apply unchanged
            rows = self._rows[first if _is_int(first) else np.asarray(first)]
            out = self._array[(rows, *rest)]
            return np.array(out) if np.ndim(rows) == 0 else np.asarray(out)  # a view of one row: copied
        if isinstance(first, slice):
            rows = self._rows[first]
            if all(isinstance(k, slice) or _is_int(k) for k in rest):
                return np.asarray(self._array[(rows, *rest)])
            return self._array[rows][(slice(None), *rest)]  # further index arrays: numpy's rules on the rows
        return np.asarray(self)[key]  # Ellipsis, None, ...: read everything, then index as numpy does

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("SignalRows cannot be converted to an array without a copy")
        out = np.asarray(self._array[self._rows]).view(np.ndarray)  # fancy indexing: a copy
        return out if dtype is None else out.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        """``torch.as_tensor(view)``: every row, read into one CPU tensor (torch would otherwise build it
        row by row from the sequence)."""
        return torch.from_numpy(np.asarray(self)).__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # DLPack's CPU

    def take(self, index) -> "SignalRows":
        """The rows at ``index`` (indices or a boolean mask), in that order, with their segments: a view, as this."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.intp)
        return SignalRows(self._array, self._rows[index], None if self.segments is None else self.segments.take(index))

    def own_lengths(self) -> np.ndarray:
        """How many samples at the start of each row are the record's own: the row's length, but a record under
        10 s's own length (the rest of its row repeats it)."""
        length = None if self.segments is None else self.segments.length
        return np.full(len(self), self.shape[-1], np.intp) if length is None else np.asarray(length, np.intp)

    def each_segment(self) -> tuple["SegmentRows", np.ndarray]:
        """Every 10 s segment of these records in order — a record without segments: its own row — and the
        position of the record each is of (what scoring averages over, as ``predict`` averages a long record)."""
        seg = self.segments or Segments(self._array[:0], np.zeros(len(self), int), np.zeros(len(self), int))
        parts, owner = [], []
        for i in range(len(self)):
            if seg.count[i] == 0:
                parts.append((self._array, int(self._rows[i])))
            else:
                parts.extend((seg.array, int(r)) for r in range(seg.first[i], seg.first[i] + seg.count[i]))
            owner.extend([i] * max(1, int(seg.count[i])))
        return SegmentRows(parts, self.shape[1:]), np.asarray(owner, dtype=np.intp)

    def __getstate__(self) -> dict:
        return {**_array_state(self._array), "rows": self._rows, "segments": self.segments}

    def __setstate__(self, state: dict) -> None:
        self._array, self._rows, self.segments = _array_from(state), state["rows"], state.get("segments")


@dataclass
class Segments:
    """How much of a manifest's record its cache row holds, where that is not exactly the record.

    The consecutive 10 s segments of a record over 10 s (the last ending at the record's end:
    :func:`ecgnet.data.signals.segment_starts`, as ``predict`` scores such a record) are rows of an array of their
    own: record ``i``'s are rows ``first[i]`` … ``first[i] + count[i] - 1``; a count of 0 (a record of up to 10 s)
    means its one row of the main cache is all of it. ``length``: the samples at the start of each record's row that
    are its own — fewer than the row's for a record under 10 s, whose row repeats it (``predict`` scores it at its
    own length); None: every row is the record's own. Pickled by path, like :class:`SignalRows`."""

    array: np.ndarray  # (segments, 12, samples) float32 mV, memory-mapped
    first: np.ndarray  # (records,) int
    count: np.ndarray  # (records,) int
    length: np.ndarray | None = None  # (records,) int

    def __len__(self) -> int:
        return len(self.count)

    def take(self, index) -> "Segments":
        """The segments of the records at ``index`` (indices or a boolean mask), in that order."""
        return Segments(self.array, self.first[index], self.count[index],
                        None if self.length is None else self.length[index])

    def __getstate__(self) -> dict:
        return {**_array_state(self.array), "first": self.first, "count": self.count, "length": self.length}

    def __setstate__(self, state: dict) -> None:
        self.array, self.first, self.count = _array_from(state), state["first"], state["count"]
        self.length = state.get("length")


class SegmentRows:
    """Rows of one or two arrays (a cache and its segments), in a given order: what :meth:`SignalRows.each_segment`
    gives scoring; ``len``, ``shape`` and slicing, reading only the rows sliced."""

    def __init__(self, parts: list[tuple[np.ndarray, int]], row_shape: tuple[int, ...]):
        self._parts, self._row_shape = parts, tuple(row_shape)

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self._row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._row_shape)

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError("SegmentRows are read in slices")
        parts = self._parts[index]
        if not parts:
            return np.zeros((0, *self._row_shape), np.float32)
        return np.stack([array[row] for array, row in parts])


def _array_state(a: np.ndarray) -> dict:
    """A memory-mapped array by its file (a worker reopens it), any other by value."""
    if isinstance(a, np.memmap) and a.filename is not None:
        return {"path": a.filename, "offset": a.offset, "shape": a.shape, "dtype": a.dtype.str}
    return {"array": np.asarray(a)}


def _array_from(state: dict) -> np.ndarray:
    if "array" in state:
        return state["array"]
    return np.memmap(state["path"], dtype=np.dtype(state["dtype"]), mode="r", offset=state["offset"],
                     shape=tuple(state["shape"]))


def _is_int(key) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, bool)


def _is_index_array(key) -> bool:
    return isinstance(key, (list, np.ndarray, torch.Tensor))


@dataclass
class Split:
    """One split's records, in ecg_id order."""

    ecg_ids: np.ndarray  # (n,)
    signal: np.ndarray | SignalRows  # (n, 12, samples) float32 mV; SignalRows unless loaded into memory
    metadata: np.ndarray  # (n, 8) float32, scaled
    y: np.ndarray  # (n, n_classes) float32

    def sample(self, n: int | None, seed: int = 0) -> "Split":
        """At most ``n`` of its records (random, kept in order; all of them when ``n`` is None) — for cheap
        evaluations, tests and demos."""
        keep = sample_rows(len(self.ecg_ids), n, seed)
        if keep is None:
            return self
        return Split(self.ecg_ids[keep], self.signal[keep], self.metadata[keep], self.y[keep])


def sample_rows(total: int, n: int | None, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of ``n`` of ``total`` rows drawn without replacement with ``seed``; None (every row) when
    ``n`` is None or not below ``total``. What every "max records" option draws."""
    if n is None or n >= total:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


class PTBXL:
    """``in_memory``: the default of :meth:`split` — copy a split's signals into memory (True) or read
    them from the memory-mapped cache as they are used (False)."""

    validation_name = "fold 9 (val)"  # where thresholds are chosen, as run files and messages say it

    def __init__(self, root: Path, task: str = "superdiagnostic", sampling_rate: int = 100,
                 cache_dir: Path | None = None, in_memory: bool = False):
        if sampling_rate not in (100, 500):  # PTB-XL's two releases of every record
            raise ECGNetError(f"PTB-XL comes at 100 or 500 Hz, not {sampling_rate}")
        self.root = ptbxl.data_root(root)
        self.in_memory = in_memory
        db = ptbxl.read_database(self.root)
        statements = ptbxl.read_statements(self.root)
        self.tables = db, statements  # ptbxl_database.csv and scp_statements.csv as read
        self.labels = ptbxl.make_labels(db, statements, task)
        self.descriptions = ptbxl.describe_classes(self.labels.classes, statements)
        column = "filename_lr" if sampling_rate == 100 else "filename_hr"
        cache_ids, self._signals = signals.load_signals(self.root, db[column].to_dict(), sampling_rate, cache_dir)
        self._row = {int(e): i for i, e in enumerate(cache_ids)}
        meta = ptbxl.metadata_table(db)
        self.metadata_scaler = ptbxl.MetadataScaler.fit(meta[db["strat_fold"].isin(ptbxl.TRAIN_FOLDS)])
        self._metadata = meta

    @property
    def classes(self) -> list[str]:
        return self.labels.classes

    def task_targets(self, task: str, ecg_ids: np.ndarray) -> np.ndarray:
        """Another task's multi-hot targets for these records (all zeros for a record with none of its
        statements), in that task's class order: the auxiliary task of multi-task training."""
        other = ptbxl.make_labels(*self.tables, task)
        row = {int(e): i for i, e in enumerate(other.ecg_ids)}
        y = np.zeros((len(ecg_ids), len(other.classes)), dtype=np.float32)
        for i, e in enumerate(ecg_ids):
            if int(e) in row:
                y[i] = other.y[row[int(e)]]
        return y

    def split(self, name: str, max_records: int | None = None, seed: int = 0,
              in_memory: bool | None = None) -> Split:
        """Records of ``train`` (folds 1–8), ``val`` (9) or ``test`` (10); the signals as a
        :class:`SignalRows` view of the cache, or copied into memory with ``in_memory`` (default: the
        dataset's)."""
        mask = self.labels.split(name)
        ids = self.labels.ecg_ids[mask]
        y = self.labels.y[mask]
        keep = sample_rows(len(ids), max_records, seed)
        if keep is not None:
            ids, y = ids[keep], y[keep]
        rows = SignalRows(self._signals, [self._row[int(e)] for e in ids])
        signal = np.asarray(rows) if (self.in_memory if in_memory is None else in_memory) else rows
        return Split(ids, signal, self.metadata_scaler.transform(self._metadata.loc[ids]), y)


class CropDataset(Dataset):
    """Training samples: a random window of ``crop`` samples (or the whole record if None). With
    ``draw_segments`` (training), a manifest's record over 10 s (:class:`Segments`) gives a window of one of its
    segments, drawn at random each time (the whole record is seen), and a record under 10 s a window within its own
    length where the crop fits in it (never across the join of its repeated row); without, every record gives its
    row (validation during training; where a manifest's rows are not all of their records, it scores them from the
    cache instead and takes only their metadata and labels from here: :mod:`ecgnet.training.module`). Whole-record
    training (``crop`` None) on records under 10 s does not read their repeated rows: its loader asks for each record
    cut to its batch's shortest own length (:meth:`cut`, :mod:`ecgnet.training.length_batches`)."""

    def __init__(self, split: Split, crop: int | None = None, draw_segments: bool = False):
        self.split, self.crop = split, crop
        self.segments = getattr(split.signal, "segments", None) if draw_segments else None

    def __len__(self) -> int:
        return len(self.split.ecg_ids)

    def own_lengths(self) -> np.ndarray | None:
        """Each record's own samples at the start of its row when training draws within them (``draw_segments``) and
        the cache keeps lengths (a manifest with a record under 10 s); None: every row is its record's own."""
        return None if self.segments is None else self.segments.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.cut(i, self.crop)

    def cut(self, i: int, crop: int | None) -> dict[str, torch.Tensor]:
        """Record ``i`` as a random window of ``crop`` samples (None: its whole row), within its own length where it
        fits: every training sample, and what :mod:`ecgnet.training.length_batches` asks for to cut a whole-record
        batch to its shortest record (one random draw, the same as a training crop's, so no sample past a record's
        end is read)."""
        samples = self.split.signal.shape[-1]
        window = slice(None)
        if crop is not None and crop < samples:
            own = samples if self.segments is None or self.segments.length is None else int(self.segments.length[i])
            start = np.random.randint(0, (own if crop <= own else samples) - crop + 1)
            window = slice(start, start + crop)  # only the window is read
        seg = self.segments
        if seg is not None and seg.count[i] > 0:
            x = np.array(seg.array[seg.first[i] + np.random.randint(seg.count[i]), :, window])  # not a read-only view
        else:
            x = self.split.signal[i, :, window]
        return {"signal": torch.from_numpy(np.ascontiguousarray(x)),
                "metadata": torch.from_numpy(self.split.metadata[i]),
                "y": torch.from_numpy(self.split.y[i])}
