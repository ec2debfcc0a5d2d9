"""`ecgnet data cache`: the signal caches — copies of a site's records' signals, paths, age and sex — listed with
what they were built from, and removed (one by its key or a unique start of it, or all); an unknown key is one
error. A hospital audit found them kept in ~/.cache/ecgnet without a word."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import write_wfdb
from ecgnet.cli import app
from ecgnet.data.cache_files import list_caches
from ecgnet.data.collections import read_manifest


def _cache(tmp_path, name: str, n: int) -> None:
    for i in range(n):
        write_wfdb(tmp_path / name, f"r{i}", fs=500, seed=i)
    path = tmp_path / f"{name}.csv"
    path.write_text("record,A\n" + "".join(f"{name}/r{i}.hea,{i % 2}\n" for i in range(n)))
    read_manifest(path).load_signals(100, tmp_path / "cache", progress=False)


def test_data_cache_lists_and_removes_the_signal_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGNET_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    result = runner.invoke(app, ["data", "cache"])
    assert result.exit_code == 0 and "no signal cache in" in result.output
    _cache(tmp_path, "site_a", 3)
    _cache(tmp_path, "site_b", 2)
    entries = list_caches()
    assert sorted(e.records for e in entries) == [2, 3]
    assert {e.built_from for e in entries} == {f"records under {tmp_path / 'site_a'}",
                                               f"records under {tmp_path / 'site_b'}"}
    result = runner.invoke(app, ["data", "cache"])
    printed = " ".join(result.output.split())
    assert result.exit_code == 0 and f"2 signal cache(s) in {tmp_path / 'cache'}" in printed
    assert all(e.key in printed for e in entries) and "3 records" in printed

    gone = next(e for e in entries if e.records == 3)
    result = runner.invoke(app, ["data", "cache", "--remove", "manifest100_"])  # the start of both keys
    assert result.exit_code == 2 and "2 caches of that name" in result.stderr
    assert runner.invoke(app, ["data", "cache", "--remove", gone.key[:20]]).exit_code == 0  # a unique start
    assert not any(p.exists() for p in gone.files if p.suffix != ".lock")
    assert [e.records for e in list_caches()] == [2]
    result = runner.invoke(app, ["data", "cache", "--remove", "nowhere"])
    assert result.exit_code == 2 and "data cache --remove nowhere: no cache of that name" in result.stderr
    assert runner.invoke(app, ["data", "cache", "--clear"]).exit_code == 0 and list_caches() == []


@pytest.mark.parametrize("content", ["", "{not json", '{"source": "manifest"}'])
def test_a_damaged_index_is_listed_not_a_traceback(tmp_path, content):
    (tmp_path / "manifest100_0123456789abcdef.npy").write_bytes(b"x" * 10)
    (tmp_path / "manifest100_0123456789abcdef.json").write_text(content)
    [entry] = list_caches(tmp_path)
    assert entry.records is None and entry.built_from == "(index unreadable)" and entry.size == 10 + len(content)


def test_a_killed_builds_partial_files_are_listed_and_cleared_and_a_held_lock_is_said(tmp_path):
    """A build killed mid-way leaves hidden partial copies of signals (.KEY.npy.x.tmp) and segments without their
    array: `data cache` did not list them and --clear left them; --remove waited on a held lock without a word
    (a review)."""
    from filelock import FileLock

    from ecgnet.data.cache_files import remove_caches

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".manifest100_00000000deadbeef.npy.a1b2.tmp").write_bytes(b"x" * 100)
    (cache / "manifest100_00000000deadbeef.segments.npy").write_bytes(b"y" * 50)
    (cache / "manifest100_00000000deadbeef.lock").write_bytes(b"")
    (cache / "notes.txt").write_text("not a cache")
    for other in ("manifest.csv", "ptbxl_database.csv", "manifest100_x.npy"):  # ECGNET_CACHE = the data folder, say:
        (cache / other).write_text("a user's file")  # never listed nor removed (a review: --clear deleted them)
    [entry] = list_caches(cache)
    assert entry.key == "manifest100_00000000deadbeef" and entry.size == 150 and entry.records is None
    assert entry.built_from == "(no index: a build cut off)"
    lock = FileLock(cache / "manifest100_00000000deadbeef.lock")
    lock.acquire()
    said = []
    freed = remove_caches([entry], cache, waiting=lambda key: (said.append(key), lock.release()))
    assert said == [entry.key] and freed == 150
    assert sorted(p.name for p in cache.iterdir()) == ["manifest.csv", "manifest100_00000000deadbeef.lock",
                                                       "manifest100_x.npy", "notes.txt", "ptbxl_database.csv"]
    assert list_caches(cache) == []
