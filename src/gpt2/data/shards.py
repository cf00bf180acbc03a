"""The on-disk format of a prepared dataset: token shards plus manifest.json.

A shard is a 32-byte header followed by the tokens, little-endian:

    offset  size  field
    0       8     magic b"GPT2TOK\\0"
    8       4     format version (1)
    12      4     bytes per token: 2 (uint16, vocabularies up to 65,536) or 4 (uint32)
    16      8     token count
    24      8     document count (each document ends with the end-of-text token)

so `np.memmap(path, dtype, offset=32, shape=(count,))` reads it without copying. A shard is
written under a temporary name and renamed when complete, so a visible shard is never partial.
Its name, `{split}-{index:05d}-{sha256[:16]}.bin`, carries its content hash: a new dataset's
shards never take the name of an old one's with other bytes, which lets `prepare` put them next to
the old dataset before switching the manifest (see prepare.py). Readers trust only the shards the
manifest lists.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fsutil import atomic_write_text, fsync_dir, sha256_file

MAGIC = b"GPT2TOK\0"
VERSION = 1
HEADER = struct.Struct("<8sIIQQ")
HEADER_SIZE = HEADER.size  # 32
MANIFEST = "manifest.json"
FORMAT = "gpt2-token-shards"
SHARD_NAME = re.compile(r"[a-z]+-\d{5}-[0-9a-f]{16}\.bin")
SHARD_TEMP_NAME = re.compile(r"\.[a-z]+-\d{5}\.bin\.tmp")  # ShardWriter's, before the hash names the shard


def output_error(path: str | os.PathLike, e: OSError) -> DataError:
    """The one-line error for a failed write (disk full, permissions, a path that is a file)."""
    return DataError(f"{path}: cannot write ({e.strerror or e}); check free space and permissions, "
                     f"or choose another output directory")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every token id fits, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def read_header(path: str | os.PathLike) -> tuple[np.dtype, int, int]:
    """(dtype, token count, document count) of a shard, checking that the file is whole."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError as e:
        raise DataError(f"{path}: cannot read the shard ({e.strerror})") from None
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise DataError(f"{path}: not a gpt2 token shard (bad header); prepare the data again")
    _, version, width, count, docs = HEADER.unpack(raw)
    if version != VERSION or width not in (2, 4):
        raise DataError(f"{path}: shard format version {version}, width {width} is not supported")
    expected = HEADER_SIZE + width * count
    if path.stat().st_size != expected:
        raise DataError(f"{path}: {path.stat().st_size} bytes but its header says {expected}; "
                        f"the shard is truncated, prepare the data again")
    return np.dtype(np.uint16 if width == 2 else np.uint32), count, docs


def open_shard(path: str | os.PathLike) -> np.ndarray:
    """The shard's tokens as a read-only memory map."""
    dtype, count, _ = read_header(path)
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_SIZE, shape=(count,))


