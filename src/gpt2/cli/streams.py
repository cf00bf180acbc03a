"""The command's standard streams: stdin read as UTF-8 text, stdout guarded against going away.

A closed (`>&-`) or full (`>/dev/full`) stdout must end a command with a one-line error and a
non-zero exit, never an exit 0 that lost the output; a reader that goes away (`| head`) ends
it quietly. `gpt2 train` instead keeps training when its stdout goes away: its log is in the
run directory.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TextIO

from ..errors import StdoutError, StdoutGone, UsageError


def read_stdin_text(what: str = "stdin") -> str:
    """All of stdin as text; a one-line error when it is closed or not UTF-8."""
    if sys.stdin is None:
        raise UsageError(f"{what}: stdin is closed; pipe text in or give it as an argument")
    try:
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    except OSError as e:
        raise UsageError(f"{what}: cannot read stdin ({e.strerror or e})") from None
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{what}: stdin is not UTF-8 text (byte {e.start}: "
                         f"{data[e.start:e.start + 1]!r})") from None


def read_stdin_line(what: str = "stdin") -> str | None:
    """One line of stdin without its newline, None at EOF; one-line errors as read_stdin_text."""
    if sys.stdin is None:
        raise UsageError(f"{what}: stdin is closed; run it with a terminal or pipe prompts in")
    raw = sys.stdin.buffer.readline() if hasattr(sys.stdin, "buffer") else sys.stdin.readline()
    if not raw:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"{what}: stdin is not UTF-8 text (byte {e.start})") from None
    return raw.rstrip("\r\n")


class GuardedStdout:
    """Wraps sys.stdout: a write or flush that fails raises StdoutError (or StdoutGone for a
    broken pipe) instead of an OSError a caller might mistake for one of its own files; with
    `keep_going`, failures are reported once on stderr and later output is dropped."""

    def __init__(self, stream: TextIO | None, command: str, keep_going: bool = False) -> None:
        self._stream = stream
        self._command = command
        self._keep_going = keep_going
        self.lost: str | None = "stdout is closed" if stream is None else None
        if stream is None and keep_going:
            self._note("stdout is closed")

    def _note(self, reason: str) -> None:
        print(f"gpt2 {self._command}: warning: {reason}; going on without it "
              "(the log is in the run directory)", file=sys.stderr, flush=True)

    def _failed(self, e: OSError) -> None:
        reason = "stdout was closed by its reader" if e.errno == errno.EPIPE else \
            f"cannot write to stdout: {e.strerror or e}"
        self.lost = reason
        if self._keep_going:
            self._note(reason)
            return
        _silence_stdout_fd()
        if e.errno == errno.EPIPE:
            raise StdoutGone() from None
        raise StdoutError(f"{reason}; nothing more was written (redirect stdout to a file)") from None

    def _check_open(self) -> bool:
        if self.lost is None:
            return True
        if self._keep_going:
            return False
        raise StdoutError(f"{self.lost}; redirect stdout to a file or /dev/null")

    def write(self, text: str) -> int:
        if not self._check_open():
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as e:
            self._failed(e)
            return len(text)

    def flush(self) -> None:
        if not self._check_open():
            return
        try:
            self._stream.flush()
        except OSError as e:
            self._failed(e)

    def isatty(self) -> bool:
        return self.lost is None and self._stream.isatty()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _silence_stdout_fd() -> None:
    """Point fd 1 at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
