"""Publishing a prepared dataset: a crash at any step of it loses nothing and a re-run finishes
the job; output-side failures are one-line errors; the dataset's identity follows the files."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from gpt2.cli.main import main as cli
from gpt2.data import DataError, Dataset, PrepareConfig, prepare

OLD = PrepareConfig(near_dedup=None, val_fraction=0.5, shard_tokens=2500)
NEW = PrepareConfig(near_dedup=None, val_fraction=0.2, shard_tokens=2500)


class _Crash(BaseException):
    """Stands for a kill: nothing in prepare catches it, so whatever was on disk stays."""


def files(directory: Path) -> dict[str, bytes]:
    """Every file in the directory tree, by relative path."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def crash_publishing_at(monkeypatch, step: int) -> list[str]:
    """Make prepare's publishing die before its `step`-th rename or deletion (counting from 0);
    returns the list of steps it took, which a step past the end leaves complete."""
    prep = sys.modules["gpt2.data.prepare"]
    publish, taken = prep._publish, []

    def crashing_publish(*args):
        with monkeypatch.context() as m:
            for module, name in ((os, "replace"), (os, "unlink"), (shutil, "rmtree")):
                real = getattr(module, name)

                def step_then(*a, _real=real, _name=name, **k):
                    if len(taken) == step:
                        raise _Crash
                    taken.append(_name)
                    return _real(*a, **k)

                m.setattr(module, name, step_then)
            publish(*args)

    monkeypatch.setattr(prep, "_publish", crashing_publish)
    return taken


def assert_one_whole_dataset(out: Path, expected: list[dict[str, bytes]]) -> None:
    """OUT's manifest is one of the expected datasets', and every shard it lists is there, intact."""
    manifest = (out / "manifest.json").read_bytes()
    match = [ds for ds in expected if ds["manifest.json"] == manifest]
    assert match, "the manifest is neither the old one nor the new one"
    ds = Dataset(out)
    ds.verify()
    for split in ds.splits:
        for path in ds.shard_paths(split):
            assert path.read_bytes() == match[0][path.name]


def test_a_crash_at_any_step_of_publishing_loses_nothing(corpus, tmp_path, monkeypatch):
    src = [corpus["path"]]
    prepare(src, tmp_path / "old", config=OLD, workers=0)
    prepare(src, tmp_path / "new", config=NEW, workers=0)
    old, new = files(tmp_path / "old"), files(tmp_path / "new")
    assert set(old) & set(new) == {"manifest.json"}  # no shard name of the old dataset is reused
    # Publishing NEW over OLD: move each new shard in, the manifest, delete the old shards, .partial.
    steps = crash_publishing_at(monkeypatch, step=10**6)
    shutil.copytree(tmp_path / "old", tmp_path / "out")
    prepare(src, tmp_path / "out", config=NEW, workers=0, overwrite=True)
    monkeypatch.undo()
    assert files(tmp_path / "out") == new  # the old dataset's shards are gone, nothing extra is left
    n_steps = len(steps)
    assert n_steps == (len(new) - 1) + 1 + (len(old) - 1) + 1

    for step in range(n_steps):
        out = tmp_path / f"out{step}"
        shutil.copytree(tmp_path / "old", out)
        crash_publishing_at(monkeypatch, step)
        with pytest.raises(_Crash):
            prepare(src, out, config=NEW, workers=0, overwrite=True)
        monkeypatch.undo()
        assert_one_whole_dataset(out, [old, new])  # the previous dataset until the commit, then the new
        prepare(src, out, config=NEW, workers=0, overwrite=True)  # the same settings again
        assert files(out) == new, f"after a crash at step {step} ({steps[step]})"


def test_a_first_run_crashed_while_publishing_is_finished_without_overwrite(corpus, tmp_path, monkeypatch):
    src = [corpus["path"]]
    prepare(src, tmp_path / "new", config=NEW, workers=0)
    new = files(tmp_path / "new")
    for step in (1, len(new) - 1):  # some shards moved in; all of them, but no manifest yet
        out = tmp_path / f"out{step}"
        crash_publishing_at(monkeypatch, step)
        with pytest.raises(_Crash):
            prepare(src, out, config=NEW, workers=0)
        monkeypatch.undo()
        assert not (out / "manifest.json").exists() and list(out.glob("*.bin"))
        prepare(src, out, config=NEW, workers=0)  # our own leftovers: no --overwrite needed
        assert files(out) == new


def test_overwrite_into_a_directory_removes_only_our_leftovers(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "train-00007-0123456789abcdef.bin").write_bytes(b"a shard no manifest lists")
    (out / ".partial").mkdir()
    (out / ".partial" / "val-00000-0123456789abcdef.bin").write_bytes(b"an interrupted run's")
    prepare([corpus["path"]], out, config=NEW, workers=0, overwrite=True)
    prepare([corpus["path"]], tmp_path / "ref", config=NEW, workers=0)
    assert files(out) == files(tmp_path / "ref") | {"notes.txt": b"mine"}


def test_output_directory_that_cannot_be_created(corpus, tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "out"
    assert cli(["prepare", str(corpus["path"]), "-o", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{out}: cannot create the output directory (Not a directory)" in err


class _FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written."""

    def __init__(self, f, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def test_disk_full_while_writing_shards(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    prepare([corpus["path"]], out, config=OLD, workers=0)
    before = files(out)
    shards = sys.modules["gpt2.data.shards"]
    monkeypatch.setattr(shards, "open", lambda path, mode="r", *a, **k: _FullDisk(builtins.open(path, mode, *a, **k),
                                                                                  room=3000), raising=False)
    assert cli(["prepare", str(corpus["path"]), "-o", str(out), "--workers", "0", "--overwrite", "--no-near-dedup",
                "--shard-tokens", "2500"]) == 2
    err = capsys.readouterr().err.strip()
    # Progress lines may come before a failure in mid-run; the error is the last line, alone.
    assert "Traceback" not in err
    assert ".train-00000.bin.tmp: cannot write (No space left on device)" in err.splitlines()[-1]
    assert files(out) == before  # the previous dataset is untouched, and no staging is left behind


def test_identity_follows_the_files_not_their_names(corpus, tmp_path, monkeypatch, prose):
    monkeypatch.chdir(corpus["dir"])
    out = tmp_path / "out"
    prepare(["corpus.jsonl"], out, config=NEW, workers=0)
    first = json.loads((out / "manifest.json").read_text())["fingerprint"]
    prepare([corpus["path"]], out, config=NEW, workers=0)  # the same file by its absolute path
    assert json.loads((out / "manifest.json").read_text())["fingerprint"] == first
    with open(corpus["path"], "a", encoding="utf-8") as f:  # changed in place
        f.write(json.dumps({"text": prose(99)}) + "\n")
    with pytest.raises(DataError, match="already holds a different prepared dataset"):
        prepare([corpus["path"]], out, config=NEW, workers=0)