class ShardWriter:
    """Writes one split's token stream as fixed-size shards: `{prefix}-{index:05d}-{sha256[:16]}.bin`.

    Tokens are streamed to a temporary file (memory stays at one document); each shard is
    fsynced and renamed into place when full. Documents may span two shards. A failed write
    (disk full) raises DataError naming the file.
    """

    def __init__(self, directory: str | os.PathLike, prefix: str, dtype: np.dtype, shard_tokens: int) -> None:
        if shard_tokens < 1:
            raise DataError(f"shard size must be at least one token, got {shard_tokens}")
        self.directory, self.prefix = Path(directory), prefix
        self.dtype, self.shard_tokens = np.dtype(dtype), shard_tokens
        self.shards: list[dict] = []
        self._file = None
        self._count = self._docs = 0

    def _open(self) -> None:
        self._tmp = self.directory / f".{self.prefix}-{len(self.shards):05d}.bin.tmp"
        try:
            self._file = open(self._tmp, "wb")
        except OSError as e:
            raise output_error(self._tmp, e) from None
        self._write(HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, 0, 0))
        self._count = self._docs = 0

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            raise output_error(self._tmp, e) from None

    def write_document(self, tokens: np.ndarray) -> None:
        """Append one document's tokens (already ending with the end-of-text token)."""
        tokens = np.ascontiguousarray(tokens, dtype=self.dtype.newbyteorder("<"))
        start = 0
        while start < tokens.size:
            if self._file is None:
                self._open()
            take = min(self.shard_tokens - self._count, tokens.size - start)
            self._write(memoryview(tokens[start:start + take]).cast("B"))
            self._count += take
            start += take
            if start == tokens.size:
                self._docs += 1
            if self._count == self.shard_tokens:
                self._close()

    def _close(self) -> None:
        f = self._file
        header = HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self._count, self._docs)
        try:
            f.seek(0)
            f.write(header)
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self._file = None
            digest = sha256_file(self._tmp)
            path = self.directory / f"{self.prefix}-{len(self.shards):05d}-{digest[:16]}.bin"
            os.replace(self._tmp, path)
        except OSError as e:
            raise output_error(self._tmp, e) from None
        self.shards.append({"file": path.name, "tokens": self._count, "documents": self._docs,
                            "sha256": digest})

    def finish(self) -> list[dict]:
        """Close the last, partly filled shard; returns every shard's manifest entry."""
        if self._file is not None and self._count:
            self._close()
        else:
            self.abort()
        fsync_dir(self.directory)
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (closing may fail again on a full disk: that is ignored)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
            try:
                self._tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the caller removes the whole staging directory anyway


class Dataset:
    """A prepared dataset directory: its manifest, and its shards as memory maps.

    The manifest is checked when it is read: every shard it lists must be a plain file name in
    the dataset directory (a `../` or absolute name is refused, never followed), and a shard's
    bytes must match the manifest's sha256 when its split is opened (hashed once per file
    version: see `_verified`)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        if not self.directory.exists():
            raise DataError(f"{self.directory}: no such directory; give a dataset written by `gpt2 prepare`")
        if not self.directory.is_dir():
            raise DataError(f"{self.directory}: not a directory; give a dataset directory written by `gpt2 prepare`")
        path = self.directory / MANIFEST
        if not path.is_file():
            raise DataError(f"{self.directory}: no {MANIFEST}; it is not a prepared dataset "
                            f"(run `gpt2 prepare` first, or it was interrupted)")
        try:
            self.manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: unreadable manifest ({e}); prepare the data again") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise DataError(f"{path}: not a gpt2 dataset manifest")
        try:
            self.splits: dict[str, list[dict]] = {name: list(s["shards"])
                                                  for name, s in self.manifest["splits"].items()}
            tok = self.manifest["tokenizer"]
            self.vocab_size: int = int(tok["vocab_size"])
            self.eot_token: int = int(tok["eot_token"])
            self.tokenizer_name: str = str(tok["name"])
            self.dtype = np.dtype(self.manifest["dtype"])
            for shards in self.splits.values():
                for entry in shards:
                    _check_shard_entry(path, entry)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"{path}: damaged manifest ({type(e).__name__}: {e}); prepare the data again") from None

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def split_tokens(self, split: str) -> int:
        return sum(s["tokens"] for s in self.splits.get(split, []))

    def shard_paths(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise DataError(f"{self.directory}: no {split!r} split (it has {', '.join(self.splits)})")
        return [self.directory / s["file"] for s in self.splits[split]]

    def open_split(self, split: str) -> list[np.ndarray]:
        """Memory maps of the split's shards, checked against the manifest's token counts and
        sha256s."""
        arrays, checked = [], {}
        for entry, path in zip(self.splits[split], self.shard_paths(split)):
            if not path.is_file():
                raise DataError(f"{path}: shard listed in the manifest is missing; prepare the data again")
            tokens = open_shard(path)
            if tokens.size != entry["tokens"]:
                raise DataError(f"{path}: {tokens.size} tokens but the manifest says {entry['tokens']}")
            checked.update(_verify_shard(path, entry["sha256"]))
            arrays.append(tokens)
        _remember(checked)
        return arrays

    def verify(self) -> None:
        """Check every shard's sha256 against the manifest (reads all the data, ignores the cache)."""
        for split in self.splits:
            for entry, path in zip(self.splits[split], self.shard_paths(split)):
                if sha256_file(path) != entry["sha256"]:
                    raise DataError(f"{path}: sha256 differs from the manifest; the shard is corrupt")

    def iter_documents(self, split: str) -> Iterator[np.ndarray]:
        """Each document's tokens (without its end-of-text token), in order, across shards."""
        pending: list[np.ndarray] = []
        for tokens in self.open_split(split):
            ends = np.flatnonzero(tokens == self.eot_token)
            start = 0
            for end in ends.tolist():
                piece = np.asarray(tokens[start:end])
                yield np.concatenate(pending + [piece]) if pending else piece
                pending, start = [], end + 1
            if start < tokens.size:
                pending.append(np.asarray(tokens[start:]))


