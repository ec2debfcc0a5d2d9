"""Which format a file is, from its content (magic bytes, the XML root element), never from its name.

``detect(path)`` → one of :data:`FORMATS`; a file of any other kind gets one :class:`ECGNetError` saying
what it looks like and which formats are read. WFDB is the one format spread over files: a ``.hea``
header (text whose record line declares signals), or a ``.dat``/``.mat`` signal file or record name with
such a header beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ecgnet.data.records import header_path
from ecgnet.data.wfdb_header import header_lines
from ecgnet.errors import ECGNetError

FORMATS = ("wfdb", "muse-xml", "philips-xml", "hl7-aecg", "cardiosoft-xml", "dicom", "scp-ecg", "edf")
XML_ROOTS = {"restingecg": "muse-xml", "restingecgdata": "philips-xml", "annotatedecg": "hl7-aecg",
             "cardiologyxml": "cardiosoft-xml"}
READ = ("WFDB (.hea + .dat/.mat), GE MUSE XML, Philips XML 1.03/1.04, HL7 aECG, GE CardioSoft XML, "
        "DICOM ECG waveform, SCP-ECG, EDF/EDF+/BDF")
_MAGIC = [  # (offset, bytes, what it is)
    (0, b"\x89PNG", "a PNG image"), (0, b"\xff\xd8\xff", "a JPEG image"), (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a zip archive (unpack it and give the ECG files)"), (0, b"\x1f\x8b", "a gzip file (unpack it)"),
    (0, b"GIF8", "a GIF image"), (0, b"II*\x00", "a TIFF image"), (0, b"MM\x00*", "a TIFF image"),
    (0, b"BM", "a BMP image"), (0, b"\xd0\xcf\x11\xe0", "an MS Office document"), (0, b"MATLAB 5.0",
                                                                                 "a MATLAB 5 file without a WFDB header"),
    (0, b"\x89HDF", "an HDF5 file"), (0, b"7z\xbc\xaf", "a 7-zip archive"), (0, b"ISHNE1.0", "an ISHNE Holter file (not read)"),
]


def detect(path: str | Path) -> str:
    path = Path(path)
    named = path.suffix.lower() in (".hea", ".dat", ".mat", "") or not path.exists()  # a file, or a record's name
    if named and _wfdb_header(path) is not None:
        return "wfdb"
    if not path.exists():
        if path.suffix.lower() in (".hea", ".dat", ".mat"):  # a WFDB record named by one of its files
            raise ECGNetError(f"{header_path(path)}: no such WFDB header")
        if not path.suffix:  # a file without a suffix, or a record by its name: neither exists (named as typed)
            raise ECGNetError(f"{path}: no such file or folder, nor a WFDB record {path.name}.hea")
        raise ECGNetError(f"{path}: no such file")
    if not path.is_file():
        raise ECGNetError(f"{path}: not a regular file")
    if path.suffix.lower() in (".dat", ".mat"):  # a signal file whose header _wfdb_header did not find
        said = "not a WFDB header" if header_path(path).is_file() else "missing"
        raise ECGNetError(f"{path}: a WFDB signal file without its header ({header_path(path).name} is {said})")
    try:
        head = _head(path)
    except OSError as e:
        raise ECGNetError(f"{path}: cannot be read ({e.strerror or e})") from e
    if not head:
        raise ECGNetError(f"{path}: an empty file. ECGNet reads {READ}")
    if head[128:132] == b"DICM" or _dicom_without_preamble(head):
        return "dicom"
    if head[:8] == b"0       " or head[:8] == b"\xffBIOSEMI":
        return "edf"
    if _is_scp(head):
        return "scp-ecg"
    xml, root = _xml_root(head)
    if root is not None:
        if fmt := XML_ROOTS.get(root.lower()):
            return fmt
        raise ECGNetError(f"{path}: an XML file with root element <{root}>, not an ECG format ECGNet reads ({READ})")
    if path.suffix.lower() == ".hea" and xml is None:  # meant as a WFDB header: say what its record line lacks
        lines = header_lines(head, encoding="latin-1")
        if lines and lines[0].isprintable():
            raise ECGNetError(f"{path}: malformed WFDB record line {lines[0][:60]!r} (expected 'NAME SIGNALS "
                              "[RATE [SAMPLES]]', e.g. 'E00001 12 500 5000')")
    raise ECGNetError(f"{path}: {_what(head, xml)}, not an ECG file ECGNet reads ({READ})")


def foreign_xml(path: str | Path) -> str | None:
    """The root element of an XML file that is no ECG format ECGNet reads (a cart export's settings.xml, an index);
    None for anything else — an ECG format's XML, however damaged inside, an empty or unreadable file, not XML."""
    try:
        _, root = _xml_root(_head(Path(path)))
    except OSError:
        return None
    return root if root is not None and root.lower() not in XML_ROOTS else None


def _head(path: Path) -> bytes:
    """The first 16 KiB of a file, all that detection reads (an XML prologue's comments can be long)."""
    with open(path, "rb") as f:
        return f.read(16384)


def _xml_root(head: bytes) -> tuple[str | None, str | None]:
    """``head`` as XML text and the name of its root element (None, None when it is no XML)."""
    xml = _xml_text(head)
    return xml, _root_name(xml) if xml is not None else None


def _wfdb_header(path: Path) -> Path | None:
    """The WFDB header of ``path`` (itself, or the ``.hea`` beside a signal file/record name) when it reads
    as one (a record line: name, then a signal count)."""
    header = header_path(path)
    if not header.is_file():
        return None
    try:
        with open(header, "rb") as f:
            lines = f.read(4096).decode("latin-1").splitlines()
    except OSError:
        return None
    record = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    fields = record.split()
    return header if len(fields) >= 2 and re.fullmatch(r"\d+", fields[1]) else None


def _dicom_without_preamble(head: bytes) -> bool:
    """A DICOM data set written without the 128-byte preamble and ``DICM``: it starts with a group 0002 or
    0008 element in little endian — explicit VR (two upper-case letters after the tag), or implicit VR (a
    4-byte length, then the next element's tag of the same or a later even group)."""
    if head[:2] not in (b"\x02\x00", b"\x08\x00") or len(head) <= 8:
        return False
    if head[4:6].isalpha() and head[4:6].isupper():
        return True
    length = int.from_bytes(head[4:8], "little")
    if not 0 < length <= 1024 or len(head) < 8 + length + 2:
        return False
    following = int.from_bytes(head[8 + length:10 + length], "little")
    return following % 2 == 0 and int.from_bytes(head[:2], "little") <= following <= 0x0050


def _is_scp(head: bytes) -> bool:
    """SCP-ECG: CRC, record size, then section 0's header whose first pointer is section 0
    at byte 7."""
    if len(head) < 32:
        return False
    record = int.from_bytes(head[2:6], "little")
    sec0_len = int.from_bytes(head[10:14], "little")
    return (int.from_bytes(head[8:10], "little") == 0 and 22 <= record and sec0_len >= 26  # record > size: truncated
            and int.from_bytes(head[22:24], "little") == 0 and int.from_bytes(head[28:32], "little") == 7)


def _xml_text(head: bytes) -> str | None:
    """The file's start as text when it is XML (UTF-8 with or without BOM, UTF-16 LE/BE with BOM or without)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(codec, "ignore")
    if head[:4] == b"<\x00?\x00" or head[:4] == b"<\x00!\x00":
        return head.decode("utf-16-le", "ignore")
    if head[:4] == b"\x00<\x00?":
        return head.decode("utf-16-be", "ignore")
    text = head.decode("latin-1")
    return text if text.lstrip().startswith("<") else None


def _root_name(text: str) -> str | None:
    """The first element's local name, past the declaration, comments, DOCTYPE and processing instructions."""
    text = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S)
    m = re.search(r"<\s*([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)", text)
    return m.group(2) if m else None


def _what(head: bytes, xml: str | None) -> str:
    for offset, magic, what in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return what
    if xml is not None:
        return "an XML/HTML file without a recognisable root element"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    first = text.splitlines()[0] if text.splitlines() else ""
    if first.count(",") >= 2 or first.count(";") >= 2 or first.count("\t") >= 2:
        return "a delimited text file (CSV?) — a table of samples declares no sampling rate or units; " \
               "write it as WFDB or EDF"
    return "a text file"
