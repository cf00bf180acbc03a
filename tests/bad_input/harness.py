"""The bad-input harness: run `gpt2 ...` in a subprocess the way a user would and check that it
fails the way the README promises.

A Case is one row of the table. By default it must end with exit code 2, exactly one line on
stderr (`gpt2 CMD: error: ...`, matching `match`), nothing on stdout, no traceback, and no file
written, changed or deleted under the case's own directory or the shared assets. Rows live in
`cases_<command>.py` modules (one per subcommand); `test_bad_input.py` runs them all and checks
that every option of every subcommand appears in at least one row.

In argv, `{tmp}` is the case's own empty directory (also the working directory) and `{NAME}` is
a shared asset (see conftest.py: ckpt, text, data, recipe, run, ...).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Case:
    id: str                                   # unique, short, says what is wrong
    argv: tuple[str, ...]                     # after `gpt2`; placeholders {tmp}, {ckpt}, ...
    match: str | None = None                  # regex the error line must contain (re.search)
    stdin: bytes | str | None = None          # bytes to feed, "closed" (fd 0 closed), None (/dev/null)
    stdout: str = "pipe"                      # "pipe", "closed" (fd 1 closed) or "full" (/dev/full)
    setup: Callable[[Path, dict], None] | None = None  # setup(tmp, assets) makes the case's files
    env: dict = field(default_factory=dict)   # extra environment; a None value removes the variable
    expect: int = EXIT_USAGE
    interrupt: float | str | None = None      # SIGINT after this many seconds / once stderr or stdout matches
    deadline: float = 3.0                     # seconds allowed between SIGINT and exit
    only_line: bool = True                    # False: progress lines may come before the error line
    may_write: bool = False                   # True: the command may leave files (e.g. a checkpoint)
    timeout: float = 120.0

    @property
    def command(self) -> str:
        """The subcommand the row exercises (`tokenizer encode` counts as `tokenizer encode`)."""
        if self.argv and self.argv[0] == "tokenizer" and len(self.argv) > 1:
            return f"tokenizer {self.argv[1]}"
        return self.argv[0] if self.argv else ""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed_after_interrupt: float | None = None


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file and directory under the roots, with sizes and content hashes."""
    state: dict[str, tuple] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            key = str(path)
            if path.is_symlink():
                state[key] = ("link", os.readlink(path))
            elif path.is_dir():
                state[key] = ("dir",)
            else:
                state[key] = ("file", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def write_file(name: str, content: str | bytes, *, fill: bool = False) -> Callable[[Path, dict], None]:
    """A setup that writes {tmp}/NAME (parents made); with `fill`, text content's {asset}
    placeholders are replaced by the shared assets' paths first."""

    def setup(tmp: Path, assets: dict) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            text = content.format(**{k: str(v) for k, v in assets.items()}) if fill else content
            path.write_text(text, encoding="utf-8")

    return setup


def gpt2_command() -> list[str]:
    """The `gpt2` entry script that pip installed beside this interpreter (what a user runs),
    else `python -m gpt2.cli.main`."""
    script = Path(sys.executable).parent / "gpt2"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "gpt2.cli.main"]


def expand(argv: tuple[str, ...], names: dict[str, str]) -> list[str]:
    return [arg.format(**names) for arg in argv]


def run_case(case: Case, tmp: Path, assets: dict[str, Path]) -> Result:
    names = {k: str(v) for k, v in assets.items()} | {"tmp": str(tmp)}
    argv = [*gpt2_command(), *expand(case.argv, names)]
    env = dict(os.environ)
    for key, value in case.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.format(**names)

    closes: list[int] = []
    stdin_arg = subprocess.DEVNULL
    if case.stdin == "closed":
        closes.append(0)
    elif case.stdin is not None:
        stdin_arg = subprocess.PIPE
    stdout_arg = subprocess.PIPE
    full = None
    if case.stdout == "closed":
        closes.append(1)
        stdout_arg = subprocess.DEVNULL
    elif case.stdout == "full":
        full = open("/dev/full", "wb")
        stdout_arg = full

    def preexec() -> None:
        for fd in closes:
            os.close(fd)

    proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=stdin_arg, stdout=stdout_arg,
                            stderr=subprocess.PIPE, preexec_fn=preexec if closes else None)
    try:
        if case.interrupt is None:
            data = case.stdin.encode() if isinstance(case.stdin, str) and case.stdin != "closed" else case.stdin
            out, err = proc.communicate(data if stdin_arg == subprocess.PIPE else None, timeout=case.timeout)
            return Result(proc.returncode, (out or b"").decode(errors="replace"), err.decode(errors="replace"))
        return _interrupt(proc, case)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if full is not None:
            full.close()


def _interrupt(proc: subprocess.Popen, case: Case) -> Result:
    """Send SIGINT after a delay, or once stderr or stdout matches; then time how long the exit takes."""
    import selectors

    seen = {"stdout": b"", "stderr": b""}
    start = time.monotonic()
    sel = selectors.DefaultSelector()
    for name in seen:
        stream = getattr(proc, name)
        if stream is not None:
            sel.register(stream, selectors.EVENT_READ, name)
    if isinstance(case.interrupt, str):
        pattern = re.compile(case.interrupt)
        while not any(pattern.search(v.decode(errors="replace")) for v in seen.values()):
            if time.monotonic() - start > case.timeout or proc.poll() is not None:
                raise AssertionError(f"never saw {case.interrupt!r} before exit/timeout; "
                                     f"stderr: {seen['stderr'].decode(errors='replace')[-2000:]}")
            for key, _ in sel.select(timeout=0.05):
                seen[key.data] += os.read(key.fileobj.fileno(), 65536)
    else:
        time.sleep(case.interrupt)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=case.deadline + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running {case.deadline + 30:.0f} s after SIGINT; stderr: "
                             f"{(seen['stderr'] + err).decode(errors='replace')[-2000:]}")
    elapsed = time.monotonic() - sent
    return Result(proc.returncode, (seen["stdout"] + (out or b"")).decode(errors="replace"),
                  (seen["stderr"] + err).decode(errors="replace"), elapsed)


def check(case: Case, result: Result) -> None:
    """The promise: the exit code, one error line (the last one), no traceback, clean stdout."""
    where = f"[{case.id}] gpt2 {' '.join(case.argv)}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, f"{where}: traceback:\n{result.stderr[-3000:]}"
    assert result.returncode == case.expect, (
        f"{where}: exit code {result.returncode}, expected {case.expect}; stderr:\n{result.stderr[-3000:]}")
    assert lines, f"{where}: nothing on stderr"
    last = lines[-1]
    if case.expect == EXIT_INTERRUPTED:
        assert re.search(r"^gpt2( [\w ]*)?: interrupted", last), f"{where}: last stderr line {last!r}"
        assert result.elapsed_after_interrupt is not None and result.elapsed_after_interrupt <= case.deadline, (
            f"{where}: took {result.elapsed_after_interrupt:.1f} s after SIGINT (allowed {case.deadline} s)")
        return
    if case.only_line:
        assert len(lines) == 1, f"{where}: {len(lines)} stderr lines, expected one:\n{result.stderr[-3000:]}"
    assert re.match(r"^gpt2( [\w-]+)*: error: \S", last), f"{where}: not a gpt2 error line: {last!r}"
    if case.match:
        assert re.search(case.match, last), f"{where}: error line {last!r} does not match {case.match!r}"
    if case.stdout == "pipe":
        assert result.stdout == "", f"{where}: stdout not empty on error: {result.stdout[:500]!r}"
