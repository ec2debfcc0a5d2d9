"""A labelled collection of ECGs, whatever it came from (PTB-XL, a manifest CSV): one interface.

A :class:`Collection` holds, row for row: the record names, the label matrix over its own classes
(1 / 0, NaN where a label is unknown), fold numbers when the source defines them, patients (a
record's own name when unknown), sources (sites, databases) and the raw metadata (age, sex 0 male /
1 female, height cm, weight kg, with ``*_missing`` flags: :func:`ecgnet.data.ptbxl.metadata_features`).
Signals come from a memory-mapped cache once :meth:`Collection.load_signals` has been called; rows
are then read on demand (:class:`~ecgnet.data.dataset.SignalRows`). Loading them also fills a record's empty
age and sex with those its own file states (a manifest's records: what ``predict`` and ``evaluate`` feed a
metadata model for it; :func:`with_file_demographics`).

:class:`CollectionData` turns a collection and an assignment of rows to ``train`` / ``val`` /
``test`` into what training and evaluation read (the interface of :class:`~ecgnet.data.dataset.PTBXL`):
``classes``, ``descriptions``, ``metadata_scaler`` and ``split(name)``.
"""

from __future__ import annotations

import difflib

from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from ecgnet.data.dataset import Segments, SignalRows, Split, sample_rows
from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.data.patient import PatientError, check_patient
from ecgnet.data.ptbxl import SCP_CODES, SEX_CODES, MetadataScaler, metadata_features
from ecgnet.errors import ECGNetError

DEFAULT_SOURCE = "manifest"  # the source of a manifest's record whose source cell is empty (or that has no column)
NO_AUXILIARY_TASK = "training.auxiliary_task needs PTB-XL's statements; it is not available on a manifest"

# (collection, sampling_rate, cache_dir, workers, progress, skip_bad, read limits)
#     → (signal array, rows of it per record, bad rows, rows whose amplitudes the readers do not trust,
#        the 10 s segments of records over 10 s or None, the readers' other warnings by row[, the age and sex
#        each record's file states, by record: (years or None, 'male' / 'female' or None) — a manifest's loader;
#        PTB-XL's has no seventh item: its metadata are its database's])
SignalLoader = Callable[..., tuple[np.ndarray, np.ndarray, dict[int, str], dict[int, str], Segments | None,
                                   dict[int, str]]
                        | tuple[np.ndarray, np.ndarray, dict[int, str], dict[int, str], Segments | None,
                                dict[int, str], dict[int, tuple[float | None, str | None]]]]


