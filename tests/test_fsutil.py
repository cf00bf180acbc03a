"""The filesystem layer: atomic writes leave the old file or the new one, never a mix or a temp."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from gpt2 import fsutil


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    fsutil.atomic_write_json(target, {"x": [1, 2], "é": "ü"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"x": [1, 2], "é": "ü"}
    assert target.read_text(encoding="utf-8").endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failure_inside_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with fsutil.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        fsutil.atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640


def test_temp_names_are_recognised(tmp_path):
    with fsutil.atomic_path(tmp_path / "c.txt") as tmp:
        assert fsutil.is_temp_name(tmp.name) and tmp.parent == tmp_path
        tmp.write_text("x")
    assert not fsutil.is_temp_name("c.txt")


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "d").write_bytes(data)
    assert fsutil.sha256_file(tmp_path / "d") == hashlib.sha256(data).hexdigest()


def test_atomic_write_files_is_all_or_nothing(tmp_path, monkeypatch):
    (tmp_path / "a").write_bytes(b"old a")
    real_fsync, calls = os.fsync, []

    def fsync_failing_on_the_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_on_the_second)
    with pytest.raises(OSError, match="No space left"):
        fsutil.atomic_write_files(tmp_path, {"a": b"new a", "b": b"new b"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert (tmp_path / "a").read_bytes() == b"old a"
    monkeypatch.undo()
    paths = fsutil.atomic_write_files(tmp_path, {"a": b"new a", "b": b"new b"})
    assert paths == [tmp_path / "a", tmp_path / "b"]
    assert [p.read_bytes() for p in paths] == [b"new a", b"new b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_check_writable_leaves_nothing_and_refuses_a_missing_directory(tmp_path):
    fsutil.check_writable(tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        fsutil.check_writable(tmp_path / "missing" / "x.png")
