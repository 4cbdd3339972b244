"""The disk cache never loses a user's files or a writer's result, and never stops a computation (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from explorer import cache, files
from explorer.cli import main
from explorer.errors import UserError


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_unwritable_warned", set(), raising=False)
    return tmp_path / "cache"


def make(kind="thing", x=1, value=0.0):
    return cache.cached(kind, {"x": x}, lambda: {"a": np.full(3, value)}, weights_hash="w")


def test_clear_deletes_only_what_the_cache_wrote(folder):
    make()
    make("other")
    mine = {"my_results.npz": b"PK mine", "config.json": b'{"key": "x"}', "notes.txt": b"hi",
            f"logp-{'a' * 24}.json": json.dumps({"key": "b" * 24, "kind": "logp"}).encode(),  # not its own key
            f"logp-{'a' * 24}.npz": b"user data", ".tmp-mine.json": b"{}"}
    for name, data in mine.items():
        (folder / name).write_bytes(data)
    old_tmp = folder / f".tmp-thing-{'c' * 24}-abcd1234.npz"  # a writer that died long ago
    old_tmp.write_bytes(b"stray")
    os.utime(old_tmp, (time.time() - 2 * cache.TMP_MAX_AGE,) * 2)
    assert cache.stats()["entries"] == 2
    assert cache.clear("thing") == 3 and cache.stats()["entries"] == 1  # its 2 files and its stray temp file
    assert cache.clear() == 2 and cache.stats()["entries"] == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(mine)
    assert all((folder / name).read_bytes() == data for name, data in mine.items())


def test_clear_refuses_the_shipped_cache(tmp_path, monkeypatch):
    shipped = tmp_path / "assets-cache"
    shutil.copytree(cache.ASSETS_CACHE, shipped)
    monkeypatch.setattr(cache, "ASSETS_CACHE", shipped)
    before = sorted(p.name for p in shipped.iterdir())
    for folder in (shipped, shipped / "sub", cache.REPO_ROOT / "assets" / "no-such-folder"):
        monkeypatch.setenv("EXPLORER_CACHE_DIR", str(folder))
        with pytest.raises(UserError, match="never deletes"):
            cache.clear()
    assert sorted(p.name for p in shipped.iterdir()) == before


def test_a_clear_during_a_write_does_not_kill_the_writer(folder, monkeypatch):
    real_fsync = os.fsync
    calls = []

    def clear_meanwhile(fd):  # another process clears while this one is writing its temp file
        real_fsync(fd)
        calls.append(cache.clear())

    monkeypatch.setattr(os, "fsync", clear_meanwhile)
    arrays, rec = make(value=2.0)
    assert calls == [0, 0], "a young temp file is left to its writer"
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert make(value=9.0)[1]["hit"]

    def delete_temp_files(fd):  # a clear that does delete it (e.g. rm .tmp-*): the writer writes again
        real_fsync(fd)
        if not calls[2:]:
            calls.append([p.unlink() for p in folder.glob(".tmp-*")])

    monkeypatch.setattr(os, "fsync", delete_temp_files)
    arrays, rec = make(x=2, value=3.0)
    assert len(calls[2]) == 1 and not rec["hit"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert make(x=2)[0]["a"].tolist() == [3.0] * 3


def test_two_processes_clearing_and_writing(folder):
    folder.mkdir(parents=True)
    code = ("import time\nfrom explorer import cache\nend = time.time() + 4\n"
            "while time.time() < end:\n    cache.clear()\n")
    clearer = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(cache.REPO_ROOT)})
    try:
        time.sleep(1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not even a warning: the clearer leaves young temp files alone
            for i in range(40):
                arrays, _ = cache.cached("job", {"i": i}, lambda i=i: {"a": np.arange(20000.0) + i},
                                         weights_hash="w")
                assert arrays["a"][0] == i
    finally:
        assert clearer.wait(timeout=60) == 0


@pytest.mark.parametrize("damage", ["truncated npz", "[]", "null", "string", "bad utf-8", "other key"])
def test_an_unreadable_entry_is_recomputed_and_replaced(folder, damage):
    _, rec = cache.cached("thing", {"x": 1}, lambda: {"a": np.arange(1000.0)}, weights_hash="w")
    npz, js = cache.paths("thing", rec["key"])
    if damage == "truncated npz":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    else:
        js.write_bytes({"[]": b"[]", "null": b"null", "string": b'"x"', "bad utf-8": b'{"key": "\xff"}',
                        "other key": json.dumps({**rec, "key": "0" * 24}).encode()}[damage])
    with pytest.warns(cache.CacheWarning, match="unreadable") as caught:
        arrays, again = cache.cached("thing", {"x": 1}, lambda: {"a": np.ones(2)}, weights_hash="w")
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert not again["hit"] and arrays["a"].tolist() == [1.0, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arrays, third = cache.cached("thing", {"x": 1}, lambda: {"a": np.zeros(1)}, weights_hash="w")
    assert third["hit"] and arrays["a"].tolist() == [1.0, 1.0], "the entry was replaced"


def test_an_unwritable_cache_warns_once_and_goes_on(folder, tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(a_file))
    with pytest.warns(cache.CacheWarning, match="cannot write to the cache folder") as caught:
        for x in range(3):
            arrays, rec = make(x=x, value=x)
            assert arrays["a"].tolist() == [x] * 3 and not rec["hit"]
    assert len(caught) == 1
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(folder))

    def read_only(path, data, prefix=".tmp-"):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "atomic_write", read_only)
    with pytest.warns(cache.CacheWarning, match="Permission denied"):
        assert make(value=5.0)[0]["a"].tolist() == [5.0] * 3


def test_the_cli_writes_its_output_when_the_cache_cannot_be_written(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "cache-is-a-file"
    a_file.write_text("")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(a_file))
    monkeypatch.setattr(cache, "_unwritable_warned", set(), raising=False)
    out = tmp_path / "mem"
    assert main(["memorization", "--model", "toy2d/ring", "--n", "6", "--steps", "5", "--no-likelihood",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: cannot write to the cache folder" in err and "Traceback" not in err
    assert json.loads(out.with_suffix(".json").read_text())["counts"]["n"] == 6