@dataclass(frozen=True)
class Collection:
    name: str
    records: np.ndarray  # (n,) str: record names (a manifest's record column; PTB-XL's ecg_id)
    classes: list[str]
    y: np.ndarray  # (n, classes) float32: 1, 0, NaN = unknown
    patients: np.ndarray  # (n,) str
    sources: np.ndarray  # (n,) str
    metadata: pd.DataFrame  # (n rows, positional index) raw age/sex/height/weight + *_missing flags
    folds: np.ndarray | None = None  # (n,) int, when the source defines folds
    descriptions: dict[str, str] = field(default_factory=dict)  # {class: description}: PTB-XL's; a manifest's: none
    skipped: tuple[tuple[str, str], ...] = ()  # (record or row, why) left out with --skip-bad
    loader: SignalLoader | None = None  # how the signals are cached
    info: dict = field(default_factory=dict)  # where it came from (manifest path, task, ...)
    _array: np.ndarray | None = None  # the signal cache, once loaded
    _rows: np.ndarray | None = None  # each record's row in it
    _segments: Segments | None = None  # the 10 s segments of records over 10 s (a manifest's), record for record

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_unknown(self) -> bool:
        return bool(np.isnan(self.y).any())

    @property
    def interval_groups(self) -> np.ndarray | None:
        """What bootstrap intervals resample (:func:`ecgnet.evaluation.metrics.bootstrap_indices`): a manifest's
        patients (each with all their records); None — records — for PTB-XL, as its benchmark and every other
        PTB-XL figure of ECGNet do."""
        return None if "ptbxl" in self.info else self.patients

    @property
    def signal(self) -> SignalRows:
        if self._array is None:
            raise RuntimeError("call load_signals() first")
        return SignalRows(self._array, self._rows, self._segments)

    def subset(self, rows) -> "Collection":
        """The records at ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.intp)
        return replace(self, records=self.records[rows], y=self.y[rows], patients=self.patients[rows],
                       sources=self.sources[rows], metadata=self.metadata.iloc[rows].reset_index(drop=True),
                       folds=None if self.folds is None else self.folds[rows],
                       _rows=None if self._rows is None else self._rows[rows],
                       _segments=None if self._segments is None else self._segments.take(rows))

    def load_signals(self, sampling_rate: int, cache_dir=None, workers: int | None = None,
                     progress: bool = True, skip_bad: bool | None = None,
                     limits: ReadLimits = DEFAULT_LIMITS) -> "Collection":
        """This collection with its signals cached at ``sampling_rate`` (built on first use). Records
        that cannot be read (or declare more than ``limits`` allow) stop with one error naming them
        (suggesting ``--skip-bad`` when ``skip_bad`` is False: the command has the option), or with
        ``skip_bad`` are left out and listed in ``skipped``; ``limits`` other than the defaults are kept in
        ``info["read_limits"]`` (a run records them). Records whose amplitudes the readers do not trust
        (a wrong gain, a flat lead: what ``predict`` withholds its calls for) are kept and listed in
        ``info["untrusted_amplitude"]``; the readers' other warnings in ``info["reader_warnings"]``. A record's
        empty age and sex are taken from its file where the loader read them there (a manifest's; the manifest's
        own values win), as ``predict`` and ``evaluate`` take them; how many in ``info["metadata_from_files"]``."""
        if self.loader is None:
            raise ECGNetError(f"{self.name}: no way to read this collection's signals")
        array, rows, bad, untrusted, segments, warned, *stated = self.loader(self, sampling_rate, cache_dir, workers,
                                                                             progress, skip_bad, limits)
        info = {**self.info, "sampling_rate": sampling_rate}
        if limits != DEFAULT_LIMITS:  # what read the records (run.json's collection: int8 calibration reads so too)
            info["read_limits"] = asdict(limits)
        metadata = self.metadata
        if stated:  # a manifest's loader: the files' own age and sex where the manifest gives none
            metadata, info["metadata_from_files"] = with_file_demographics(self.metadata, stated[0])
        if untrusted:
            info["untrusted_amplitude"] = [[str(self.records[i]), why] for i, why in sorted(untrusted.items())]
        if warned:  # the first 100 (every fold's run.json holds them), and how many
            info["reader_warnings"] = [[str(self.records[i]), why] for i, why in sorted(warned.items())[:100]]
            info["reader_warnings_count"] = len(warned)
        if segments is not None:
            info["records_over_10_s"] = int((segments.count > 0).sum())
        loaded = replace(self, _array=array, _rows=np.asarray(rows, dtype=np.intp), _segments=segments, info=info,
                         metadata=metadata)
        if bad:
            keep = np.ones(len(self), bool)
            keep[list(bad)] = False
            loaded = replace(loaded.subset(keep), skipped=self.skipped + tuple(
                (str(self.records[i]), why) for i, why in sorted(bad.items())))
        return loaded

    def near_misses(self, run_classes: list[str]) -> list[tuple[str, str]]:
        """(this collection's class, the run's class it is likely a typo of), the run's class absent from this
        collection: names of 4+ letters one letter or so apart (STCC, STTC), shorter ones only two neighbouring
        letters swapped (HPY, HYP; not IMI beside MI, nor AMI beside IMI: real codes one letter apart). Two of
        PTB-XL's own codes are never a typo of each other (LAFB, LPFB; ISCAL, ISCAN)."""
        unused = [u for u in run_classes if u not in self.classes]
        misses = []
        for c in (c for c in self.classes if c not in run_classes):
            others = [u for u in unused if not (c in SCP_CODES and u in SCP_CODES)]
            if len(c) >= 4:
                close = difflib.get_close_matches(c, [u for u in others if len(u) >= 4], n=1, cutoff=0.75)
            else:
                close = [u for u in others if len(u) == len(c) and _swapped_neighbours(c, u)]
            if close:
                misses.append((c, close[0]))
        return misses

    def refuse_misnamed(self, run_classes: list[str], consequence: str) -> None:
        """Before a run meets this collection's classes (scoring, fine-tuning): a class that is one of the run's in
        another case, or several of them joined with a wrong separator, is refused — ``consequence`` says what it
        would do as written."""
        self.refuse_case_twins(run_classes, consequence)
        self.refuse_joined(run_classes, consequence)

    def refuse_joined(self, run_classes: list[str], consequence: str) -> None:
        """A class of this collection that is several of the run's joined by a wrong separator ('MI+HYP', 'STTC /
        CD': a labels cell written with '+' or '/' instead of ';') would be taken as a class of its own —
        ``consequence`` says how. Refused, naming the manifest and the parts (a manifest that also used the parts
        alone was refused when read; one that did not slipped through)."""
        from ecgnet.data.collections.manifest_checks import joined_labels

        joined = [c for c in self.classes if c not in run_classes and joined_labels(c, set(run_classes), strict=False)]
        if joined:
            said = ", ".join(f"'{c}'" for c in joined)
            raise ECGNetError(f"{self.info.get('manifest', self.name)}: class(es) {said} look like several of the "
                              f"run's classes joined with another separator than ';': as written {consequence}; "
                              "separate the labels of a 'labels' cell with ';'")

    def refuse_case_twins(self, run_classes: list[str], consequence: str) -> None:
        """Classes are matched by exact name; a class of this collection that is one of the run's in
        another case ('norm' for 'NORM') would silently miss it — ``consequence`` says how. Refused,
        naming the manifest and both spellings."""
        ours = {c.casefold(): c for c in run_classes}
        twins = [(c, ours[c.casefold()]) for c in self.classes if c not in run_classes and c.casefold() in ours]
        if twins:
            said = ", ".join(f"'{c}' (the run's '{r}')" for c, r in twins)
            mapped = self.info.get("label_map")  # the classes are the map's targets then: written there
            fix = (f"write them as the run does in the label map {mapped.get('path') or ''}".rstrip() if mapped else
                   "rename them in the manifest or map them with --label-map")
            raise ECGNetError(f"{self.info.get('manifest', self.name)}: class(es) {said} differ from the run's only in "
                              f"case: classes are matched by exact name, so as written {consequence}; {fix}")

    def counts(self) -> pd.DataFrame:
        """Per source: records and positives per class (unknowns not counted), plus a total row."""
        table = pd.DataFrame(np.nan_to_num(self.y, nan=0).astype(int), columns=self.classes)
        table.insert(0, "records", 1)
        out = table.groupby(pd.Series(self.sources, name="source")).sum()
        out.loc["total"] = out.sum()
        return out


