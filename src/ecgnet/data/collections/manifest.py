"""A manifest: a CSV that makes any folder of labelled ECGs a :class:`Collection`.

One row per record::

    record,patient,source,fold,age,sex,NORM,MI,STTC,CD,HYP
    site_a/0001.hea,p17,site_a,,63,female,0,1,,0,0

- ``record`` (required): the record's path relative to the CSV (any format the reader accepts; a
  WFDB record may be named with or without ``.hea``).
- Labels, one of two layouts:
  * one column per class: ``1`` positive, ``0`` negative, empty = unknown (masked in the loss, left out
    of that class's metrics); also ``1.0/0.0``, ``true/false``, ``t/f``, ``yes/no``, ``y/n`` in any case;
    a column that holds mostly other text is refused once, by name (a misnamed ``labels`` column);
  * one ``labels`` column of ``;``-separated classes (``MI;STTC``): the listed classes are positive,
    every other class negative. A class name holds no ``,`` or ``|``: ``NORM,MI`` or ``CD|MI`` (and
    ``NORM MI`` where ``NORM`` and ``MI`` are labels of their own) is a row problem — labels joined with
    the wrong separator — not a new class.
- Optional: ``patient`` (records of one patient are never split across folds; default: the record),
  ``source`` (site or database; default ``manifest``), ``fold`` (an integer: a predefined split),
  ``age`` (years; ``>89`` is 90), ``sex`` (male/female or M/F; U/unknown/unk is empty; a number is refused:
  sites code it either way), ``height`` (cm), ``weight`` (kg) — named in any case; ``NA`` (R, pandas) is
  empty anywhere; a pandas index column (``Unnamed: 0``) is ignored, as R's unnamed row-names column is.
  Any other column is a class: one named as a reserved column under another name (``MRN``, ``Gender``,
  ``file``) is refused with the rename to make.

Classes are the manifest's own, described by nothing but their names (a site's MI is not PTB-XL's: no PTB-XL
description) — unless the manifest is PTB-XL's own, as ``ecgnet manifest`` writes it from the PTB-XL folder
(:func:`~ecgnet.data.collections.ptbxl.ptbxl_manifest_descriptions`), or its classes are exactly PTB-XL's five
superclasses (the superclass task, as a run of them records it: a Challenge folder's manifest). A label map (YAML
``{site code: CLASS | [CLASS, ...] | null}`` or a CSV with columns ``code,class`` in any case, ','- or
';'-separated) maps site codes or free text to them: with
it, the classes are the map's targets, a code mapped to null/empty is ignored (say so explicitly: an unmapped
code is an error, unless
the map has the key ``"*"``, which maps every code it does not list — ``"*": null`` ignores them), and
per-class columns named by site codes are renamed (several onto one class: positive if any is). A code
may hold commas (free text); a class it maps to may not.

An *unlabelled* manifest (``labelled=False``: records for distillation's soft targets) needs only the
``record`` column; label columns, if any, are ignored and the collection has no classes.

Every problem is reported with its CSV line and column — a missing file, an unknown class, a duplicate
record, a row without any label, an unreadable value — all in one :class:`ECGNetError`; with
``skip_bad`` the bad rows are left out and listed in ``Collection.skipped`` instead. The error suggests
``--skip-bad`` only to callers that pass ``skip_bad`` (the commands that have the option), and the ``"*"``
wildcard when most problems are codes the label map does not list. The file is UTF-8 (a byte-order mark
is fine); other text is refused with what to do. How each mistake is put in words:
:mod:`ecgnet.data.collections.manifest_checks`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import ChainMap, Counter
from pathlib import Path

import numpy as np

from ecgnet.config import read_yaml
from ecgnet.data.collections.base import DEFAULT_SOURCE, Collection
from ecgnet.data.collections import manifest_checks as checks
from ecgnet.data.collections.cache import load_manifest_signals, record_exists
from ecgnet.data.collections.manifest_checks import ACCEPTED, MISSING, NO_LABEL, RESERVED, UNKNOWN_SEX, WILDCARD
from ecgnet.data.collections.ptbxl import ptbxl_manifest_descriptions
from ecgnet.data.patient import NUMBERED_SEX, RANGES, SEXES
from ecgnet.data.external import SUPERCLASSES
from ecgnet.data.ptbxl import AGE_CAP, SEX_CODES, SUPERCLASS_DESCRIPTIONS, metadata_features
from ecgnet.data.records import header_path
from ecgnet.errors import ECGNetError

NULLS = ("null", "Null", "NULL", "~", "")  # YAML's null, read as text (read_yaml(strings=True))
INDEX_COLUMN = re.compile(r"Unnamed: \d+")  # pandas' name for a written index (R writes an empty name)
PLAUSIBLE = {name: (low, high) for name, (low, high, _) in RANGES.items()}  # outside: a row error


def read_label_map(path: str | Path) -> dict[str, list[str]]:
    """A label map file → {code: [classes]} (an empty list: the code is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ECGNetError(f"{path}: no such label map")
    out: dict[str, list[str]] = {}
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        raw = _json_map(path) if path.suffix.lower() == ".json" else \
            read_yaml(path, "label map", strings=True)  # codes as written: 0101, NO, 1.10 are codes, not numbers
        if not isinstance(raw, dict) or not raw:
            raise ECGNetError(f"{path}: a label map is a mapping 'site code: CLASS' (or a list of classes, or null)")
        for code, target in raw.items():
            if target is None or target in NULLS:
                targets = []
            elif isinstance(target, str):
                targets = [target.strip()]
            elif isinstance(target, list) and all(isinstance(t, str) for t in target):
                targets = [t.strip() for t in target if t not in NULLS]  # [MI, null]: MI
            else:
                raise ECGNetError(f"{path}: '{code}': expected a class name, a list of them or null, got {target!r}")
            checks.check_targets(str(path), str(code).strip(), targets)
            out[str(code).strip()] = [t for t in targets if t]
        return out
    for line, code, target in _csv_map(path):
        if not code.strip():
            raise ECGNetError(f"{path} line {line}, column code: empty")
        out.setdefault(code.strip(), [])
        checks.check_targets(f"{path} line {line}, column class", code.strip(), [target.strip()])
        if target.strip():
            out[code.strip()].append(target.strip())
    return out


MAP_SEPARATORS = {",": "','", ";": "';'", "\t": "a tab"}  # a CSV label map's: Excel writes ';' in some locales


def _csv_map(path: Path) -> list[tuple[int, str, str]]:
    """A CSV label map's (line, code, class) rows, separated as its header ``code,class`` is — ',' or, as Excel
    saves CSV in some locales, ';' or a tab — the header in any case; a line of another field count is refused
    (pandas took a first extra field as an index: 'ST elevation, anterior,MI' mapped 'anterior')."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ECGNetError(checks.not_utf8(path, e)) from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise ECGNetError(f"{path}: empty label map (expected a header line code,class)")
    sep = next((s for s in MAP_SEPARATORS if [c.strip().strip('"').lower() for c in first.split(s)][:2] ==
                ["code", "class"]), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    rows, line = [], 0
    try:
        for row in reader:
            line, start = reader.line_num, line + 1  # a quoted cell may span lines: the row's first
            if any(cell.strip() for cell in row):
                rows.append((start, row))
    except csv.Error as e:
        raise ECGNetError(f"{path} line {reader.line_num}: not readable as CSV ({e})") from None
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    if header[:2] != ["code", "class"]:
        other = next((w for s, w in MAP_SEPARATORS.items() if s != "," and s in first and "," not in first), None)
        hint = f": it is separated with {other}; name its two columns code and class" if other else ""
        raise ECGNetError(f"{path} line 1: a CSV label map needs the columns code,class (got {first.strip()[:80]!r})"
                          + hint)
    out = []
    for line, row in rows[1:]:
        if not 2 <= len(row) <= len(header):
            example = f', "ST elevation{sep} anterior"' if sep != "\t" else ""
            raise ECGNetError(f"{path} line {line}: {checks.plural(len(row), 'field')}, the header has {len(header)}: "
                              f"one code and one class a line, separated with {MAP_SEPARATORS[sep]} (a code that holds "
                              f"{MAP_SEPARATORS[sep]}: put it in double quotes{example}; an empty class, as in "
                              f"'{WILDCARD}{sep}', ignores the code)")
        out.append((line, row[0], row[1]))
    _refuse_split_code(path, sep, rows[1:])
    return out


def _refuse_split_code(path: Path, sep: str, rows: list[tuple[int, list[str]]]) -> None:
    """In a map with more columns than code,class (a comment, a parent class), an unquoted separator inside a code
    shifts the row without changing its field count: 'ST elevation, anterior,MI' read as code 'ST elevation', class
    ' anterior', comment 'MI' — a new class nobody asked for. Its sign is the space a sentence puts after the
    separator: a class cell that starts with one where the map's other class cells do not is refused."""
    spaced = [(line, row) for line, row in rows if len(row) > 2 and row[1][:1].isspace() and row[1].strip()]
    if not spaced or 2 * len(spaced) >= len(rows):  # 'st, MI, note' throughout: the map's own style
        return
    line, row = spaced[0]
    raise ECGNetError(f"{path} line {line}: the class '{row[1].strip()}' follows '{sep} ' as words of a sentence do "
                      f"(code '{row[0].strip()}'): is the code '{row[0].strip()}{sep}{row[1]}' written without quotes? "
                      f"A code that holds {MAP_SEPARATORS[sep]}: put it in double quotes; a class: write it without "
                      "the space, as the map's other lines do")


def _json_map(path: Path):
    """A JSON label map: JSON keeps its types (a class given as true or 7 is refused, null is nothing)."""
    import json

    def unique(pairs):
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:  # json keeps the last without a word
            raise ECGNetError(f"{path}: {', '.join(repr(k) for k in twice)} given twice in one object; JSON would keep "
                              "the last silently: keep one")
        return dict(pairs)

    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=unique)
    except (ValueError, UnicodeDecodeError) as e:
        raise ECGNetError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        return raw
    out = {}
    for code, target in raw.items():
        if isinstance(target, list) and all(t is None or isinstance(t, str) for t in target):
            target = [t for t in target if t is not None]
        elif target is not None and not isinstance(target, str):
            raise ECGNetError(f"{path}: '{code}': expected a class name, a list of them or null, got {target!r}")
        out[code] = target
    return out


