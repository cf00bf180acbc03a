"""Readers that turn the user's inputs into a stream of documents, one at a time.

Inputs: text files (one document each, or split on a separator), JSON Lines with a text field,
Parquet (with the optional `pyarrow`), directories (recursively, in sorted order so that runs are
reproducible), any of these compressed with gzip, bz2, xz or zstd (by suffix), and Hugging Face
datasets named `hf:NAME[:CONFIG]` (with the optional `datasets` library, streamed).

Bad input never stops a run silently or crashes it with a traceback: undecodable bytes and lone
surrogates (JSON escapes such as "\\ud83d" without their pair, common in scraped text, which no
later stage could encode) are replaced with U+FFFD and counted; empty files, skipped lines and
unreadable files (I/O errors, truncated or corrupt compression, corrupt Parquet, a Hugging Face
stream that fails midway) are counted; every count lands in the `SourceStats` that `prepare`
writes into the manifest. `strict=True` turns a skipped line or an unreadable file into a
DataError instead.
"""

from __future__ import annotations

import bz2
import codecs
import functools
import gzip
import importlib.util
import io
import json
import lzma
import os
import re
import socket
import sys
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..errors import DataError

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
# Files a directory walk picks up as plain text; named explicitly, any file is read as text.
TEXT_SUFFIXES = (".txt", ".text", ".md")
_CHUNK = 1 << 20
_MAX_EXAMPLES = 20  # problems listed by name in the report; the rest are only counted
_SURROGATE = re.compile("[\ud800-\udfff]")


class Document(NamedTuple):
    text: str
    origin: str  # "path", "path:line" or "hf:name#index": where to look when something is wrong


@dataclass
class SourceStats:
    """What the readers met on the way: counts plus a few named examples of each problem."""

    files: int = 0
    documents: int = 0
    bytes_read: int = 0
    empty_files: int = 0
    replaced_bytes: int = 0  # undecodable bytes
    replaced_surrogates: int = 0  # lone surrogate code points
    files_with_replacements: int = 0
    skipped_lines: dict[str, int] = field(default_factory=dict)  # reason -> count
    unreadable: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(message)

    def skip_line(self, reason: str, where: str, strict: bool) -> None:
        if strict:
            raise DataError(f"{where}: {reason} (drop --strict to skip such lines and count them)")
        self.skipped_lines[reason] = self.skipped_lines.get(reason, 0) + 1
        self.note(f"{where}: {reason}; skipped")

    def without_surrogates(self, text: str) -> str:
        """`text` with each lone surrogate replaced by U+FFFD (counted): it cannot be encoded, so
        hashing, tokenizing or writing it would fail later."""
        text, n = _SURROGATE.subn("\ufffd", text)
        self.replaced_surrogates += n
        return text

    def unreadable_source(self, where: str, error: BaseException, strict: bool) -> None:
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
        else:  # a library's own class: its name says what went wrong (ZstdError, ArrowInvalid, ...)
            reason = f"{type(error).__name__}: {error}"
        if strict:
            raise DataError(f"{where}: cannot be read ({reason}); fix or remove it") from None
        self.unreadable += 1
        self.note(f"{where}: cannot be read ({reason}); skipped (documents read before the fault are kept)")

    def to_dict(self) -> dict:
        return {
            "files": self.files, "documents": self.documents, "bytes_read": self.bytes_read,
            "empty_files": self.empty_files, "replaced_bytes": self.replaced_bytes,
            "replaced_surrogates": self.replaced_surrogates,
            "files_with_replacements": self.files_with_replacements,
            "skipped_lines": dict(sorted(self.skipped_lines.items())),
            "unreadable_files": self.unreadable, "examples": list(self.examples),
        }


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    separator: str | None = None  # splits .txt files into documents; None: one document per file
    strict: bool = False


class _ReplaceCounter:
    """A codec error handler that replaces undecodable bytes with U+FFFD and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.name = f"gpt2-data-replace-{id(self)}"
        codecs.register_error(self.name, self)

    def __call__(self, err: UnicodeDecodeError) -> tuple[str, int]:
        self.count += err.end - err.start
        return "\ufffd", err.end


_COUNTER = _ReplaceCounter()


def _decoder():
    return codecs.getincrementaldecoder("utf-8")(errors=_COUNTER.name)


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Resolve the inputs to an ordered list of files and hf: names; a missing path is an error."""
    out: list[str] = []
    for item in inputs:
        s = os.fspath(item)
        if s.startswith("hf:"):
            check_hub(s)
            out.append(s)
            continue
        path = Path(s)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and _kind(p, from_directory=True) is not None
            )
            out.extend(str(p) for p in found)
        elif path.exists():
            out.append(str(path))
        else:
            raise DataError(f"{s}: no such file or directory (check the path, or write hf:NAME for a "
                            f"Hugging Face dataset)")
    return out