class CollectionData:
    """A loaded collection with its rows assigned to ``train``, ``val`` and (optionally) ``test``:
    what training and evaluation read, as they read :class:`~ecgnet.data.dataset.PTBXL`. The metadata
    scaler is fitted on the training rows unless one is given (fine-tuning keeps the shipped model's)."""

    validation_name = "validation rows"  # where thresholds are chosen, as run files and messages say it

    def __init__(self, collection: Collection, assignment: dict[str, np.ndarray],
                 in_memory: bool = False, metadata_scaler: MetadataScaler | None = None):
        if collection._array is None:
            raise RuntimeError("load the collection's signals first")
        self.collection, self.in_memory = collection, in_memory
        self.assignment = {k: np.asarray(v, dtype=np.intp) for k, v in assignment.items()}
        for name in ("train", "val"):
            if len(self.assignment.get(name, ())) == 0:
                raise ECGNetError(f"{collection.name}: no records for the {name} split")
        self.metadata_scaler = metadata_scaler or MetadataScaler.fit(collection.metadata.iloc[self.assignment["train"]])

    @property
    def classes(self) -> list[str]:
        return self.collection.classes

    @property
    def descriptions(self) -> dict[str, str]:
        """{class: its description} for the classes the collection describes (run.json's ``class_descriptions``):
        PTB-XL's for PTB-XL, its own manifests and a manifest of exactly its five superclasses (the superclass task);
        none for a manifest's own classes, whatever their names (a site's MI need not be PTB-XL's myocardial
        infarction), so they are shown by their names alone."""
        known = self.collection.descriptions
        return {c: known[c] for c in self.classes if known.get(c)}

    def has_split(self, name: str) -> bool:
        return len(self.assignment.get(name, ())) > 0

    @property
    def evaluated_splits(self) -> tuple[str, ...]:
        """``("val", "test")`` for PTB-XL's folds 9 and 10 (a PTB-XL collection whose both splits have every label
        known and every class positive and negative): training evaluates and reports them as a PTB-XL run's; else
        ``()`` — a manifest's rows, labels blank or not, are scored as cross-validation scores its folds (patients
        resampled, no interval under 10 of them) and reported as rows (:mod:`ecgnet.training.once_report`)."""
        def complete(rows):
            y = self.collection.y[rows]
            return len(rows) > 0 and not np.isnan(y).any() and bool(((y.sum(0) > 0) & (y.sum(0) < len(y))).all())
        ok = "ptbxl" in self.collection.info and self.has_split("test") and \
            all(complete(self.assignment[s]) for s in ("val", "test"))
        return ("val", "test") if ok else ()

    def task_targets(self, task: str, ecg_ids):
        raise ECGNetError(NO_AUXILIARY_TASK)

    def split(self, name: str, max_records: int | None = None, seed: int = 0,
              in_memory: bool | None = None) -> Split:
        rows = self.assignment[name]
        keep = sample_rows(len(rows), max_records, seed)  # as PTBXL.split subsamples
        if keep is not None:
            rows = rows[keep]
        c = self.collection
        segments = None if c._segments is None else c._segments.take(rows)
        signal = SignalRows(c._array, c._rows[rows], segments)
        if self.in_memory if in_memory is None else in_memory:  # the segments, if any, stay memory-mapped
            signal = np.asarray(signal) if segments is None else SignalRows(np.asarray(signal), np.arange(len(rows)),
                                                                            segments)
        return Split(c.records[rows], signal, self.metadata_scaler.transform(c.metadata.iloc[rows]), c.y[rows])


