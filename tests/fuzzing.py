"""Fuzz cases for ECGNet's readers and their oracle, shared by ``tests/test_fuzz_readers.py`` (a bounded
number of examples in the suite) and ``benchmarks/fuzz_campaign.py`` (the long campaign).

Each reader gets a Hypothesis strategy that damages a valid input, and a ``check_*`` function that runs
the reader on it and passes only if the reader ends in one of two ways:

- a clean :class:`ECGNetError`, one line, naming the file (or the config source / the Dx line);
- a correct result (for records: 12 finite float32 leads, and the original signal whenever only the
  signal file's bytes beyond the header's samples changed; a single flipped bit inside the samples of a
  record with checksums must be refused).

Any other exception, or an assertion here, is a finding. Hangs and allocations are bounded by the
callers (Hypothesis' deadline and ``tracemalloc`` in the suite; an alarm and an address-space limit in
the campaign).
"""

from __future__ import annotations

import importlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from hypothesis import strategies as st

from ecgnet.config import Config, dump_config, load_config, parse_config
from ecgnet.data.record_files import find_records
from ecgnet.data.external import parse_dx
from ecgnet.data.records import read_ecg
from ecgnet.errors import ECGNetError

# --- valid inputs the strategies damage --------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """A valid record as bytes: its header text, its signal file's name and bytes, where the samples end."""

    name: str
    header: str
    signal_name: str
    signal: bytes
    data: tuple[int, int]  # where the header's samples lie in the signal file (bytes; .mat: after its header)
    rate: int
    expected: np.ndarray  # what read_ecg returns for the undamaged record (12, samples) mV
    extra: tuple = ()  # other signal files, written unchanged: (name, bytes)
    compressed: bool = False  # FLAC: damaged bytes must be refused or decode to the original samples