def _strip_compression(name: str) -> tuple[str, str | None]:
    lower = name.lower()
    for suffix in COMPRESSIONS:
        if lower.endswith(suffix):
            return lower[: -len(suffix)], suffix
    return lower, None


def _kind(path: Path, from_directory: bool = False) -> str | None:
    base, _ = _strip_compression(path.name)
    if base.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if base.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if base.endswith(TEXT_SUFFIXES) or not from_directory:
        return "text"
    return None


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a file for reading, decompressing by suffix (.gz, .bz2, .xz, .zst)."""
    _, compression = _strip_compression(os.fspath(path))
    if compression == ".gz":
        return gzip.open(path, "rb")
    if compression == ".bz2":
        return bz2.open(path, "rb")
    if compression == ".xz":
        return lzma.open(path, "rb")
    if compression == ".zst":
        try:
            import zstandard
        except ImportError:
            raise DataError(f"{path}: reading .zst needs zstandard (pip install 'gpt2[data]')") from None
        raw = open(path, "rb")
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return open(path, "rb")


def _is_read_error(e: Exception) -> bool:
    """Whether `e` says the file itself is unreadable: I/O, truncation, corrupt compression or Parquet."""
    if isinstance(e, (OSError, EOFError, lzma.LZMAError, zlib.error)):
        return True
    # The optional readers' own error classes (not OSErrors), looked up only once they are loaded.
    for module, name in (("zstandard", "ZstdError"), ("pyarrow", "ArrowException")):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(e, cls):
            return True
    return False


def iter_documents(inputs: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(),
                   stats: SourceStats | None = None) -> Iterator[Document]:
    """Every document of every input, in order, streamed (memory stays bounded by one document)."""
    stats = stats if stats is not None else SourceStats()
    for item in expand_inputs(inputs):
        before = _COUNTER.count, stats.replaced_surrogates
        try:
            if item.startswith("hf:"):
                yield from _hf_documents(item, options, stats)
                continue
            stats.files += 1
            kind = _kind(Path(item))
            if kind == "jsonl":
                yield from _jsonl_documents(item, options, stats)
            elif kind == "parquet":
                yield from _parquet_documents(item, options, stats)
            else:
                yield from _text_documents(item, options, stats)
        except Exception as e:
            if isinstance(e, DataError) or not _is_read_error(e):
                raise
            stats.unreadable_source(item, e, options.strict)
        finally:
            replaced = _COUNTER.count - before[0]
            surrogates = stats.replaced_surrogates - before[1]
            stats.replaced_bytes += replaced
            if replaced or surrogates:
                stats.files_with_replacements += 1
                what = [f"{replaced} undecodable byte(s)"] * bool(replaced) + \
                    [f"{surrogates} lone surrogate(s)"] * bool(surrogates)
                stats.note(f"{item}: {' and '.join(what)} replaced with U+FFFD")


def _read_chunks(path: str, stats: SourceStats) -> Iterator[str]:
    decoder = _decoder()
    with open_binary(path) as f:
        while chunk := f.read(_CHUNK):
            stats.bytes_read += len(chunk)
            yield decoder.decode(chunk)
    if tail := decoder.decode(b"", final=True):
        yield tail


def _text_documents(path: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    sep = options.separator
    if sep is None:
        text = "".join(_read_chunks(path, stats))
        if not text:
            stats.empty_files += 1
            stats.note(f"{path}: empty file")
            return
        stats.documents += 1
        yield Document(text, path)
        return
    # Split as the chunks arrive; a document's earlier parts are kept in a list, so a long one costs
    # linear time, and the last len(sep) - 1 characters wait in `tail` for a separator across chunks.
    parts: list[str] = []
    tail, index, any_text, keep = "", 0, False, len(sep) - 1
    for chunk in _read_chunks(path, stats):
        any_text = any_text or bool(chunk)
        s, pos = tail + chunk, 0
        while (i := s.find(sep, pos)) != -1:
            parts.append(s[pos:i])
            stats.documents += 1
            yield Document("".join(parts), f"{path}#{index}")
            parts, index, pos = [], index + 1, i + len(sep)
        rest = s[pos:]
        cut = max(len(rest) - keep, 0)
        parts.append(rest[:cut])
        tail = rest[cut:]
    if not any_text:
        stats.empty_files += 1
        stats.note(f"{path}: empty file")
        return
    parts.append(tail)
    stats.documents += 1
    yield Document("".join(parts), f"{path}#{index}")


def _jsonl_documents(path: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    key = options.text_field
    lines = 0
    with open_binary(path) as raw:
        for number, line in enumerate(io.BufferedReader(raw, _CHUNK), 1):  # type: ignore[arg-type]
            stats.bytes_read += len(line)
            if not line.strip():
                continue
            lines += 1
            where = f"{path}:{number}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                text = line.decode("utf-8", errors=_COUNTER.name)
            try:
                record = json.loads(text)
            except ValueError:
                stats.skip_line("not valid JSON", where, options.strict)
                continue
            if not isinstance(record, dict) or key not in record:
                stats.skip_line(f'no "{key}" field (choose another with --text-field)', where, options.strict)
                continue
            value = record[key]
            if not isinstance(value, str):
                stats.skip_line(f'"{key}" is not a string', where, options.strict)
                continue
            if b"\\ud" in line or b"\\uD" in line:  # only a \uXXXX escape can make a lone surrogate
                value = stats.without_surrogates(value)
            stats.documents += 1
            yield Document(value, where)
    if lines == 0:
        stats.empty_files += 1
        stats.note(f"{path}: empty file")


def _parquet_documents(path: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'gpt2[data]')") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
        raise OSError(f"not a Parquet file: {e}") from None
    key = options.text_field
    if key not in pf.schema_arrow.names:
        raise DataError(f'{path}: no "{key}" column (it has {", ".join(pf.schema_arrow.names)}); '
                        f"choose one with --text-field")
    stats.bytes_read += os.path.getsize(path)
    row = 0
    for batch in pf.iter_batches(columns=[key], batch_size=1024):
        column = batch.column(0)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # As bytes (a zero-copy cast): invalid UTF-8 is replaced and counted, not an error.
            column = column.cast(pa.large_binary())
        for value in column.to_pylist():
            where = f"{path}#{row}"
            row += 1
            if not isinstance(value, bytes):
                stats.skip_line(f'"{key}" is not a string', where, options.strict)
                continue
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                text = value.decode("utf-8", errors=_COUNTER.name)
            stats.documents += 1
            yield Document(text, where)
    if row == 0:
        stats.empty_files += 1
        stats.note(f"{path}: empty file")


_TRUE = ("1", "true", "yes", "on")
_PROBE_SECONDS = 3.0


@functools.lru_cache(maxsize=None)
def _hub_problem() -> str | None:
    """Why the Hugging Face hub cannot be used now (None: it can, as far as a quick look tells):
    offline mode, or no connection to its host within a few seconds. `datasets` itself would
    retry for half a minute before saying so."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set (offline mode)"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # through a proxy: a direct connection says nothing
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=_PROBE_SECONDS).close()
    except OSError as e:
        return f"cannot reach {host}:{port} ({e.strerror or e or 'timed out'})"
    return None