def read_manifest(path: str | Path, label_map: str | Path | dict | None = None,
                  skip_bad: bool | None = None, labelled: bool = True) -> Collection:
    """The manifest at ``path`` as a :class:`Collection` (see the module docstring; ``labelled=False``:
    the labels are not read, the collection has no classes). ``skip_bad``: True leaves bad rows out, False
    refuses them suggesting ``--skip-bad`` (a command that has the option); None (the default: a caller
    without the option, e.g. ``ecgnet manifest``) refuses them without that suggestion."""
    path = Path(path)
    if not path.is_file():
        raise ECGNetError(f"{path}: no such manifest")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as e:
        raise ECGNetError(checks.not_utf8(path, e)) from None
    except (OSError, csv.Error) as e:
        raise ECGNetError(f"{path}: cannot be read as CSV ({e})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ECGNetError(f"{path}: empty manifest (expected a header line with a 'record' column)")
    header = _header(rows[0])
    _check_unnamed(path, header, rows[1:])
    dup = sorted({h for h in header if h and header.count(h) > 1})
    if dup:
        raise ECGNetError(f"{path} line 1: column(s) {', '.join(dup)} appear more than once")
    if "record" not in header:
        sep = next((s for s in (";", "\t") if len(header) == 1 and
                    "record" in (n.strip().lower() for n in header[0].split(s))), None)  # 'Record;Patient' too
        hint = (f": the header is {'tab' if sep == chr(9) else repr(sep)}-separated (as some spreadsheet programs "
                "save CSV); save the manifest comma-separated (inside a 'labels' cell classes are ';'-separated)"
                if sep else checks.no_record_hint(header))
        raise ECGNetError(f"{path} line 1: no 'record' column (columns: {', '.join(header)}){hint}")
    mapping = read_label_map(label_map) if isinstance(label_map, (str, Path)) else label_map
    for code, targets in (mapping or {}).items():  # a map given as a dict: checked as a file's
        checks.check_targets("label map", code, targets)
    class_columns = [h for h in header if h not in RESERVED and h] if labelled else []
    if not labelled:
        mapping = None
    elif "labels" in header and class_columns:
        raise checks.layout_error(path, header, class_columns)
    checks.refuse_aliases(path, header, class_columns, mapping)  # 'MRN', 'Gender', 'file' as classes
    if labelled and "labels" not in header and not class_columns:
        raise ECGNetError(f"{path} line 1: no labels: add one column per class or a 'labels' column")
    checks.refuse_text_columns(path, header, class_columns, rows[1:])
    classes = _classes(path, header, class_columns, rows[1:], mapping) if labelled else []
    col = {h: i for i, h in enumerate(header)}
    base = path.parent
    problems: list[str] = []
    bad_rows: list[tuple[str, str]] = []
    kept: list[dict] = []
    seen: dict[Path, int] = {}  # record → the line of its first good row
    seen_bad: dict[Path, int] = {}  # record → the line of its first row with a problem
    unmapped: Counter = Counter()  # codes the label map does not list → rows
    listings: dict[Path, dict[str, str]] = {}  # folder → its files (by name in lower case), for a missing record
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        errors: list[str] = []
        if len(row) != len(header):
            comma = " (a ',' in the labels cell? separate labels with ';')" if "labels" in header and \
                len(row) > len(header) and labelled else ""
            errors.append(f"{len(row)} fields, the header has {len(header)}{comma}")
            row = (row + [""] * len(header))[:len(header)]
        cell = {h: row[i].strip() for h, i in col.items()}
        entry = _parse_row(cell, classes, class_columns, mapping, base, errors, seen, labelled, unmapped, listings)
        name = cell["record"] or "?"
        if "path" in entry and errors:
            if entry["path"] in seen_bad and entry["path"] not in seen:  # both bad: named now, not after their fix
                errors.append(f"column record: duplicate record (also on line {seen_bad[entry['path']]})")
            seen_bad.setdefault(entry["path"], line)
        elif "path" in entry and entry["path"] in seen_bad and not skip_bad:  # every problem at once; with
            errors.append(f"column record: duplicate record (also on line {seen_bad[entry['path']]}, which has other "
                          "problems)")  # --skip-bad the good row stays
        if errors:
            problems += [f"{path} line {line} (record '{name}'), {e}" for e in errors]
            bad_rows.append((f"line {line} ({name})", "; ".join(errors)))
            continue
        seen[entry["path"]] = line
        entry["line"] = line
        kept.append(entry)
    if problems and not skip_bad:
        raise checks.problems_error(path, problems, unmapped, offer_skip_bad=skip_bad is not None)
    if not kept:
        raise ECGNetError(f"{path}: no usable records" + (f" ({len(bad_rows)} bad rows skipped)" if bad_rows else ""))
    described = {} if mapping is not None else ptbxl_manifest_descriptions(  # a label map's classes are the site's
        classes, [e["source"] for e in kept], [base / e["record"] for e in kept])  # as written (not resolved)
    if sorted(classes) == sorted(SUPERCLASSES):  # PTB-XL's superclass task, as run.json's task says it (a Challenge
        described = {c: SUPERCLASS_DESCRIPTIONS[c] for c in classes}  # folder's manifest; one mapped onto all five)
    return _collection(path, classes, kept, tuple(bad_rows), header, _label_map_info(label_map if labelled else None),
                       described)


def _header(names: list[str]) -> list[str]:
    """The header's column names: stripped; the optional columns in any case ('Sex', ' AGE ' — unless the
    lower-case name is there too); pandas' name for a column without one ('Unnamed: 0') as R's, empty
    (:func:`_check_unnamed` decides what it is)."""
    header = ["" if INDEX_COLUMN.fullmatch(h.strip()) else h.strip() for h in names]
    return [h.lower() if h.lower() in RESERVED and h.lower() not in header else h for h in header]


def _check_unnamed(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A column without a name is ignored when it is an index (R's row names, pandas' 'Unnamed: 0': values that
    never repeat) or empty (a spreadsheet's trailing ',,'); one whose values repeat lost its name — a class or
    labels column ignored in silence would be data lost — and is refused."""
    for i, name in enumerate(header):
        values = [row[i].strip() for row in rows if len(row) > i and row[i].strip()] if not name else []
        if len(set(values)) < len(values):
            raise ECGNetError(f"{path} line 1, column {i + 1}: no name, but values that repeat (e.g. "
                              f"'{values[0][:20]}'): name it (a class, or labels); an unnamed column is ignored only "
                              "as an index (values that never repeat)")


def _classes(path: Path, header, class_columns, rows, mapping) -> list[str]:
    if mapping is not None:
        targets = sorted({t for ts in mapping.values() for t in ts})
        if not targets:
            raise ECGNetError(f"{path}: the label map maps every code to nothing")
        if class_columns:  # every class column must be a class or a mapped site code
            unknown = [c for c in class_columns if c not in mapping and c not in targets]
            if unknown and WILDCARD not in mapping:
                raise ECGNetError(f"{path} line 1: column(s) {', '.join(unknown)}: unknown class (not in the label "
                                  f"map; classes: {', '.join(targets)})")
            if not any(c in targets or _mapped(mapping, c, set(targets)) for c in class_columns):  # no row labelled
                raise ECGNetError(f"{path} line 1: the label map maps none of the class columns "
                                  f"({', '.join(class_columns)}) to one of its classes ({', '.join(targets)}); a map "
                                  "of codes reads a `labels` column (one ';'-separated list of codes a row), or "
                                  "drop --label-map to use the columns as classes")
        return targets
    if class_columns:
        found = list(class_columns)
        for c in found:
            if n := checks.joined_labels(c):
                raise ECGNetError(f"{path} line 1, column {c}: {checks.several(c, n, 'classes')}: one column per class")
    else:
        i = header.index("labels")
        found = sorted({t.strip() for row in rows if len(row) > i for t in row[i].split(";") if t.strip()})
        labels = set(found)
        found = [t for t in found if not checks.joined_labels(t, labels)  # each one a row problem, not a class
                 and t.lower() not in NO_LABEL]  # nor is R's NA
    folded = {}
    for c in found:
        folded.setdefault(c.casefold(), []).append(c)
    twins = [" and ".join(f"'{c}'" for c in names) for names in folded.values() if len(names) > 1]
    if twins:
        raise ECGNetError(f"{path}: classes {'; '.join(twins)} differ only in case: write each class one way "
                          "(or map them with --label-map)")
    return found


def _no_label(token: str, mapping: dict | None, classes) -> bool:
    """Whether a lone ``labels`` token is how a tool writes nothing (R's NA, '-', 'none') rather than a class
    or a code the label map lists."""
    return token.lower() in NO_LABEL and token not in classes and token not in (mapping or {})


def map_code(mapping: dict[str, list[str]], code: str) -> list[str] | None:
    """The classes a label map gives one code, as a manifest's labels cell is read (itself where it is one of the
    map's classes, else the wildcard's); None when the map says nothing of it."""
    return _mapped(mapping, code, {t for targets in mapping.values() for t in targets})


def _mapped(mapping: dict | None, code: str, classes: dict) -> list[str] | None:
    """The classes ``code`` stands for: itself without a map, else the map's entry, else itself where it is one of
    the map's classes ('STTC' written as such beside mapped statements), else the wildcard's; None when the map
    says nothing of it."""
    if mapping is None:
        return [code]
    if code in mapping:
        return mapping[code]
    if code in classes:
        return [code]
    if WILDCARD in mapping and code not in classes:
        return mapping[WILDCARD]
    return None


def _missing_record(record: str, full: Path, base: Path, listings: dict | None = None) -> str:
    """The problem with a ``record`` not found (``full``: its path): a Windows path, a '~', a folder that does not
    exist, a file there that differs only in case (``listings``: folder → its files' names, read once a folder)."""
    if "\\" in record:
        return f"column record: no such file in {full.parent} (a Windows path? separate folders with '/')"
    if record.startswith("~"):
        return (f"column record: no such file in {full.parent} ('~' is not expanded: give the path relative to the "
                "manifest)")
    if not full.parent.is_dir():
        missing = next(f for f in (*reversed(full.parent.parents), full.parent) if not f.is_dir())
        relative = "" if Path(record).is_absolute() else "; record paths are relative to the manifest's folder"
        return f"column record: folder {missing} does not exist{relative}"
    if full.is_dir():  # 'ecgs/': it was named as its own case twin
        return _folder_record(record, full)
    listings = {} if listings is None else listings
    if full.parent not in listings:
        try:
            listings[full.parent] = {}
            for name in sorted(os.listdir(full.parent)):
                listings[full.parent].setdefault(name.casefold(), name)
        except OSError:
            pass
    wanted = (full.name.casefold(), header_path(full).name.casefold())
    twin = next((listings[full.parent][w] for w in wanted if w in listings[full.parent]), None)
    twin = None if twin in (full.name, header_path(full).name) else twin  # itself (a broken link): no twin
    hint = f" (a file differs only in case: {twin})" if twin else ""
    return f"column record: no such file in {full.parent}{hint}"  # the row names the record


def _folder_record(record: str, full: Path) -> str:
    """The problem with a ``record`` that is a folder: a record is one file; the ECG files it holds (by their
    names: WFDB headers, single-file ECGs) are counted, the first named as a row would name it."""
    from ecgnet.data.record_files import ECG_SUFFIXES

    held = sorted(p for p in full.rglob("*") if p.suffix.lower() in (".hea", *ECG_SUFFIXES) and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(full).parts))
    if not held:
        return f"column record: {full} is a folder, not an ECG file (it holds no ECG file)"
    example = f"{record.rstrip('/')}/{held[0].relative_to(full).as_posix()}"
    return (f"column record: {full} is a folder, not an ECG file; it holds {len(held)} ECG file(s): each record is "
            f"one row naming a file (e.g. '{example}')")


def _parse_row(cell: dict, classes, class_columns, mapping, base: Path, errors: list, seen: dict,
               labelled: bool = True, unmapped: Counter | None = None, listings: dict | None = None) -> dict:
    """One row's record, labels and metadata; each problem appended to ``errors``, each code the label map
    does not list counted in ``unmapped``; ``listings`` (folder → its files) is filled as rows need it."""
    entry: dict = {}
    record = cell["record"]
    if not record:
        errors.append("column record: empty")
    else:
        p = Path(record)
        full = p if p.is_absolute() else base / p
        if not record_exists(full):
            errors.append(_missing_record(record, full, base, listings))
        key = record_key(full)
        if key in seen:
            errors.append(f"column record: duplicate record (also on line {seen[key]})")
        entry.update(record=record, path=key)
    y = np.full(len(classes), np.nan, dtype=np.float32)
    index = {c: k for k, c in enumerate(classes)}
    if not labelled:
        pass
    elif class_columns:
        for column in class_columns:
            text = cell[column]
            value = checks.label_value(text)
            if value is None:
                errors.append(f"column {column}: '{text}' is not {ACCEPTED}")
                y[:] = 0.0  # a label was given: no 'every class empty' on top
                continue
            if np.isnan(value):
                continue
            for c in _mapped(mapping, column, index) or [column]:  # a class column unmapped: itself
                if c in index:
                    y[index[c]] = max(value, 0.0 if np.isnan(y[index[c]]) else y[index[c]])
        if np.isnan(y).all():
            errors.append(f"columns {','.join(class_columns)}: no label (every class empty)")
    else:
        y[:] = _label_list(cell["labels"], mapping, index, errors, Counter() if unmapped is None else unmapped)
    entry["y"] = y
    entry["patient"] = cell.get("patient") or record
    entry["source"] = cell.get("source") or DEFAULT_SOURCE
    fold = cell.get("fold", "")
    fold = "" if fold.lower() in MISSING else fold
    entry["fold"] = None
    if fold:
        try:
            f = float(fold)
            if not f.is_integer():
                raise ValueError
            entry["fold"] = int(f)
        except ValueError:
            errors.append(f"column fold: '{fold}' is not an integer")
    for name in ("age", "height", "weight"):
        entry[name] = _number(cell.get(name, ""), name, errors)
    sex = cell.get("sex", "")
    entry["sex"] = np.nan
    if sex and sex.lower() not in MISSING | UNKNOWN_SEX:  # 'U', 'unknown': empty
        if checks.is_number(sex):
            errors.append(f"column sex: '{sex}' {NUMBERED_SEX}")
        elif sex.lower() not in SEXES:
            errors.append(f"column sex: '{sex}' is not male/female (or M/F); leave it empty (or write U) where the "
                          "sex is unknown")
        else:
            entry["sex"] = SEX_CODES[SEXES[sex.lower()]]
    return entry


def _label_list(text: str, mapping: dict | None, index: dict, errors: list, unmapped: Counter) -> np.ndarray:
    """A ``labels`` cell (``;``-separated) as 0/1 over the classes of ``index``; a label that looks like
    several joined with a wrong separator, or a code the map does not list, is a problem."""
    y = np.zeros(len(index), dtype=np.float32)
    written = [t.strip() for t in text.split(";") if t.strip()]
    tokens = [t for t in written if not _no_label(t, mapping, index)]  # 'MI;NA': MI
    if not tokens:
        errors.append("column labels: " + (f"'{text}' (a missing value, not a label)" if written else "empty")
                      + ": a row without any label")
        return y
    for t in tokens:
        if mapping is None and t not in index:  # left out of the classes as labels joined wrongly
            errors.append(f"column labels: {checks.several(t, checks.joined_labels(t, index) or len(t.split()))}: "
                          "separate labels with ';'")
            continue
        if mapping is not None and t not in mapping and (n := checks.joined_labels(t, ChainMap(mapping, index), False)):
            errors.append(f"column labels: {checks.several(t, n)}: separate labels with ';' (or list '{t}' in the label "
                          "map)")
            continue
        near = None  # a map's code written another way is refused even where '*' would take it (as 'null' it made
        if mapping is not None and t not in mapping and t not in index:  # a hospital's rows all-negative)
            near = checks.map_near_miss(t, mapping)
        targets = None if near else _mapped(mapping, t, index)
        if targets is None:
            errors.append(f"column labels: unknown code '{t}' (not in the label map" + (f"; {near})" if near else ")"))
            if near is None:
                unmapped[t] += 1
            continue
        for c in targets:
            y[index[c]] = 1
    return y


def _number(text: str, name: str, errors: list) -> float:
    if not text or text.lower() in MISSING:
        return np.nan
    if name == "age" and text.replace(" ", "") == ">89":  # an age withheld for privacy (LUDB, MIMIC): 90
        return float(AGE_CAP)
    try:
        value = float(text)
    except ValueError:
        errors.append(f"column {name}: '{text}' is not a number")
        return np.nan
    low, high = PLAUSIBLE[name]
    if not math.isfinite(value) or not low <= value <= high:
        if name == "age" and value == 300:  # PTB-XL's code for ages above 89
            return float(AGE_CAP)
        errors.append(f"column {name}: {text} is outside {low}–{high}")
        return np.nan
    return value


def _collection(path: Path, classes: list[str], kept: list[dict], skipped: tuple, header: list[str],
                more_info: dict, descriptions: dict[str, str]) -> Collection:
    folds = [e["fold"] for e in kept]
    if "fold" in header and any(f is None for f in folds):
        if all(f is None for f in folds):
            folds = None
        else:
            missing = sum(f is None for f in folds)
            raise ECGNetError(f"{path}: column fold is empty on {missing} of {len(folds)} rows: give every "
                              "row a fold, or none")
    elif "fold" not in header:
        folds = None
    paths = [e["path"] for e in kept]
    labels = [f"{path.name} line {e['line']} (record '{e['record']}')" for e in kept]

    def loader(collection, sampling_rate, cache_dir, workers, progress, skip_bad, limits):
        """The records' signal cache (:func:`load_manifest_signals`), with the age and sex each file states: what
        :meth:`Collection.load_signals` fills the manifest's empty cells with, as predict and evaluate do."""
        by_name = {str(e["record"]): i for i, e in enumerate(kept)}
        idx = [by_name[str(r)] for r in collection.records]
        return load_manifest_signals([paths[i] for i in idx], [labels[i] for i in idx], sampling_rate, cache_dir,
                                     workers, progress, skip_bad, limits)

    return Collection(
        name=path.stem, records=np.array([e["record"] for e in kept], dtype=object), classes=classes,
        y=np.stack([e["y"] for e in kept]).astype(np.float32).reshape(len(kept), len(classes)),
        patients=np.array([e["patient"] for e in kept], dtype=object),
        sources=np.array([e["source"] for e in kept], dtype=object),
        metadata=metadata_features(*(np.array([e[f] for e in kept], float) for f in ("age", "sex", "height", "weight"))),
        folds=None if folds is None else np.array(folds, dtype=int), skipped=skipped, loader=loader,
        descriptions=descriptions,
        info={"manifest": str(path.resolve()), "n_rows_skipped": len(skipped),
              "records_relative_to": str(path.parent.absolute()),  # as the rows were read (a symlinked manifest)
              **more_info})


def _label_map_info(label_map) -> dict:
    """Which label map read the labels (a run records it: its classes mean what the map made of the site's codes)."""
    if label_map is None:
        return {}
    if isinstance(label_map, dict):
        return {"label_map": {"path": None, "codes": len(label_map)}}
    from ecgnet.checksum import sha256_file

    return {"label_map": {"path": str(Path(label_map).resolve()), "sha256": sha256_file(label_map)}}


def record_key(full: Path) -> Path:
    """A record's identity: its resolved file, a WFDB record's header (r1, r1.hea and r1.dat are one record)."""
    wfdb = full.suffix.lower() in (".hea", ".dat", ".mat") or not full.is_file()
    return (header_path(full) if wfdb else full).resolve()


def record_keys(collection: Collection, rows=None) -> list[str]:
    """:func:`record_key` of the records of a manifest's collection (at ``rows``; every record by default), as
    text; [] for a collection not read from a manifest (PTB-XL)."""
    manifest = collection.info.get("manifest")
    if not manifest:
        return []
    records = collection.records if rows is None else collection.records[rows]
    base = Path(collection.info.get("records_relative_to") or Path(manifest).parent)
    return [str(record_key(Path(r) if Path(r).is_absolute() else base / r)) for r in records]