def _tests_module(name: str):
    """A helper module of tests/, from the suite (tests/ on the path) or from ``python -m benchmarks...``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return importlib.import_module(f"tests.{name}")


def _bases() -> dict[str, Base]:
    """The PTB-XL-style ``.dat`` record of conftest, a Challenge ``.mat`` record (signed checksums) and a
    FLAC-compressed record (format 516, two signal files) written by wfdb itself."""
    import wfdb

    write_wfdb = _tests_module("conftest").write_wfdb
    write_challenge = _tests_module("test_records").write_challenge

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, _ = write_wfdb(tmp, "rec", samples=500)
        dat = path.with_suffix(".dat").read_bytes()
        out["dat"] = Base("rec", path.read_text(), "rec.dat", dat, (0, len(dat)), 100, read_ecg(path).signal)
        path, _ = write_challenge(tmp, "X0001", fs=500, seconds=2)
        mat = path.with_suffix(".mat").read_bytes()
        out["mat"] = Base("X0001", path.read_text(), "X0001.mat", mat, (24, 24 + 2 * 12 * 1000), 500,
                          read_ecg(path, 500).signal)
        _, signal = write_wfdb(tmp / "plain", "fl", fs=250, samples=500)
        wfdb.wrsamp("fl", fs=250, units=["mV"] * 12, sig_name=[s.upper() for s in LEAD_NAMES], p_signal=signal.T,
                    fmt=["516"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp))
        first, second = (tmp / "fl_1.dat").read_bytes(), (tmp / "fl_2.dat").read_bytes()
        out["flac"] = Base("fl", (tmp / "fl.hea").read_text(), "fl_1.dat", first, (0, len(first)), 250,
                           read_ecg(tmp / "fl.hea", 250).signal, extra=(("fl_2.dat", second),), compressed=True)
    return out


LEAD_NAMES = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


_BASES: dict[str, Base] = {}


def bases() -> dict[str, Base]:
    if not _BASES:
        _BASES.update(_bases())
    return _BASES


# --- strategies ---------------------------------------------------------------------------------

NASTY = ["", "0", "-0", "-1", "1", "nan", "NaN", "inf", "-inf", "1e12", "1000000000000", "-1000000000000",
         "9" * 40, "1e-300", "0.0001", "16+24", "16+999999999", "16x1000000", "16:100", "0/mV", "1000(0)/mV",
         "1000(5)/uV", "1e400/mV", "-1000/mV", "x/mV", "8", "24", "32", "61", "80", "160", "212", "310", "311",
         "508", "999", "/", "(", ")", ":", "+", "#", "E00015.mat", "../rec.dat", "/dev/zero", "/etc/passwd",
         "rec.dat", "X0001.mat", ".", "..", "~", "rec/2", "12:00:00", "01/01/2000", "\x00", "µV", "mV"]
FIELD = st.one_of(
    st.sampled_from(NASTY),
    st.integers(-2**70, 2**70).map(str),
    st.floats().map(repr),
    st.text(max_size=12),  # unicode
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
)


@st.composite
def header_edit(draw, lines: int):
    """One edit of a header: a field replaced or dropped, a line dropped, doubled or added, bytes."""
    kind = draw(st.sampled_from(["field", "field", "field", "drop_field", "drop_line", "dup_line",
                                 "add_line", "truncate", "insert_bytes", "flip", "replace_all", "many_lines"]))
    line = draw(st.integers(0, lines))  # lines: the header's line count (one past: a new line)
    if kind == "many_lines":  # a signal line repeated up to 5000 times: the signal count is bounded first
        return (kind, max(line, 1), draw(st.integers(1, 5000)), draw(st.booleans()))
    if kind in ("field", "drop_field"):
        return (kind, line, draw(st.integers(0, 9)), draw(FIELD) if kind == "field" else None)
    if kind == "add_line":
        return (kind, line, draw(st.one_of(st.text(max_size=60), st.lists(FIELD, max_size=10).map(" ".join))))
    if kind in ("drop_line", "dup_line"):
        return (kind, line)
    if kind == "replace_all":
        return (kind, draw(st.binary(max_size=300)))
    return (kind, draw(st.integers(0, 2000)), draw(st.binary(min_size=1, max_size=8)))


def apply_header_edits(text: str, edits) -> bytes:
    lines = text.splitlines()
    raw = None
    for edit in edits:
        kind = edit[0]
        if raw is not None and kind in ("field", "drop_field", "drop_line", "dup_line", "add_line"):
            lines, raw = raw.decode("utf-8", "replace").splitlines(), None
        if kind in ("field", "drop_field"):
            _, i, j, value = edit
            if i >= len(lines):
                continue
            fields = lines[i].split(" ")
            if kind == "field" and j < len(fields):
                fields[j] = value
            elif kind == "field":
                fields.append(value)
            elif j < len(fields):
                del fields[j]
            lines[i] = " ".join(fields)
        elif kind == "drop_line" and edit[1] < len(lines):
            del lines[edit[1]]
        elif kind == "dup_line" and edit[1] < len(lines):
            lines.insert(edit[1], lines[edit[1]])
        elif kind == "many_lines" and edit[1] < len(lines):
            _, i, count, announce = edit
            lines[i:i] = [lines[i]] * count
            if announce and lines and len(lines[0].split(" ")) > 1:  # the record line announces them all
                fields = lines[0].split(" ")
                fields[1] = str(len(lines) - 1)
                lines[0] = " ".join(fields)
        elif kind == "add_line":
            lines.insert(edit[1], edit[2])
        elif kind in ("truncate", "insert_bytes", "flip", "replace_all"):
            data = bytearray(raw if raw is not None else ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
            if kind == "replace_all":
                data = bytearray(edit[1])
            elif kind == "truncate":
                del data[edit[1]:]
            elif kind == "insert_bytes":
                data[edit[1]:edit[1]] = edit[2]
            elif data:
                data[edit[1] % len(data)] ^= 1 << (edit[2][0] % 8)
            raw = bytes(data)
    return raw if raw is not None else ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@st.composite
def signal_edit(draw, size: int):
    kind = draw(st.sampled_from(["truncate", "extend", "flip", "flip", "zero", "random"]))
    if kind == "truncate":
        return (kind, draw(st.integers(0, size)))
    if kind == "extend":
        return (kind, draw(st.binary(min_size=1, max_size=64)))
    if kind == "flip":
        return (kind, draw(st.integers(0, size - 1)), draw(st.integers(0, 7)))
    if kind == "zero":
        return (kind, draw(st.integers(0, size - 1)), draw(st.integers(1, 64)))
    return (kind, draw(st.integers(0, 64)))  # random bytes of the same length (seeded)


def apply_signal_edits(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for edit in edits:
        kind = edit[0]
        if kind == "truncate":
            del data[edit[1]:]
        elif kind == "extend":
            data += edit[1]
        elif kind == "flip" and data:
            data[edit[1] % len(data)] ^= 1 << edit[2]
        elif kind == "zero" and data:
            start = edit[1] % len(data)
            data[start:start + edit[2]] = bytes(len(data[start:start + edit[2]]))
        elif kind == "random":
            data = bytearray(np.random.default_rng(edit[1]).bytes(len(data)))
    return bytes(data)


@dataclass(frozen=True)
class RecordCase:
    base: str  # "dat", "mat" or "flac"
    header_edits: tuple
    signal_edits: tuple
    resample: bool


@st.composite
def record_cases(draw):
    key = draw(st.sampled_from(["dat", "mat", "flac"]))
    base = bases()[key]
    lines = len(base.header.splitlines())
    header = tuple(draw(st.lists(header_edit(lines), max_size=3)))
    signal = tuple(draw(st.lists(signal_edit(len(base.signal)), max_size=3 if header else 4,
                                 min_size=0 if header else 1)))
    return RecordCase(key, header, signal, draw(st.booleans()))


# --- oracles ------------------------------------------------------------------------------------

def check_record(case: RecordCase, directory: Path) -> str:
    """Write the damaged record into ``directory`` and read it → "read" or "refused" (else: a finding)."""
    base = bases()[case.base]
    header = directory / f"{base.name}.hea"
    header.write_bytes(apply_header_edits(base.header, case.header_edits))
    signal = apply_signal_edits(base.signal, case.signal_edits)
    (directory / base.signal_name).write_bytes(signal)
    for name, data in base.extra:
        (directory / name).write_bytes(data)
    try:
        rec = read_ecg(header, base.rate, resample=case.resample)
    except ECGNetError as e:
        assert_clean(e, str(header))
        return "refused"
    x = rec.signal
    assert x.ndim == 2 and x.shape[0] == 12 and x.shape[1] > 0 and x.dtype == np.float32, x.shape
    assert np.isfinite(x).all()
    if not case.header_edits and base.compressed:
        np.testing.assert_array_equal(x, base.expected)  # FLAC's CRCs and the header's checksums see damage
    elif not case.header_edits:
        start, end = base.data
        if signal[start:end] != base.signal[start:end]:
            if lead_sums(signal[start:end]) == lead_sums(base.signal[start:end]):
                return "checksum collision"  # damage a 16-bit sum per lead cannot see (WFDB's limit)
            raise AssertionError("a damaged signal file was read although the header has checksums")
        np.testing.assert_array_equal(x, base.expected)
    return "read"


def lead_sums(samples: bytes) -> list[int]:
    """WFDB's checksums of 12 interleaved int16 leads (both bases store their samples so)."""
    return (np.frombuffer(samples, "<i2").reshape(-1, 12).astype(np.int64).sum(0) % 65536).tolist()


