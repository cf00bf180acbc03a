"""The one filesystem layer: atomic writes, directory fsync, file hashes.

An atomic write puts the data in a temporary file in the target's own directory (so the rename
cannot cross filesystems), fsyncs it, gives it the permissions a plain `open` would (umask),
renames it over the target and fsyncs the directory so the rename survives a power cut. On any
failure, including Ctrl-C, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

_CHUNK = 1 << 20


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make renames and deletions in directory `path` durable (a no-op where unsupported)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself has happened
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _new_temp(path: Path) -> Path:
    """An empty temporary file beside `path` (a name is_temp_name recognises)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _seal(tmp: Path) -> None:
    """Give a written temporary file its final permissions and put its bytes on disk."""
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it replaces `path`."""
    path = Path(path)
    tmp = _new_temp(path)
    try:
        yield tmp
        _seal(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Create and remove the temporary file an atomic write of `path` would use: OSError where
    it cannot (a read-only or full directory), before any work that would be lost."""
    _new_temp(Path(path)).unlink()


def atomic_write_files(directory: str | os.PathLike[str], files: Mapping[str, bytes]) -> list[Path]:
    """Write several files into `directory` all or nothing: every one is written and fsynced
    under a temporary name before the first is renamed, so a failure while writing (a full disk,
    Ctrl-C) leaves the old files and no temporaries. Returns the files' paths."""
    directory = Path(directory)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in files.items():
            path = directory / name
            staged.append((_new_temp(path), path))
            staged[-1][0].write_bytes(data)
            _seal(staged[-1][0])
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the original error is the one to report
        raise
    fsync_dir(directory)
    return [path for _, path in staged]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))  # the text's own line endings on every platform


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """JSON (UTF-8, a final newline) written atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of atomic_path's temporaries (for cleaning up after a crash)."""
    return name.startswith(".") and name.endswith(".tmp")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
