"""The mistakes a manifest (or its label map) can hold, each put in words: a file that is not UTF-8, labels
joined with ',' or '|' where ';' was meant, a column of label lists not named ``labels``, and the one error
that lists every row's problems with what to do (``--skip-bad`` where the command has it, the ``"*"``
wildcard where most problems are codes the label map does not list). :mod:`ecgnet.data.collections.manifest`
reads; this module only words what is wrong.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from pathlib import Path

from ecgnet.errors import ECGNetError

WILDCARD = "*"  # a label map's key for every code it does not list
TRUE, FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}  # a class cell's values (and 1.0, 0.00)
MISSING = {"na", "n/a", "#n/a", "nan", "null"}  # how R, pandas and spreadsheets write a missing value: as empty
NO_LABEL = MISSING | {"-", "none"}  # a labels cell that says nothing (unless the map lists the token)
UNKNOWN_SEX = {"u", "unknown", "unk"}  # how hospitals write an unknown sex (HL7's U): empty, not an error
ACCEPTED = ("1 (positive), 0 (negative) or empty (unknown) — or 1.0/0.0, true/false, t/f, yes/no, y/n in any case, "
            "NA for empty")  # what label_value reads
WRONG_SEPARATORS = re.compile(r"[,|]")  # between labels where ';' was meant; never in a class name
LIKELY_SEPARATORS = re.compile(r"\s*(?:/|\+|&|\band\b)\s*")  # between labels where each part is a label of its own
MAX_LISTED = 20  # problems listed in one error
RESERVED = ("record", "labels", "patient", "source", "fold", "age", "sex", "height", "weight")  # a manifest's own
ALIASES = {  # the reserved name a hospital's column probably is (names compared without case, spaces or '_')
    "record": ("file", "filename", "filepath", "path", "recordpath", "recordname"),
    "patient": ("mrn", "patientid", "patientnumber", "patientno", "subject", "subjectid", "pid"),
    "sex": ("gender",),
    "labels": ("label", "statement", "statements", "diagnosis", "diagnoses", "dx"),
}


def not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """The error text for a file that is not UTF-8: which text it is where a UTF-16 byte-order mark says so,
    else where decoding failed; and what to do."""
    with open(path, "rb") as fh:
        start = fh.read(2)
    what = ("UTF-16 text, not UTF-8" if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
            else f"not UTF-8 text ({error.reason} at byte {error.start})")
    return f"{path}: {what}: save it as UTF-8 (CSV UTF-8 in Excel)"


def label_value(text: str) -> float | None:
    """A per-class cell as 1.0, 0.0 or NaN (empty, NA: unknown); None where it is none of :data:`ACCEPTED`."""
    low = text.strip().lower()
    if not low or low in MISSING:
        return float("nan")
    if low in TRUE or low in FALSE:
        return 1.0 if low in TRUE else 0.0
    return float(low) if is_number(low) and float(low) in (0.0, 1.0) else None


def joined_labels(label: str, known=(), strict: bool = True) -> int:
    """How many labels ``label`` looks like, written with a wrong separator instead of ';' (0: it looks
    like one label): split at ',' or '|' — with ``strict`` whatever the parts, else only where each part is
    a ``known`` label — or at spaces, '/', '+', '&' or 'and' where each part is a ``known`` label."""
    if WRONG_SEPARATORS.search(label):
        parts = [p.strip() for p in WRONG_SEPARATORS.split(label) if p.strip()]
        if strict or len(parts) > 1 and all(p in known for p in parts):
            return max(len(parts), 1)
    for parts in (label.split(), [p for p in LIKELY_SEPARATORS.split(label) if p]):
        if len(parts) > 1 and all(p in known for p in parts):
            return len(parts)
    return 0


def _plain(text: str) -> str:
    """A statement compared loosely: case, runs of spaces (a non-breaking one too) and a final full stop aside."""
    return " ".join(text.replace("\u00a0", " ").split()).casefold().rstrip(".").strip()


def map_near_miss(code: str, mapping: dict) -> str | None:
    """What a code the label map does not list probably is: one of the map's codes written another way ('normal
    ECG' for 'Normal ECG'), one of its classes in another case ('norm' for NORM), or several statements in one
    cell ('Sinus rhythm. Normal ECG' beside the map's 'Normal ECG'); None when it looks like neither (a code the
    map leaves out). The map's index is built once per map (a map of thousands of statements, 100k rows)."""
    global _INDEXED
    if _INDEXED[0] is not mapping:
        keys = {_plain(k): k for k in mapping if k != "*"}
        classes = {_plain(c): c for targets in mapping.values() for c in targets}
        _INDEXED = (mapping, keys, classes)
    _, keys, classes = _INDEXED
    plain = _plain(code)
    if plain in keys:
        return f"did you mean the map's '{keys[plain]}'?"
    if plain in classes:
        return f"did you mean the class '{classes[plain]}'?"
    parts = [_plain(p) for p in re.split(r"[.,]\s+|\s+-\s+|\n", code) if _plain(p)]
    found = [keys[p] for p in parts if p in keys]
    if found and len(parts) > 1:
        return (f"it holds the map's {', '.join(repr(f) for f in found)} beside other words: one statement per label, "
                "separated with ';'")
    return None