def assert_clean(error: ECGNetError, names: str) -> None:
    message = str(error)
    assert names in message, f"the message does not name {names!r}: {message!r}"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"


VALID_CONFIG = {"name": "fuzz", "seed": 0,
                "data": {"task": "superdiagnostic", "sampling_rate": 100, "crop_seconds": 2.5,
                         "stride_seconds": 1.25, "aggregate": "max", "augment": []},
                "model": {"name": "time_resnet1d", "params": {"widths": [16, 32]}},
                "training": {"epochs": 3, "batch_size": 64, "lr": 0.01, "loss": "bce", "threads": None}}

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=12),
                    st.sampled_from(["100", "500", "1e999", ".inf", "-.inf", ".nan", "max", "mean", "bce",
                                     "superdiagnostic", "shuffle", "0x10", "1_000", "yes", "~", "null"]))
YAML_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), inner, max_size=4)),
    max_leaves=12)
CONFIG_PATHS = [(), ("name",), ("seed",), ("data",), ("model",), ("training",), ("model", "name"),
                ("model", "params")] + [("data", k) for k in VALID_CONFIG["data"]] + \
               [("data", "max_train_records")] + [("training", k) for k in VALID_CONFIG["training"]] + \
               [("training", k) for k in ("weight_decay", "patience", "focal_gamma", "sampler", "num_workers")]


@st.composite
def config_values(draw):
    """A valid config with a few fields replaced, dropped or added — or any YAML value."""
    if draw(st.integers(0, 4)) == 0:
        return draw(YAML_VALUES)
    raw = yaml.safe_load(yaml.safe_dump(VALID_CONFIG))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(CONFIG_PATHS))
        node = raw
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not path:
            continue
        action = draw(st.sampled_from(["set", "set", "drop", "add"]))
        if action == "set":
            node[path[-1]] = draw(YAML_VALUES)
        elif action == "drop":
            node.pop(path[-1], None)
        else:
            node[draw(st.text(max_size=8))] = draw(YAML_VALUES)
    return raw