def check_hub(spec: str) -> None:
    """Fail at once, naming the reason, when `hf:NAME` cannot be read: no `datasets`, or no hub."""
    if not spec[3:].partition(":")[0]:
        raise DataError(f"{spec}: no dataset name; write hf:NAME or hf:NAME:CONFIG")
    if "datasets" not in sys.modules and importlib.util.find_spec("datasets") is None:
        raise DataError(f"{spec}: Hugging Face datasets need the datasets package (pip install 'gpt2[data]')")
    problem = _hub_problem()
    if problem:
        raise DataError(f"{spec}: the Hugging Face hub cannot be used: {problem}; use local files instead, "
                        f"or run where the hub is reachable")


def _hf_documents(spec: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    name, _, config = spec[3:].partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{spec}: Hugging Face datasets need the datasets package (pip install 'gpt2[data]')") from None
    try:
        records = iter(datasets.load_dataset(name, config or None, split="train", streaming=True))
    except Exception as e:  # offline, unknown name, gated: the library raises many kinds
        raise DataError(f"{spec}: cannot open the Hugging Face dataset ({type(e).__name__}: {e})") from None
    key = options.text_field
    index = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as e:  # the network, a corrupt shard: the library raises many kinds;
            # as an OSError it counts as an unreadable input (or stops the run with strict).
            raise OSError(f"the stream failed at record {index} ({type(e).__name__}: {e})") from None
        value = record.get(key) if isinstance(record, dict) else None
        where = f"{spec}#{index}"
        index += 1
        if not isinstance(value, str):
            stats.skip_line(f'no string "{key}" field (choose another with --text-field)', where, options.strict)
            continue
        stats.documents += 1
        yield Document(stats.without_surrogates(value), where)