_INDEXED: tuple = (None, {}, {})  # the last label map map_near_miss indexed, and its indexes


def several(label: str, n: int, what: str = "labels") -> str:
    """The problem with ``label`` that looks like ``n`` ``what`` (see :func:`joined_labels`)."""
    return f"'{label}' " + (f"looks like {n} {what}" if n > 1 else "holds a ',' or '|'")


def check_targets(where: str, code: str, targets: list[str]) -> None:
    """Refuse a label map's class that looks like several (``where``: the map, or its line and column)."""
    for t in targets:
        if n := joined_labels(t):
            raise ECGNetError(f"{where}: '{code}': {several(t, n, 'classes')}: map the code to a list of classes "
                              "(YAML: [A, B]; CSV: one line per class)")


_NUMBERED = re.compile(r"^(?P<where>.* line (?P<line>\d+) \(record '.*'\)), column sex: '(?P<value>[^']*)' "
                       r"(?P<why>is a number.*)$")


def _one_line_per_numbered_sex(problems: list[str]) -> list[str]:
    """The rows whose sex is a number, as one line (a site that writes 1/0 writes it on every row: the same
    sentence 20 times said nothing more)."""
    found = [m for p in problems if (m := _NUMBERED.match(p))]
    if len(found) < 2:
        return problems
    values = sorted({m["value"] for m in found})
    lines = [m["line"] for m in found]
    first = next(i for i, p in enumerate(problems) if _NUMBERED.match(p))
    why = found[0]["why"].removeprefix("is a number, which ")
    said = (f"column sex: {len(found)} rows hold numbers ({', '.join(repr(v) for v in values[:4])}; lines "
            f"{', '.join(lines[:6])}{' …' if len(lines) > 6 else ''}), which {why}")
    rest = [p for p in problems if not _NUMBERED.match(p)]
    return rest[:first] + [said] + rest[first:]


def problems_error(path: Path, problems: list[str], unmapped: Counter, offer_skip_bad: bool) -> ECGNetError:
    """One error listing the rows' ``problems`` (the first :data:`MAX_LISTED`; rows with a numbered sex as one
    line); it suggests --skip-bad where the calling command has it, and the wildcard where most problems are
    ``unmapped`` codes."""
    problems = _one_line_per_numbered_sex(problems)
    listed = "\n".join(problems[:MAX_LISTED])
    more = f"\n… and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    fix = "fix them, or pass --skip-bad to leave those rows out" if offer_skip_bad else "fix them"
    return ECGNetError(f"{path}: {len(problems)} problem(s) ({fix}):\n{listed}{more}"
                       f"{wildcard_hint(unmapped, len(problems))}")