def with_file_demographics(metadata: pd.DataFrame, stated: dict[int, tuple[float | None, str | None]]
                           ) -> tuple[pd.DataFrame, dict[str, int]]:
    """(``metadata`` with each record's empty age and sex taken from its file, how many records got each so:
    ``{"age": n, "sex": m}``). ``stated``: {row: (age, sex)} as the readers found them in the files. A value of
    ``metadata`` (the manifest's) always wins; a file's is encoded as ``predict`` encodes what it reads from a header
    (:meth:`ecgnet.inference.predictor.Predictor.metadata_vector`: :func:`~ecgnet.data.patient.check_patient`, sex
    by :data:`~ecgnet.data.ptbxl.SEX_CODES`, then :func:`~ecgnet.data.ptbxl.metadata_features`: an age over 89 is
    90), with its ``*_missing`` flag 0. Nothing filled: ``metadata`` itself."""
    age, sex = metadata["age"].to_numpy(float, copy=True), metadata["sex"].to_numpy(float, copy=True)
    filled = {"age": 0, "sex": 0}
    for row, (file_age, file_sex) in stated.items():
        fields = _file_fields(file_age, file_sex)
        if fields["age"] is not None and np.isnan(age[row]):
            age[row], filled["age"] = fields["age"], filled["age"] + 1
        if fields["sex"] is not None and np.isnan(sex[row]):
            sex[row], filled["sex"] = SEX_CODES[fields["sex"]], filled["sex"] + 1
    if not any(filled.values()):
        return metadata, filled
    encoded = metadata_features(age, sex, metadata["height"].to_numpy(float), metadata["weight"].to_numpy(float))
    out = metadata.copy()
    for column in ("age", "sex", "age_missing", "sex_missing"):
        out[column] = encoded[column].to_numpy()
    return out, filled


def _file_fields(age: float | None, sex: str | None) -> dict:
    """A file's age and sex checked as ``predict`` checks them before the model reads them (finite, a known sex;
    :func:`~ecgnet.data.patient.check_patient` without ranges); a value it would refuse is left unknown."""
    fields = {"age": None, "sex": None}
    for name, value in (("age", age), ("sex", sex)):
        try:
            fields[name] = check_patient(**{name: value}, plausible=False)[name]
        except PatientError:
            pass
    return fields


def _swapped_neighbours(a: str, b: str) -> bool:
    """``b`` is ``a`` with two neighbouring letters swapped (HPY, HYP)."""
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return len(differ) == 2 and differ[1] == differ[0] + 1 and sorted(a) == sorted(b)
