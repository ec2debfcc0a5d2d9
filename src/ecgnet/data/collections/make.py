"""Writing manifests (``ecgnet manifest``) from the two layouts the project already reads:

- a Challenge-style folder (WFDB headers with ``#Dx:`` SNOMED CT codes, searched recursively): labels
  over the PTB-XL superclasses from the package's mapping (:mod:`ecgnet.data.external`), ``source`` =
  the record's folder, ``age``/``sex`` from the header; records with no superclass are left out and
  returned (as the PTB-XL benchmark leaves out records without a label of its task). With
  ``labels="snomed"``, a ``labels`` column of each record's SNOMED CT codes instead, for a label map to
  turn into the user's own classes (records without a code are left out);
- PTB-XL: any task's labels, ``strat_fold`` as ``fold``, ``patient_id``, age/sex/height/weight (a value
  outside the manifest's plausible range — PTB-XL holds three heights of 6 cm — is written empty, i.e.
  unknown, and returned, so the manifest passes its own validation).

Record paths are written relative to the manifest's folder, so the pair can be moved together.
:func:`make_manifest` is ``ecgnet manifest``: either kind of source, the written file checked by
:func:`~ecgnet.data.collections.manifest.read_manifest`; an edited manifest is never overwritten without ``force``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ecgnet.data import ptbxl
from ecgnet.data.record_files import find_records
from ecgnet.data.collections.base import Collection
from ecgnet.data.dataset import sample_rows
from ecgnet.data.collections.manifest import PLAUSIBLE, read_label_map, read_manifest
from ecgnet.data.collections.manifest_checks import plural
from ecgnet.data.collections.ptbxl import PTBXL_SOURCE  # what reads the manifest back as PTB-XL's (descriptions)
from ecgnet.data.external import SUPERCLASSES, external_labels, load_mapping
from ecgnet.data.records import header_demographics
from ecgnet.errors import ECGNetError
from ecgnet.fileio import TMP_SUFFIX, atomic_path, check_writable


def _relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(out).resolve().parent)).as_posix()


def _write(table: pd.DataFrame, out: Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%g")


LABELS = ("superclasses", "snomed")


def challenge_manifest(folder: str | Path, out: str | Path, labels: str = "superclasses") -> dict:
    """Manifest of every record below ``folder`` (``labels``: one of :data:`LABELS`); returns counts, the
    records left out with why, and for ``snomed`` the codes' counts."""
    if labels not in LABELS:
        raise ECGNetError(f"--labels must be one of {', '.join(LABELS)}, not '{labels}'")
    folder, out = Path(folder), Path(out)
    if not folder.exists():
        raise ECGNetError(f"{folder}: no such folder")
    if folder.is_file():
        raise ECGNetError(f"{folder}: a file; `ecgnet manifest` writes a manifest from a folder of Challenge-style "
                          "WFDB records (#Dx codes) or from a PTB-XL folder")
    found_files = find_records([folder])
    headers = [h for h in found_files if h.suffix.lower() == ".hea"]  # the #Dx lines are in WFDB headers
    left_out = [{"record": _relative(f, out), "codes": "", "why": "not a WFDB record with its header"}
                for f in found_files if f.suffix.lower() != ".hea"]
    if not headers:
        raise ECGNetError(f"{folder}: no WFDB records (.hea) found" + _other_formats(folder, found_files))
    found = external_labels(headers, SUPERCLASSES)
    snomed = labels == "snomed"
    rows = []
    for i, header in enumerate(headers):
        if not (found.codes[i] if snomed else found.y[i].any()):
            left_out.append({"record": _relative(header, out), "codes": ";".join(found.codes[i]),
                             "why": "no #Dx code" if snomed else "no superclass among its #Dx codes"})
            continue
        comments = [ln.lstrip("#").strip() for ln in header.read_text(errors="replace").splitlines()
                    if ln.startswith("#")]
        age, sex = header_demographics(comments)
        label_cells = {"labels": ";".join(found.codes[i])} if snomed else \
            {c: int(v) for c, v in zip(SUPERCLASSES, found.y[i])}
        rows.append({"record": _relative(header, out), "source": found.source[i], "age": age, "sex": sex or "",
                     **label_cells})
    if not rows:
        coded = sum(bool(c) for c in found.codes)
        why = ("a #Dx code" if snomed else "a superclass label") + (
            " (none has a '#Dx:' line: `ecgnet manifest` labels Challenge-style folders and PTB-XL; for other "
            "records write the manifest yourself — one row per record with its classes, `ecgnet docs own_data`)"
            if not coded else f" ({coded} have #Dx codes, none mapped to a superclass: try --labels snomed and a "
            "label map)" if not snomed else "")
        raise ECGNetError(f"{folder}: none of {len(headers)} records has {why}")
    _write(pd.DataFrame(rows), out)
    result = {"manifest": str(out), "records": len(rows), "left_out": left_out,
              "classes": [] if snomed else list(SUPERCLASSES)}
    if snomed:
        result["codes"] = code_counts([r["labels"].split(";") for r in rows])
    return result


def _other_formats(folder: Path, found: list[Path]) -> str:
    """What a folder without WFDB headers holds instead (``found``: its ECG files), and that their manifest is
    written by hand."""
    files = [f for f in found if f.is_file()]
    if not files:
        return " (nor an ECG file of another format ECGNet reads)"
    kinds = pd.Series([f.suffix.lower() or "no suffix" for f in files]).value_counts()
    said = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return (f", but {plural(len(files), 'ECG file')} of other formats ({said}): `ecgnet manifest` labels "
            "Challenge-style WFDB folders (#Dx lines in the .hea headers) and PTB-XL; for other formats the labels are "
            "yours to give — write the manifest by hand, a CSV with a row per ECG (record,labels — e.g. "
            "ecg_001.xml,MI;STTC — and optionally patient, age, sex …; see `ecgnet docs own_data`)")


