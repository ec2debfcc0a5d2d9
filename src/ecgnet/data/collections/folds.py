"""Splitting a labelled collection into folds: patient-grouped, multilabel-stratified, or by source.

``stratified_group_folds`` is iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011, the
algorithm behind scikit-multilearn's ``IterativeStratification``) applied to patients instead of
records: a patient's records always land in one fold, and each fold receives about ``1/k`` of the
records and of each class's positives. The rarest class is placed first, each of its patients into
the fold that still lacks most of that class (ties: most records missing, then at random); patients
without any positive fill the folds that lack most records. Unknown labels (NaN) count as negative.
"""

from __future__ import annotations

import numpy as np

from ecgnet.data.collections.base import DEFAULT_SOURCE
from ecgnet.errors import ECGNetError


def stratified_group_folds(y: np.ndarray, groups, k: int, seed: int = 0) -> np.ndarray:
    """(n,) fold numbers 1..k for the records of multi-hot ``y`` (n, classes), grouped by ``groups``."""
    y = np.nan_to_num(np.asarray(y, dtype=float), nan=0.0)
    if y.ndim != 2:
        raise ValueError(f"y must be (records, classes), got shape {y.shape}")
    uniq, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if k < 2:
        raise ECGNetError(f"--folds must be at least 2, got {k}")
    if len(uniq) < k:
        raise ECGNetError(f"cannot make {k} patient-grouped folds from {len(uniq)} patients")
    rng = np.random.default_rng(seed)
    group_y = np.zeros((len(uniq), y.shape[1]))
    np.add.at(group_y, inv, y > 0)
    group_n = np.bincount(inv, minlength=len(uniq)).astype(float)
    want_labels = np.tile(group_y.sum(0) / k, (k, 1))  # (k, classes) positives each fold still needs
    want_records = np.full(k, len(y) / k)
    fold_of = np.full(len(uniq), -1)
    tiebreak = rng.random(len(uniq))  # a fixed random order of patients, from the seed

    def place(g: int, label: int | None) -> None:
        score = np.stack([want_labels[:, label] if label is not None else want_records,
                          want_records, rng.random(k)])
        f = np.lexsort(score[::-1])[-1]  # largest need for the label, then records, then random
        fold_of[g] = f
        want_labels[f] -= group_y[g]
        want_records[f] -= group_n[g]

    while True:
        open_ = fold_of < 0
        carriers = ((group_y[open_] > 0).sum(0))
        if not carriers.any():
            break
        label = int(np.argmin(np.where(carriers > 0, carriers, np.inf)))
        members = np.flatnonzero(open_ & (group_y[:, label] > 0))
        for g in members[np.argsort(tiebreak[members])]:
            place(int(g), label)
    rest = np.flatnonzero(fold_of < 0)
    for g in rest[np.argsort(tiebreak[rest])]:
        place(int(g), None)
    return fold_of[inv] + 1


def source_folds(sources, patients) -> tuple[np.ndarray, list[str]]:
    """Leave-one-source-out: (n,) fold numbers 1..S (one per source, sorted by name), the source names.
    A patient recorded in two sources cannot be held out with one of them: that is an error."""
    sources = np.asarray(sources).astype(str)
    names = sorted(set(sources.tolist()))
    if len(names) < 2:
        raise ECGNetError("--leave-out source needs at least two sources; " + (
            "the manifest names no source (a source column gives each record's site or database)"
            if names == [DEFAULT_SOURCE] else f"the collection has one: '{names[0]}' (its source column)"
            if names else "the collection has none"))
    patients = np.asarray(patients).astype(str)
    seen: dict[str, str] = {}
    for p, s in zip(patients, sources):
        if seen.setdefault(p, s) != s:
            raise ECGNetError(f"patient '{p}' has records in sources '{seen[p]}' and '{s}': leave-one-source-out "
                              "would put the same patient in training and test")
    index = {s: i + 1 for i, s in enumerate(names)}
    return np.array([index[s] for s in sources]), names


def inner_split(y: np.ndarray, groups, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of an inner validation set (about ``fraction`` of the records, patient-grouped,
    stratified): what early stopping and thresholds use when there is no validation fold."""
    k = max(2, round(1 / fraction))
    n_groups = len(set(np.asarray(groups).astype(str)))
    if n_groups < 2:
        raise ECGNetError("an inner validation split needs records of at least two patients")
    folds = stratified_group_folds(y, groups, min(k, n_groups), seed)
    return folds == 1
