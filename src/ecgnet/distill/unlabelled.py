"""Unlabelled ECGs for distillation (``training.distill_unlabelled``, ``ecgnet distill --unlabelled M.csv``).

The records of a manifest — only its ``record`` column is needed; labels, if any, are ignored — join the
training crops with the teacher's soft targets and unknown labels (NaN, masked in the hard loss), so
they teach through the soft term alone. They are read as any manifest's records (any format the readers
accept, resampled to the config's rate; a record over 10 s gives its centre 10 s, one under 10 s is left out,
said), with their metadata scaled as the training folds' (missing fields flagged as such). The teacher's probabilities on them are computed once
and cached beside its PTB-XL soft targets, under a key of the records (paths, sizes, times) and the rate.

A record of PTB-XL's fold 9 or 10 (recognised by its file name, ``NNNNN_lr`` / ``NNNNN_hr``) is refused:
it would teach the student about the records that select and test it. Records a transfer figure is
measured on (e.g. the shared Challenge samples) must not be used either; nothing can recognise those.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ecgnet.data.dataset import Split
from ecgnet.errors import ECGNetError

PTBXL_NAME = re.compile(r"^(\d{5})_(lr|hr)$")


def read(manifest: str | Path, sampling_rate: int, n_classes: int, metadata_scaler, cache_dir=None,
         progress: bool = True) -> tuple[Split, str]:
    """The manifest's records as a training split with every label unknown, and the key of its signal
    cache (what their soft targets are cached under)."""
    from ecgnet.data.collections.cache import cache_key
    from ecgnet.data.collections.manifest import read_manifest

    manifest = Path(manifest)
    collection = read_manifest(manifest, labelled=False).load_signals(sampling_rate, cache_dir, progress=progress)
    collection = _without_short_records(collection, manifest)
    paths = [Path(r) if Path(r).is_absolute() else manifest.parent / r for r in collection.records]
    y = np.full((len(collection), n_classes), np.nan, dtype=np.float32)
    split = Split(collection.records, collection.signal, metadata_scaler.transform(collection.metadata), y)
    return split, cache_key(paths, sampling_rate)


def _without_short_records(collection, manifest: Path):
    """The records of 10 s or more: the student's crops and the teacher's soft targets are drawn from 10 s rows,
    and a record under 10 s fills its row by repeating itself — a join that ``predict`` never shows a model. The
    others are left out, said in one warning (an unlabelled set is extra data: nothing is lost but them)."""
    own = collection.signal.own_lengths()
    short = own < collection.signal.shape[-1]
    if not short.any():
        return collection
    first = collection.records[int(np.flatnonzero(short)[0])]
    warnings.warn(f"{manifest}: {int(short.sum())} of {len(collection)} unlabelled records are under 10 s (e.g. "
                  f"{first}) and are left out: distillation draws crops and the teacher's targets from 10 s rows",
                  stacklevel=2)
    if short.all():
        raise ECGNetError(f"{manifest}: every unlabelled record is under 10 s; distillation draws from 10 s rows")
    return collection.subset(~short)


def refuse_evaluation_records(split: Split, evaluation_ids: set[int], manifest: str | Path) -> None:
    """An error naming the records that are PTB-XL records of the selection or test folds."""
    leaked = [str(r) for r in split.ecg_ids
              if (m := PTBXL_NAME.match(Path(str(r)).stem.removesuffix(".hea"))) and int(m.group(1)) in evaluation_ids]
    if leaked:
        raise ECGNetError(f"{manifest}: {len(leaked)} record(s) are PTB-XL records of fold 9 or 10 (e.g. "
                          f"{leaked[0]}), which select and test the student: leave them out of the unlabelled set")


def soft_targets(teacher: str | Path, split: Split, key: str, classes: list[str], cache_dir=None,
                 progress: bool = True):
    """The teacher's :class:`~ecgnet.distill.teacher.SoftTargets` on the unlabelled split, computed once."""
    from ecgnet.data.signals import cache_dir as default_cache
    from ecgnet.distill.teacher import SoftTargets, cache_path, compute_split

    teacher = Path(teacher)
    folder = teacher if (teacher / "train.npz").is_file() else cache_path(teacher, Path(cache_dir or default_cache()))
    path = folder / f"unlabelled_{key}.npz"
    if not path.is_file():
        if not (teacher / "config.yaml").is_file():
            raise ECGNetError(f"{teacher}: a folder of soft targets without the unlabelled records' ({path.name}); "
                              "give the teacher run directory so that they can be computed")
        arrays = compute_split(teacher, split, classes, "unlabelled", progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"unlabelled_{key}.partial.npz"
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return SoftTargets.load(path)
