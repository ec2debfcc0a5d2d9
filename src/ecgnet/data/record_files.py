"""What a user names on the command line → the records to read (WFDB headers, or single-file ECGs of
the formats :mod:`ecgnet.data.readers` reads), in a stable order.

- a ``.hea`` / ``.dat`` / ``.mat`` file or a record name: that record;
- any other existing file: itself (its format is detected from its content when it is read);
- a folder: every ``.hea`` below it, every file whose content is an ECG format ECGNet reads
  (MUSE/Philips/HL7 XML, DICOM, SCP-ECG, EDF), every file named as one (``.xml``, ``.dcm``, ``.scp``,
  ``.edf``, ``.bdf``: an empty or damaged one fails on its own row instead of vanishing; an XML file whose root
  element is no ECG format, such as a cart export's ``settings.xml``, is passed over) and every WFDB
  signal file without its header — recursive, sorted; other files are passed over;
- a ``RECORDS`` file (PhysioNet's list): each line is a record name relative to its folder, or a
  sub-folder (``p10/``) whose own ``RECORDS`` (or, failing that, headers) is read in turn. A line that
  leaves the list's folder (``../``, ``/``) is refused; a list reached twice (a cycle) is read once.

Names that do not exist are kept: reading them fails with a clear message on their own row.
"""

from __future__ import annotations

from pathlib import Path

from ecgnet.data.records import header_path
from ecgnet.errors import ECGNetError


def find_records(paths: list[str | Path]) -> list[Path]:
    """The headers that ``paths`` name, each once, in the order given."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        for header in _expand(path):
            found.setdefault(header, None)
    return list(found)


def _expand(path: Path, seen: set[Path] | None = None) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if not p.name.startswith(".") and _is_record(p))
    if path.name == "RECORDS" and path.is_file():
        return _from_records_file(path, set() if seen is None else seen)
    if path.suffix.lower() not in (".hea", ".dat", ".mat") and (path.is_file() or
                                                                not header_path(path).is_file()):
        return [path]  # a missing ecg.xml (or folder) fails as itself, not as "ecg.hea: no such WFDB header"
    return [header_path(path)]


ECG_SUFFIXES = (".xml", ".dcm", ".scp", ".edf", ".bdf")  # a file named so is an ECG even when it cannot be read


def _is_record(path: Path) -> bool:
    """A WFDB header, a file named or made as a single-file ECG, or a WFDB signal file whose header is missing
    (a signal file with its header is reached by the header)."""
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return True
    if suffix in (".dat", ".mat"):
        return path.is_file() and not header_path(path).is_file()
    if not path.is_file():
        return False
    if suffix in ECG_SUFFIXES:  # but an XML of another kind (settings.xml): passed over like a .csv or .txt
        from ecgnet.data.readers.detect import foreign_xml

        return suffix != ".xml" or foreign_xml(path) is None
    from ecgnet.data.readers import detect
    from ecgnet.errors import ECGNetError

    try:
        return detect(path) != "wfdb"
    except ECGNetError:
        return False


def _from_records_file(path: Path, seen: set[Path]) -> list[Path]:
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    folder = path.parent.resolve()
    out: list[Path] = []
    for line in path.read_text(errors="replace").splitlines():
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        target = path.parent / name
        if "\0" in name or not (folder / name).resolve().is_relative_to(folder):
            raise ECGNetError(f"{path}: line {name!r} is not a record or folder inside {path.parent}")
        if name.endswith("/"):
            sub = target / "RECORDS"
            out += _from_records_file(sub, seen) if sub.is_file() else _expand(target, seen)
        else:
            out.append(header_path(target))
    return out
