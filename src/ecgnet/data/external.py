"""PTB-XL superdiagnostic labels for PhysioNet/CinC Challenge 2020/2021 records (SNOMED CT ``#Dx:`` codes).

``snomed_ptbxl.csv`` (package data) has one row per SNOMED CT code of the Challenge's scored and unscored
tables: ``snomed``, ``name``, ``abbreviation``, ``scp`` (the PTB-XL SCP-ECG statement), ``superclass`` and a
one-sentence ``reason``. It was written from clinical meaning only, never from any model's outputs:

- ``scp`` is set when the finding is that statement or, by definition, a kind of it (Mobitz I → 2AVB,
  atrial tachycardia → SVTAC); never when the code is broader (bradycardia of any origin is not SBRAD).
- ``superclass`` is that statement's ``diagnostic_class``; empty for rhythm and form statements (SR, AFIB,
  PVC, TAB_, STD_, ...), as in PTB-XL. A code broader than every statement whose candidates all share
  one class keeps ``scp`` empty and sets only ``superclass`` (reason "superclass only": infarction of
  unstated site → MI, AV block of unstated degree → CD, ventricular hypertrophy → HYP).
- Codes the Challenge scores as one class (CRBBB|RBBB, CLBBB|LBBB, PAC|SVPB, PVC|VPB) map alike.
- Left unmapped: findings PTB-XL has no statement for (VT, axis deviation, early repolarization, ...) and
  clinical diagnoses that are not ECG statements (heart failure, coronary heart disease, TIA).

NORM. PTB-XL's NORM ("normal ECG") is a diagnostic statement; sinus rhythm (426783006) is the rhythm
statement SR and by itself only says the rhythm is sinus. Yet in the Challenge it is the label normal
ECGs get (CPSC 2018's "Normal" class became 426783006; so did PTB-XL's NORM). Rule used here: a record
is NORM-positive when every one of its codes is a sinus rhythm (sinus rhythm, sinus bradycardia, sinus
tachycardia, sinus arrhythmia — PTB-XL gives NORM with each of these rhythms). Any other code, mapped or
not (a PVC, T-wave inversion, axis deviation), makes NORM 0: a reader who listed another finding did not
call the ECG normal. MI, STTC, CD and HYP are positive when any code maps to them.

A record with no positive class (sinus rhythm + T-wave inversion; atrial fibrillation alone) has no
superdiagnostic label; ``ExternalLabels.labeled`` marks the others — leave such records out, as the
PTB-XL benchmark does, rather than count them negative for every class.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ecgnet.errors import ECGNetError

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
SINUS_RHYTHMS = frozenset({"426783006", "426177001", "427084000", "427393009"})  # SR, SB, STach, SA


def load_mapping() -> pd.DataFrame:
    """``snomed_ptbxl.csv`` with every column as text ('' where empty)."""
    with resources.files("ecgnet.data").joinpath("snomed_ptbxl.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@functools.cache
def _table() -> dict[str, tuple[str, str]]:
    return {r.snomed: (r.scp, r.superclass) for r in load_mapping().itertuples()}


def parse_dx(header: str | Iterable[str]) -> list[str]:
    """SNOMED CT codes of the ``Dx:`` comment(s), in order, each once. ``header`` is a header's text (only
    lines starting with '#' are read) or its comment lines, with or without '#' (as ``wfdb`` gives them)."""
    lines = [ln for ln in header.splitlines() if ln.lstrip().startswith("#")] if isinstance(header, str) \
        else list(header)
    codes: list[str] = []
    for line in lines:
        key, sep, value = line.strip().lstrip("#").partition(":")
        if not sep or key.strip().lower() != "dx":
            continue
        for token in (t.strip() for t in value.split(",")):
            if token and not (token.isascii() and token.isdigit()):  # '²' and '٣' are digits to Python
                raise ECGNetError(f"Dx line '{line.strip()}': '{token}' is not a SNOMED CT code")
            if token and token not in codes:
                codes.append(token)
    return codes


def unmapped_codes(codes: Iterable[str]) -> list[str]:
    """The codes with no PTB-XL statement and no superclass (or absent from the mapping)."""
    table = _table()
    return [c for c in dict.fromkeys(codes) if not any(table.get(c, ("", "")))]


def record_superclasses(codes: Iterable[str]) -> set[str]:
    """The superclasses of one record's codes, with the NORM rule of the module docstring."""
    codes = set(codes)
    table = _table()
    out = {table[c][1] for c in codes if c in table and table[c][1]}
    if codes and codes <= SINUS_RHYTHMS:
        out.add("NORM")
    return out


def superclass_labels(codes: Iterable[str], classes: Sequence[str] = SUPERCLASSES) -> np.ndarray:
    """0/1 (float32) per class, in the order of ``classes`` (pass a model's own class order)."""
    unknown = set(classes) - set(SUPERCLASSES)
    if unknown:
        raise ECGNetError(f"unknown superclass(es) {sorted(unknown)}: choose from {', '.join(SUPERCLASSES)}")
    positive = record_superclasses(codes)
    return np.array([c in positive for c in classes], dtype=np.float32)


@dataclass(frozen=True)
class ExternalLabels:
    """Superdiagnostic labels of Challenge records, one row per header."""

    headers: list[Path]
    source: list[str]  # source database of each record
    classes: list[str]
    y: np.ndarray  # (n, n_classes) float32, 0/1
    codes: list[list[str]]  # the Dx codes of each record
    unmapped: list[list[str]]  # the codes of each record that say nothing in PTB-XL terms

    @property
    def labeled(self) -> np.ndarray:
        """Records with at least one positive class (the others cannot be scored)."""
        return self.y.any(axis=1)

    def positives(self) -> pd.DataFrame:
        """Per source database: records, labeled records and positives per class (plus a total row)."""
        table = pd.DataFrame(self.y.astype(int), columns=self.classes)
        table.insert(0, "labeled", self.labeled.astype(int))
        table.insert(0, "records", 1)
        out = table.groupby(pd.Series(self.source, name="source")).sum()
        out.loc["total"] = out.sum()
        return out


def external_labels(headers: Sequence[str | Path], classes: Sequence[str] = SUPERCLASSES,
                    sources: Sequence[str] | None = None) -> ExternalLabels:
    """Labels for the given ``.hea`` files; the source of each is its folder's name unless given."""
    headers = [Path(h) for h in headers]
    if sources is not None and len(sources) != len(headers):
        raise ECGNetError(f"{len(sources)} sources given for {len(headers)} headers")
    codes = []
    for h in headers:
        try:
            codes.append(parse_dx(h.read_text(encoding="utf-8", errors="replace")))
        except OSError as e:
            raise ECGNetError(f"{h}: cannot be read ({e.strerror or e})") from e
        except ECGNetError as e:
            raise ECGNetError(f"{h}: {e}") from e
    y = np.stack([superclass_labels(c, classes) for c in codes]) if codes \
        else np.zeros((0, len(classes)), np.float32)
    return ExternalLabels(headers, list(sources) if sources is not None else [h.parent.name for h in headers],
                          list(classes), y, codes, [unmapped_codes(c) for c in codes])