def check_config(raw) -> str:
    try:
        config = parse_config(raw, source="fuzz.yaml")
    except ECGNetError as e:
        assert_clean(e, "fuzz.yaml")
        return "refused"
    assert_usable(config)
    return "read"


def assert_usable(config: Config) -> None:
    """A config that parses is usable: windows of at least one sample, and it survives a round trip."""
    d = config.data
    assert d.window is None or d.window >= 1, d.window
    assert d.stride >= 1, d.stride
    assert 0 <= config.seed < 2**32, config.seed  # what numpy and Lightning accept as a seed
    text = dump_config(config)  # compared as text: a NaN among the model's params is not equal to itself
    assert dump_config(parse_config(yaml.safe_load(text))) == text


YAML_TEXT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    config_values().map(lambda raw: yaml.safe_dump(raw, allow_unicode=True).encode("utf-8", "surrogatepass")),
    st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=5)).map(
        lambda e: _spliced(yaml.safe_dump(VALID_CONFIG).encode(), *e)),
    st.sampled_from([b"[" * 1000, b"- " * 1200, b"{a: " * 400, b"a: &a [*a]", b"- &x [1]\n- *y\n",
                     b"name: x\nmodel: {name: m, params: {p: &l0 [a,a,a,a,a,a,a,a,a]}}\n", b"!!python/object:os.system\n"]),
)


def _spliced(data: bytes, at: int, insert: bytes) -> bytes:
    return data[:at] + insert + data[at + len(insert):]


def check_config_file(data: bytes, directory: Path) -> str:
    path = directory / "config.yaml"
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ECGNetError as e:
        assert_clean(e, str(path))
        return "refused"
    assert_usable(config)
    return "read"


# --- Challenge #Dx lines ----------------------------------------------------------------------------

DX_TOKEN = st.one_of(st.integers(0, 10**12).map(str), st.sampled_from(["", " ", "²", "٣", "1e5", "-1", "0x1"]),
                     st.text(max_size=8))


