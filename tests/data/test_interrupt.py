"""Ctrl-C during `gpt2 prepare`, at several moments: exit 130 within two seconds with one line, no
worker traceback, no process left behind, and OUT as it was (or, once the manifest is switched,
the new dataset whole).

A terminal's Ctrl-C sends SIGINT to the whole process group, workers included; `kill -INT` only
to the main process. Both are tested, on a process started in its own session.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpt2.data import CleanConfig, Dataset, PrepareConfig, prepare

# As the `gpt2` console script runs it. Not `python -m gpt2.cli.main`: under -m, CPython turns the
# exit status 130 into a death by SIGINT when the KeyboardInterrupt was first raised inside code
# run by exec/eval (a namedtuple being made during an import, say), a flaw of -m, not of gpt2.
GPT2 = [sys.executable, "-c", "import sys; from gpt2.cli.main import main; sys.exit(main())"]
DEADLINE = 3.0  # as the bad-input table allows; typically well under a second
FAST = PrepareConfig(clean=CleanConfig(quality=None), near_dedup=None, val_fraction=0.0, shard_tokens=2000)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux's /proc)."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # a descriptor closed while looking
        return False


def interrupt_when(argv: list[str], cwd: Path, pattern: str | None, group: bool, delay: float = 0.0,
                   opened: Path | None = None) -> tuple[int, str, float]:
    """Run `gpt2 ARGV`, send SIGINT `delay` seconds after stderr matches `pattern` (or once it has
    file `opened` open), to the process group or the main process only; returns (exit code,
    stderr, seconds from SIGINT to exit). Also checks that no process of the group outlives it
    by more than the deadline."""
    proc = subprocess.Popen([*GPT2, *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        err = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            while not (re.search(pattern, err.decode(errors="replace")) if pattern else has_open(proc.pid, opened)):
                assert proc.poll() is None, f"ended before {pattern!r}: {err.decode(errors='replace')}"
                if sel.select(timeout=0.05):
                    err += os.read(proc.stderr.fileno(), 65536)
        time.sleep(delay)
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
        elapsed = time.monotonic() - sent
        while alive := live_processes(proc.pid):  # the forkserver and the workers go too
            if time.monotonic() - sent > DEADLINE + 1:
                raise AssertionError(f"processes of the run outlived it: {alive}")
            time.sleep(0.05)
        return proc.returncode, (err + rest).decode(errors="replace"), elapsed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def live_processes(group: int) -> list[str]:
    """The processes of a process group that still run (zombies are dead: in a container whose
    first process does not reap orphans they stay listed)."""
    ps = subprocess.run(["ps", "-o", "stat=,args=", "-g", str(group)], capture_output=True, text=True)
    return [line for line in ps.stdout.splitlines() if line.strip() and not line.lstrip().startswith("Z")]


def assert_interrupted(code: int, stderr: str, elapsed: float, command: str = "prepare") -> None:
    assert "Traceback" not in stderr, stderr
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == f"gpt2 {command}: interrupted", stderr
    assert elapsed <= DEADLINE, f"{elapsed:.1f} s from SIGINT to exit"


@pytest.fixture
def corpus(tmp_path: Path, prose) -> Path:
    path = tmp_path / "in.jsonl"
    # Enough that 2 workers are still busy 0.4 s after they start, however fast the machine.
    path.write_text("".join(json.dumps({"text": prose(i, 150)}) + "\n" for i in range(2000)), encoding="utf-8")
    return path


@pytest.mark.parametrize("group, delay", [(True, 0.0), (True, 0.4), (False, 0.4)],
                         ids=["group-at-start", "group-workers-starting", "main-process-workers-starting"])
def test_ctrl_c_while_workers_start(tmp_path, corpus, group, delay):
    out = tmp_path / "out"
    result = interrupt_when(["prepare", str(corpus), "-o", str(out), "--workers", "2"], tmp_path,
                            r"reading 1 input file", group, delay)
    assert_interrupted(*result)
    assert not out.exists()  # not even the directory it made


def test_ctrl_c_mid_tokenization_keeps_the_previous_dataset(tmp_path, corpus):
    out = tmp_path / "out"
    prepare([corpus], out, config=FAST, workers=0)
    before = snapshot(out)
    from gpt2.data.corpus import corpus_path

    demo = str(corpus_path("demo"))  # three times: still running after the first count, on any machine
    argv = ["prepare", demo, demo, demo, "-o", str(out), "--workers", "2", "--overwrite", "--no-quality"]
    result = interrupt_when(argv, tmp_path, r"\d documents, .* MB/s", group=True)  # the first count, after ~1 s
    assert_interrupted(*result)
    assert snapshot(out) == before


def test_ctrl_c_while_publishing_leaves_out_as_it_was(tmp_path, corpus, prose, monkeypatch):
    prep = sys.modules["gpt2.data.prepare"]
    out = tmp_path / "out"
    prepare([corpus], out, config=FAST, workers=0)
    before = snapshot(out)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": prose(999, 3000)}) + "\n", encoding="utf-8")
    real_replace = os.replace

    def replace_then_interrupt(src, dst):  # Ctrl-C right after the first new shard moves into OUT
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(prep.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare([other], out, config=FAST, workers=0, overwrite=True)
    monkeypatch.undo()
    assert snapshot(out) == before
    Dataset(out).verify()


def test_ctrl_c_after_the_manifest_switched_leaves_the_new_dataset_whole(tmp_path, corpus, prose, monkeypatch):
    prep = sys.modules["gpt2.data.prepare"]
    out = tmp_path / "out"
    prepare([corpus], out, config=FAST, workers=0)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": prose(999, 3000)}) + "\n", encoding="utf-8")
    expected = prepare([other], tmp_path / "ref", config=FAST, workers=0)
    real_write = prep.atomic_write_json

    def write_then_interrupt(path, data):  # Ctrl-C just after the commit point
        real_write(path, data)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(prep, "atomic_write_json", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare([other], out, config=FAST, workers=0, overwrite=True)
    monkeypatch.undo()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"] == expected["fingerprint"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())
    Dataset(out).verify()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_ctrl_c_while_overlap_reads_the_training_data(tmp_path):
    from gpt2.data.corpus import corpus_path

    corpus = corpus_path("demo").resolve()
    (tmp_path / "eval.txt").write_text("To be, or not to be, that is the question: Whether 'tis nobler "
                                       "in the mind to suffer", encoding="utf-8")
    result = interrupt_when(["overlap", str(corpus), "--eval", str(tmp_path / "eval.txt")], tmp_path,
                            None, group=True, opened=corpus)
    assert_interrupted(*result, command="overlap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.txt"]
