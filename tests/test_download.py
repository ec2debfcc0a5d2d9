"""download/verify against a tiny PTB-XL-shaped release served over HTTP on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import random
import re
import shutil
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ecgnet.data.download import VerifyReport, download, read_checksums, verify
from ecgnet.errors import ECGNetError

DAT = "records100/00000/00002_lr.dat"
FILES_100HZ = [
    "ptbxl_database.csv",
    "scp_statements.csv",
    *(f"records100/00000/0000{i}_lr.{ext}" for i in (1, 2, 3) for ext in ("dat", "hea")),
]
FILE_500HZ = "records500/00000/00001_hr.dat"


class RangeHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=N-`` (206), request logging and no stderr noise."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.server.seen.append((self.path.rsplit("/ptb-xl/1.0.1/", 1)[-1], rng))
        path = Path(self.translate_path(self.path))
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if not m or self.server.ignore_range or not path.is_file():
            return super().do_GET()
        data, start = path.read_bytes(), int(m[1])
        if start >= len(data):
            return self.send_error(416)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@dataclass
class Site:
    root: Path  # the release folder being served
    url: str
    server: ThreadingHTTPServer

    def requested(self) -> list[str]:
        return [path for path, _ in self.server.seen]


@pytest.fixture
def site(tmp_path):
    www = tmp_path / "www"
    root = www / "ptb-xl" / "1.0.1"
    rnd, listed = random.Random(0), [*FILES_100HZ, FILE_500HZ]
    for rel in listed:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rnd.randbytes(rnd.randint(1000, 5000)))
    lines = [f"{hashlib.sha256((root / r).read_bytes()).hexdigest()} {r}" for r in listed]
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(www)))
    server.seen, server.ignore_range = [], False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield Site(root, f"http://127.0.0.1:{server.server_address[1]}/ptb-xl/1.0.1/", server)
    server.shutdown()
    server.server_close()
    thread.join()


def assert_mirrors(dest: Path, site: Site) -> None:
    for rel in FILES_100HZ:
        assert (dest / rel).read_bytes() == (site.root / rel).read_bytes(), rel
    assert not (dest / FILE_500HZ).exists()
    assert not list(dest.rglob("*.part"))


def test_download_into_empty_folder(site, tmp_path):
    report = download(tmp_path / "dest", site.url, progress=True)
    assert_mirrors(tmp_path / "dest", site)
    assert report.ok and report.n_ok == len(FILES_100HZ) and not report.extra
    assert FILE_500HZ not in site.requested()


def test_second_run_downloads_nothing(site, tmp_path):
    download(tmp_path / "dest", site.url, progress=False)
    site.server.seen.clear()
    report = download(tmp_path / "dest", site.url, progress=False)
    assert site.requested() == ["SHA256SUMS.txt"]
    assert report.ok


def test_resume_sends_range_request(site, tmp_path):
    data = (site.root / DAT).read_bytes()
    part = tmp_path / "dest" / (DAT + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    download(tmp_path / "dest", site.url, progress=False)
    assert (DAT, f"bytes={len(data) // 2}-") in site.server.seen
    assert_mirrors(tmp_path / "dest", site)


def test_server_ignoring_range_restarts_file(site, tmp_path):
    site.server.ignore_range = True
    part = tmp_path / "dest" / (DAT + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes that must not survive")
    download(tmp_path / "dest", site.url, retries=1, progress=False)
    assert_mirrors(tmp_path / "dest", site)
    assert site.requested().count(DAT) == 1  # the 200 body replaced the part in one attempt


def test_corrupt_file_on_server_fails_after_retries(site, tmp_path):
    (site.root / DAT).write_bytes(b"changed after SHA256SUMS.txt was written")
    with pytest.raises(ECGNetError, match=re.escape(DAT)):
        download(tmp_path / "dest", site.url, retries=2, progress=False)
    assert [rng for path, rng in site.server.seen if path == DAT] == [None, None]  # bad part discarded
    assert not (tmp_path / "dest" / DAT).exists()
    assert not (tmp_path / "dest" / (DAT + ".part")).exists()


def test_missing_file_on_server_names_url(site, tmp_path):
    (site.root / DAT).unlink()
    with pytest.raises(ECGNetError, match=re.escape(site.url + DAT)):
        download(tmp_path / "dest", site.url, retries=1, progress=False)


def test_verify(site, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(site.root, copy)
    (copy / ".materialized").touch()  # hidden files are not "extra"
    report = verify(copy, progress=False)
    assert report.ok and report.n_ok == len(FILES_100HZ) and report == verify(copy, progress=False)
    assert verify(copy, include_500hz=True, progress=False).n_ok == len(FILES_100HZ) + 1

    data = bytearray((copy / DAT).read_bytes())
    data[10] ^= 0xFF
    (copy / DAT).write_bytes(data)
    (copy / "scp_statements.csv").unlink()
    (copy / "records100/00000/stray.txt").write_text("hi")
    report = verify(copy, progress=False)
    assert not report.ok
    assert report.corrupt == [DAT]
    assert report.missing == ["scp_statements.csv"]
    assert report.extra == ["records100/00000/stray.txt"]
    assert report.n_ok == len(FILES_100HZ) - 2
    assert DAT in report.summary()

    (copy / "SHA256SUMS.txt").unlink()
    with pytest.raises(ECGNetError, match="SHA256SUMS.txt"):
        verify(copy, progress=False)


def test_summary_truncates_long_lists():
    text = VerifyReport(missing=[f"f{i}" for i in range(25)]).summary()
    assert "f9" in text and "f10" not in text and "… and 15 more" in text


def test_read_checksums_formats(tmp_path):
    h = "ab" * 32
    sums = tmp_path / "SHA256SUMS.txt"
    sums.write_text(f"{h} a.csv\n{h.upper()}  b/c.dat\n\n{h} *d.hea\n")
    assert read_checksums(sums) == {"a.csv": h, "b/c.dat": h, "d.hea": h}
    sums.write_text(f"{h} a.csv\nnot-a-hash b.csv\n")
    with pytest.raises(ECGNetError, match=r"SHA256SUMS.txt: line 2"):
        read_checksums(sums)
    sums.write_text(f"{h} ../escape.txt\n")
    with pytest.raises(ECGNetError, match="outside the release"):
        read_checksums(sums)