@st.composite
def dx_headers(draw):
    """A header's comment lines around zero or more ``#Dx:`` lines (codes, spaces, junk tokens)."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            key = draw(st.sampled_from(["Dx", "dx", " DX ", "Dx ", "Diagnosis", "D x"]))
            tokens = draw(st.lists(DX_TOKEN, max_size=5))
            lines.append(f"#{key}:{','.join(tokens)}")
        else:
            lines.append(draw(st.text(max_size=40)))
    return "\n".join(lines)


def check_dx(text: str) -> str:
    try:
        codes = parse_dx(text)
    except ECGNetError as e:
        message = str(e)
        assert message.startswith("Dx line") and "\n" not in message and "\r" not in message, repr(message)
        return "refused"
    assert len(set(codes)) == len(codes)
    assert all(c.isascii() and c.isdigit() for c in codes), codes
    return "read"


# --- find_records over folders and RECORDS lists --------------------------------------------------

RECORD_LINE = st.one_of(st.sampled_from(["a", "a.hea", "a.dat", "sub/", "sub/b", "./", "../", ".", "..", "/",
                                         "sub/../", "RECORDS", "sub/RECORDS", "# comment", "", "x" * 300,
                                         "a\x00b", "\\", "~/", "*", "sub//", "loop/"]),
                        st.text(max_size=20))


@st.composite
def record_trees(draw):
    """A folder: some headers, a sub-folder, RECORDS files with any lines (cycles included), a symlink loop."""
    files = {"a.hea": "", "sub/b.hea": "", "sub/.hidden.hea": ""}
    files["RECORDS"] = "\n".join(draw(st.lists(RECORD_LINE, max_size=6)))
    if draw(st.booleans()):
        files["sub/RECORDS"] = "\n".join(draw(st.lists(RECORD_LINE, max_size=6)))
    loop = draw(st.booleans())
    start = draw(st.sampled_from(["", "RECORDS", "sub", "sub/RECORDS", "a", "sub/b.dat", "missing", "loop"]))
    return files, loop, start


def check_find_records(tree, directory: Path) -> str:
    files, loop, start = tree
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, errors="surrogateescape")
    if loop:
        (directory / "loop").symlink_to(directory, target_is_directory=True)
    try:
        found = find_records([directory / start])
    except ECGNetError as e:
        assert_clean(e, str(directory))
        return "refused"
    assert len(set(found)) == len(found)
    # headers, or the path as given when nothing of that name exists (named as typed, not as '<path>.hea')
    assert all(isinstance(p, Path) and (p.suffix == ".hea" or (p == directory / start and not p.exists()))
               for p in found), found
    if start in ("", "sub"):  # a folder: its headers, hidden ones left out
        expected = {directory / "sub" / "b.hea"} | ({directory / "a.hea"} if start == "" else set())
        assert expected <= set(found), found
        assert not any(p.name.startswith(".") for p in found), found
    return "read"


# --- the clinical formats (data/readers): XML, DICOM, EDF, SCP-ECG ---------------------------------------

SHARED_FORMATS = Path(__file__).resolve().parents[2] / "shared" / "external" / "formats"
_FORMAT_BASES: dict[str, tuple[str, bytes]] = {}


def format_bases() -> dict[str, tuple[str, bytes]]:
    """Valid files of each clinical format → (file name, bytes): written by the independent writers of
    tests/ecg_writers.py (MUSE, Philips, HL7 aECG, CardioSoft, DICOM, EDF+), and the real SCP-ECG file of ../shared
    when it is there (no independent SCP writer exists)."""
    if not _FORMAT_BASES:
        w = _tests_module("ecg_writers")
        signal = w.ecg(fs=250, seconds=2.0)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for name, write in (("muse.xml", w.write_muse), ("philips.xml", w.write_philips),
                                ("hl7.xml", w.write_hl7), ("cardiosoft.xml", w.write_cardiosoft),
                                ("ecg.dcm", w.write_dicom), ("ecg.edf", w.write_edf_pyedflib)):
                write(tmp / name, signal, fs=250)
                _FORMAT_BASES[name.split(".")[0] if name != "ecg.dcm" else "dicom"] = (name, (tmp / name).read_bytes())
        scp = SHARED_FORMATS / "scp_ecg" / "ecgtoolkit_Example.scp"
        if scp.is_file():
            _FORMAT_BASES["scp"] = ("ecg.scp", scp.read_bytes())
        from ecgnet.data.readers import read_ecg_any

        with tempfile.TemporaryDirectory() as tmp:  # each base reads (and the readers' imports are warm)
            for name, data in _FORMAT_BASES.values():
                (Path(tmp) / name).write_bytes(data)
                assert read_ecg_any(Path(tmp) / name, 250, resample=True).signal.shape[0] == 12, name
    return _FORMAT_BASES


_NUMBER = re.compile(rb"(?<=[>\"'])-?\d+(?:\.\d+)?(?=[<\"'])")  # an XML element's or attribute's number


@st.composite
def format_edit(draw, size: int):
    """A byte edit (as for signal files), or for XML: a number (a rate, a count, a scale) replaced."""
    if draw(st.integers(0, 2)) == 0:
        return ("number", draw(st.integers(0, 10**6)), draw(st.sampled_from(NASTY[:16] + ["0.000001", "1e308",
                                                                                          "99999999999"])))
    return draw(signal_edit(size))


def apply_format_edits(data: bytes, edits) -> bytes:
    for edit in edits:
        if edit[0] == "number":
            numbers = list(_NUMBER.finditer(data))
            if numbers:
                m = numbers[edit[1] % len(numbers)]
                data = data[:m.start()] + edit[2].encode() + data[m.end():]
        else:
            data = apply_signal_edits(data, [edit])
    return data


@dataclass(frozen=True)
class FormatCase:
    base: str  # a key of format_bases()
    edits: tuple
    resample: bool


@st.composite
def format_cases(draw):
    key = draw(st.sampled_from(sorted(format_bases())))
    size = len(format_bases()[key][1])
    return FormatCase(key, tuple(draw(st.lists(format_edit(size), min_size=1, max_size=3))), draw(st.booleans()))


def check_format(case: FormatCase, directory: Path) -> str:
    """Write the damaged file and read it with ``read_ecg_any`` → "read" or "refused" (else: a finding)."""
    from ecgnet.data.readers import read_ecg_any

    name, data = format_bases()[case.base]
    path = directory / name
    path.write_bytes(apply_format_edits(data, case.edits))
    try:
        rec = read_ecg_any(path, 250, resample=case.resample)
    except ECGNetError as e:
        assert_clean(e, str(path))
        return "refused"
    x = rec.signal
    assert x.ndim == 2 and x.shape[0] == 12 and x.shape[1] > 0 and x.dtype == np.float32, x.shape
    assert np.isfinite(x).all()
    return "read"
