"""serve/uploads.py on its own: byte counting across chunks, every signal line checked, folders removed."""

from __future__ import annotations

import io

import pytest

from ecgnet.data.limits import ReadLimits
from ecgnet.errors import ECGNetError
from ecgnet.serve.uploads import UploadError, UploadFolders, UploadLimits, _CHUNK, saved_record, signal_files


def _header(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _twelve(files: list[str]) -> list[str]:
    return ["r 12 100 1000"] + [f"{files[min(i, len(files) - 1)]} 16 1000/mV 16 0 0 0 0 L{i}" for i in range(12)]


def test_bytes_are_counted_across_chunks(tmp_path, monkeypatch):
    """The limit (100 kB) is above one read chunk (64 KiB): only a running total sees 150 kB as too much."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    limit = 100_000
    assert limit > _CHUNK
    header = _header(_twelve(["r.dat"]))
    with pytest.raises(UploadError, match="larger than the 100 kB allowed per file") as info:
        with saved_record([("r.hea", io.BytesIO(header)), ("r.dat", io.BytesIO(b"\0" * 150_000))],
                          UploadLimits(max_file_bytes=limit)):
            pass
    assert info.value.status == 413 and list(tmp_path.iterdir()) == []
    data = bytes(range(256)) * 390  # 99,840 bytes: two chunks, under the limit, copied intact
    with saved_record([("r.hea", io.BytesIO(header)), ("r.dat", io.BytesIO(data))],
                      UploadLimits(max_file_bytes=limit)) as saved:
        assert (saved.parent / "r.dat").read_bytes() == data
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, refused", [(0, False), (1, True)])
def test_a_file_of_exactly_the_limit_is_taken_one_byte_more_is_not(tmp_path, monkeypatch, extra, refused):
    """The limit is 'at most max_file_bytes': a file of exactly that size is saved whole (the limit a multiple
    of the read chunk, so the last chunk ends on it), one byte more is a 413 and nothing is left."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    limit = 2 * _CHUNK
    data = bytes(range(256)) * (limit // 256) + b"x" * extra
    files = [("r.hea", io.BytesIO(_header(_twelve(["r.dat"])))), ("r.dat", io.BytesIO(data))]
    if refused:
        with pytest.raises(UploadError, match="r.dat: larger than the 131 kB allowed per file") as info:
            with saved_record(files, UploadLimits(max_file_bytes=limit)):
                pass
        assert info.value.status == 413
    else:
        with saved_record(files, UploadLimits(max_file_bytes=limit)) as saved:
            assert (saved.parent / "r.dat").read_bytes() == data
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", [0, 5, 11])
def test_every_signal_line_is_checked_the_last_too(tmp_path, where):
    lines = _twelve(["r.dat"])
    lines[1 + where] = lines[1 + where].replace("r.dat", "../outside.dat")
    (tmp_path / "r.hea").write_bytes(_header(lines))
    with pytest.raises(UploadError, match="its signal line names ../outside.dat: file names must be bare names"):
        signal_files(tmp_path / "r.hea")


def test_signal_files_lists_each_file_once_in_order(tmp_path):
    lines = ["r 3 100 10", "a.dat 16 1/mV 16 0 0 0 0 I", "a.dat 16 1/mV 16 0 0 0 0 II", "b.dat 16 1/mV 16 0 0 0 0 III"]
    (tmp_path / "r.hea").write_bytes(_header(lines))
    assert signal_files(tmp_path / "r.hea") == ["a.dat", "b.dat"]


def test_headers_over_the_read_budget_are_refused_before_their_lines_are_parsed(tmp_path):
    (tmp_path / "r.hea").write_bytes(_header(_twelve(["r.dat"])))
    with pytest.raises(ECGNetError, match=r"over the limit of 8 \(max_signals; --max-signals widens it\)"):
        signal_files(tmp_path / "r.hea", ReadLimits(max_signals=8))
    with pytest.raises(ECGNetError, match=r"\(max_header_bytes\)"):
        signal_files(tmp_path / "r.hea", ReadLimits(max_header_bytes=100))


def test_closed_folders_are_removed_and_no_new_one_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folders = UploadFolders()
    live = folders.create()
    assert live.is_dir() and folders.close() == 1 and not live.exists()
    with pytest.raises(UploadError, match="shutting down") as info:
        folders.create()
    assert info.value.status == 503
    folders.open()
    folders.remove(folders.create())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, saved", [("ECG 2024-01-05.xml", "ECG_2024-01-05.xml"),
                                         ("Müller Jan.DCM", "M_ller_Jan.DCM"), ("IM 0001", "IM_0001"),
                                         ("x" * 150 + ".scp", "x" * 96 + ".scp")])
def test_a_lone_ecg_file_with_spaces_or_accents_is_saved_under_a_safe_name(tmp_path, monkeypatch, name, saved):
    """A clinician's 'ECG 2024-01-05.xml' was refused by the viewer while `ecgnet predict` read it: a lone
    single-file ECG is renamed, not refused (its format comes from its content; nothing refers to its name)."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with saved_record([(name, io.BytesIO(b"<xml/>"))]) as path:
        assert path.name == saved and path.read_bytes() == b"<xml/>"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("files, message", [
    ([("../ECG 1.xml", b"x")], "file names must be bare names"),
    ([("ECG 1.pdf", b"x")], "unusable file name"),
    ([("r 1.hea", b"x"), ("r 1.dat", b"x")], "unusable file name"),  # a record's files refer to each other by name
])
def test_paths_other_suffixes_and_record_files_keep_the_strict_rule(tmp_path, files, message):
    with pytest.raises(UploadError, match=message):
        with saved_record([(n, io.BytesIO(b)) for n, b in files]):
            pass