def wildcard_hint(unmapped: Counter, n_problems: int, shown: int = 5) -> str:
    """Advice to add the codes to the label map or ignore them with '*', where they make at least half of
    the ``n_problems`` (empty otherwise)."""
    n = sum(unmapped.values())
    if not n or 2 * n < n_problems:
        return ""
    codes = ", ".join(f"{c} ({k} row{'s' if k > 1 else ''})" for c, k in unmapped.most_common(shown))
    codes += ", …" if len(unmapped) > shown else ""
    them = ("it is a code" if n_problems == 1 else "1 of them is a code" if n == 1 else f"{n} of them are codes")
    kinds = plural(len(unmapped), "code")
    return (f"\n{them} the label map does not list ({kinds}: {codes}): add {'it' if len(unmapped) == 1 else 'them'} "
            f"to the map, or add '\"{WILDCARD}\": null' (a CSV map: a line '{WILDCARD},') to ignore every code it "
            "does not list")


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, with an 's' unless ``n`` is 1 ('1 code', '3 codes')."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def refuse_text_columns(path: Path, header, class_columns, rows) -> None:
    """One error naming the per-class columns whose non-empty cells are mostly text (neither a label value
    nor a number; two cells at least) or hold a ';'-separated list: a misnamed ``labels`` column, or a
    column that is no class. (A lone bad cell stays its row's problem.)"""
    text, marks, numbers = [], [], []
    for column in class_columns:
        i = header.index(column)
        cells = [(line, row[i].strip()) for line, row in enumerate(rows, start=2) if len(row) > i and row[i].strip()]
        words = [(line, c) for line, c in cells if label_value(c) is None and not is_number(c)]
        lists = [(line, c) for line, c in words if ";" in c]
        if lists or len(words) > 1 and 2 * len(words) > len(cells):
            short = not lists and all(len(c) <= 6 and " " not in c for _, c in words)  # 'x', '+', 'WAHR', 'ja'
            (marks if short else text).append((column, *(lists or words)[0]))
        counts = [(line, c) for line, c in cells if label_value(c) is None and is_number(c)]  # an MRN, an accession
        if len(counts) > 1 and 2 * len(counts) > len(cells):
            numbers.append((column, *counts[0]))
    neither = (f"a column that is neither a class nor one of {', '.join(RESERVED)} (an identifier, a date) must be "
               "removed, or renamed to one of them")
    if numbers and not text and not marks:
        column, line, example = numbers[0]
        raise ECGNetError(f"{path} line 1, column(s) {', '.join(c for c, _, _ in numbers)}: numbers (e.g. '{example}' "
                          f"on line {line}), not 1/0: a class column holds {ACCEPTED}; {neither}")
    if marks and not text:
        column, line, example = marks[0]
        raise ECGNetError(f"{path} line {line}, column {column}: '{example}' is not a label value: a class column holds "
                          f"{ACCEPTED} (column(s) {', '.join(c for c, _, _ in marks)}); write each record's 1 or 0 — "
                          "an empty cell is unknown, not negative")
    if text:
        names = ", ".join(c for c, _, _ in text)
        column, line, example = text[0]
        raise ECGNetError(f"{path} line 1, column(s) {names}: text (e.g. '{example}' on line {line}), not 1/0: a "
                          f"column of labels must be named 'labels' (labels separated by ';'); any other column is "
                          f"one class, holding {ACCEPTED} per record; {neither}")


def alias_of(column: str) -> str | None:
    """The reserved column ``column`` probably is ('MRN': patient, 'Gender': sex, 'file': record, 'Sex' beside
    'sex': sex); None when it looks like none of them."""
    key = re.sub(r"[^a-z0-9]", "", column.casefold())
    if key in RESERVED:
        return key
    return next((name for name, names in ALIASES.items() if key in names), None)


def renames(columns, header) -> str:
    """What to do with the ``columns`` that are a reserved column under another name: rename each (the first of
    two for one name), or keep one where the manifest already has that column ('' when none is)."""
    said, taken = [], set(header)
    for column in columns:
        name = alias_of(column)
        if name is None or column == name:
            continue
        if name in taken:
            said.append(f"'{column}' looks like a second '{name}' column: keep one")
        else:
            what = " (each ECG file's path relative to the manifest)" if name == "record" else ""
            said.append(f"rename '{column}' to '{name}'{what}")
            taken.add(name)
    return "; ".join(said)


def layout_error(path: Path, header, class_columns) -> ECGNetError:
    """Both a ``labels`` column and other columns that are no reserved name: which of them is a reserved column
    under another name ('MRN': patient), and that the others must go."""
    fix = renames(class_columns, header)
    others = [c for c in class_columns if alias_of(c) is None]
    rest = (f"{'; ' if fix else ''}remove (or rename to one of those) {', '.join(others)}" if others else "")
    return ECGNetError(f"{path} line 1: both a 'labels' column and per-class columns ({', '.join(class_columns)}): "
                       f"use one layout — beside 'labels' every column must be one of {', '.join(RESERVED)}: "
                       f"{fix}{rest}")


def refuse_aliases(path: Path, header, class_columns, mapping) -> None:
    """Refuse per-class columns named as a reserved column under another name ('MRN', 'Gender', 'file'): not
    classes (unless the label map lists them). A ``labels`` column under another name ('diagnosis') is left to
    :func:`refuse_text_columns`, which names it by its text."""
    found = [c for c in class_columns if alias_of(c) not in (None, "labels") and c not in (mapping or {})]
    if found:
        raise ECGNetError(f"{path} line 1, column(s) {', '.join(found)}: not classes (every column other than "
                          f"{', '.join(RESERVED)} is read as one class of 1/0): {renames(found, header)}")


def no_record_hint(header) -> str:
    """Advice for a header without ``record``: the renames its columns suggest ('file' → record), or ''."""
    fix = renames(header, header)
    return f": {fix}" if fix else ""


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True