def _check_shard_entry(manifest: Path, entry: dict) -> None:
    """A shard must be a plain file name inside the dataset directory: a manifest naming
    `../x`, `/etc/x` or `sub/x` is refused (it could make a reader follow it anywhere)."""
    name = entry["file"]
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or os.path.isabs(name)):
        raise DataError(f"{manifest}: shard name {name!r} leaves the dataset directory; refusing it "
                        f"(a shard must be a file name in {manifest.parent}); prepare the data again")
    if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("tokens"), int):
        raise DataError(f"{manifest}: the entry for {name!r} lacks its sha256 or token count; prepare the data again")


# Shards whose sha256 was checked: (path, size, mtime_ns) -> sha256. Hashing reads every byte,
# so each file version is hashed once per process; the persistent cache (below) makes it once
# per machine, so a restarted run over many GB does not re-read them all.
_VERIFIED: dict[tuple, str] = {}
_CACHE_LOADED = ("persistent cache loaded",)


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "gpt2" / "verified-shards.json"


def _load_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(checked: dict[tuple[str, int, int], str]) -> None:
    """Add newly verified files to the persistent cache; a cache that cannot be written is
    skipped (it only saves time)."""
    if not checked:
        return
    cache = _load_cache()
    cache.update({json.dumps(key): digest for key, digest in checked.items()})
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(cache))
    except OSError:
        pass


def _verify_shard(path: Path, expected: str) -> dict[tuple[str, int, int], str]:
    """DataError unless the shard's bytes hash to the manifest's sha256. A file whose path, size
    and mtime were verified before with the same hash is not read again; returns what was newly
    verified (for the persistent cache)."""
    key = _file_key(path)
    if _VERIFIED.get(key) == expected:
        return {}
    if not _VERIFIED.get(_CACHE_LOADED):  # read the persistent cache once per process
        _VERIFIED[_CACHE_LOADED] = "yes"
        for k, digest in _load_cache().items():
            try:
                _VERIFIED.setdefault(tuple(json.loads(k)), digest)
            except (ValueError, TypeError):
                pass
        if _VERIFIED.get(key) == expected:
            return {}
    if sha256_file(path) != expected:
        raise DataError(f"{path}: its bytes do not match the sha256 in the manifest (the shard changed "
                        f"or is corrupt); prepare the data again")
    _VERIFIED[key] = expected
    return {key: expected}


def load_tokenizer(name: str):
    """The project's tokenizer by name or directory (GPT-2's is bundled)."""
    from ..tokenizer import Tokenizer

    return Tokenizer.from_pretrained(name)


def iter_dataset_texts(directory: str | os.PathLike, splits: tuple[str, ...] = ("train",)) -> Iterator[str]:
    """The documents of a prepared dataset decoded back to text with its own tokenizer."""
    ds = Dataset(directory)
    tok = load_tokenizer(ds.tokenizer_name)
    for split in splits:
        if split in ds.splits:
            for doc in ds.iter_documents(split):
                yield tok.decode(doc.tolist())