def code_counts(codes: list[list[str]]) -> list[dict]:
    """Each SNOMED CT code's record count, most frequent first, with its name and abbreviation where the
    package's table (``snomed_ptbxl.csv``) has them."""
    names = load_mapping().set_index("snomed")
    counts = pd.Series([c for cs in codes for c in cs]).value_counts(sort=False)
    out = [{"code": code, "records": int(n), "name": names.at[code, "name"] if code in names.index else "",
            "abbreviation": names.at[code, "abbreviation"] if code in names.index else ""}
           for code, n in counts.items()]
    return sorted(out, key=lambda e: (-e["records"], e["code"]))


def ptbxl_manifest(root: str | Path | None, out: str | Path, task: str = "superdiagnostic",
                   sampling_rate: int = 100, max_records: int | None = None, seed: int = 0) -> dict:
    """Manifest of PTB-XL for ``task`` (records without a label of the task left out). ``max_records``:
    a random subset, stratified by nothing (tests and examples)."""
    root, out = ptbxl.data_root(root), Path(out)
    db, statements = ptbxl.read_database(root), ptbxl.read_statements(root)
    labels = ptbxl.make_labels(db, statements, task)
    ids = labels.ecg_ids
    keep = sample_rows(len(ids), max_records, seed)
    keep = slice(None) if keep is None else keep
    ids, y = ids[keep], labels.y[keep]
    meta = ptbxl.metadata_table(db).loc[ids]
    column = "filename_lr" if sampling_rate == 100 else "filename_hr"
    folder = root / str(db[column].iloc[0]).split("/")[0]  # records100/ or records500/
    if not folder.is_dir():  # one line, not a missing file per record
        raise ECGNetError(f"{folder}: missing — the {sampling_rate} Hz records are not in {root}"
                          + (" (`ecgnet data download DIR --with-500hz` gets them)" if sampling_rate == 500 else ""))
    table = pd.DataFrame({
        "record": [_relative(root / f, out) for f in db.loc[ids, column]],
        "patient": db.loc[ids, "patient_id"].astype(int).astype(str).to_numpy(),
        "source": PTBXL_SOURCE, "fold": db.loc[ids, "strat_fold"].astype(int).to_numpy(),
        "age": meta["age"].to_numpy(), "sex": meta["sex"].map({0.0: "male", 1.0: "female"}).fillna("").to_numpy(),
        "height": meta["height"].to_numpy(), "weight": meta["weight"].to_numpy()})
    blanked = []
    for name, (low, high) in PLAUSIBLE.items():
        bad = table[name].notna() & ~table[name].between(low, high)
        blanked += [{"record": r, "column": name, "value": float(v)} for r, v in table.loc[bad, ["record", name]].values]
        table.loc[bad, name] = float("nan")
    for k, c in enumerate(labels.classes):
        table[c] = y[:, k].astype(int)
    _write(table, out)
    return {"manifest": str(out), "records": len(table), "left_out": [], "blanked": blanked,
            "classes": labels.classes, "task": task}


def make_manifest(source: str | Path, out: str | Path, task: str | None = None, sampling_rate: int | None = None,
                  labels: str | None = None, label_map: str | Path | None = None,
                  force: bool = False) -> tuple[dict, Collection]:
    """(what was written, the manifest read back) from a PTB-XL folder (``task``, ``sampling_rate``) or a
    Challenge-style one (``labels``); an option of the other kind of source is refused, not ignored.

    A file already at ``out`` that differs from what is written now (a manifest the user edited, as the command's
    help invites) is kept as it was and the command refused, unless ``force``; the same manifest written again is
    fine. The manifest is written beside ``out`` and checked before it takes its place (nothing half-written);
    one that does not fit ``label_map`` is kept — the map is what to fix, and its errors name the manifest's lines."""
    source, out = Path(source), Path(out)
    if label_map is not None:
        read_label_map(label_map)  # a map missing or malformed: said before anything is written
    if (source / "ptbxl_database.csv").is_file():
        if labels is not None:
            raise ECGNetError("--labels applies to a Challenge folder; PTB-XL's labels are those of --task")
        write = lambda path: ptbxl_manifest(source, path, task or "superdiagnostic", sampling_rate or 100)  # noqa: E731
    else:
        given = [o for o, v in (("--task", task), ("--sampling-rate", sampling_rate)) if v is not None]
        if given:
            raise ECGNetError(f"{' and '.join(given)} apply to a PTB-XL folder; {source} is read as a Challenge "
                              "folder (its records at their own rate; training resamples them)")
        write = lambda path: challenge_manifest(source, path, labels or "superclasses")  # noqa: E731
    check_writable(out)  # named as given (not the temporary file beside it)
    new = out.with_name(f".{out.name}.{os.getpid()}{TMP_SUFFIX}")  # beside it: record paths are relative to its folder
    try:
        result = {**write(new), "manifest": str(out)}
        if out.is_file() and not force and out.read_bytes() != new.read_bytes():
            raise ECGNetError(f"{out}: exists and differs from the manifest written now (edited?); it is kept as it "
                              "was — pass --force to replace it, or name another --out")
        read_manifest(new)  # its own check, before it takes the place of anything
        os.replace(new, out)
    finally:
        new.unlink(missing_ok=True)
    if label_map is None:
        return result, read_manifest(out)
    try:
        return result, read_manifest(out, label_map)
    except ECGNetError as e:
        raise ECGNetError(f"wrote {out} ({plural(result['records'], 'record')}); it does not fit the label map "
                          f"{label_map}, which is what to fix:\n{e}") from None
