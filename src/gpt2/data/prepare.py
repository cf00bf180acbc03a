"""`gpt2 prepare`: raw text in, token shards and manifest.json out, streamed end to end.

    read (main process) -> [clean, filter, decontaminate, hash, tokenize] (worker processes)
        -> de-duplicate, split, write shards (main process, in input order)

The work that parallelizes runs in worker processes on batches of about a megabyte of text; the
order-dependent part (which copy of a duplicate is first) runs in the main process on the results,
taken back in submission order, so the output does not depend on the number of workers. At most a
few batches are in flight, so memory stays bounded whatever the input size (the de-duplication
sets grow by ~100 bytes per kept document).

Shards are written into OUT/.partial/ and moved into OUT only when the run completes; the
manifest is written last, so OUT holds either the previous complete dataset or the new one.
An interrupted run leaves only .partial/, which the next run removes before starting again.
The same inputs and settings give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clean import CleanConfig, clean_text, filter_reason
from .decontam import DecontamConfig, EvalNgrams
from .dedup import Deduplicator, NearDupConfig, content_key, document_band_keys
from .errors import DataError
from .ngrams import ngrams_of_words, word_hashes
from .shards import FORMAT, MANIFEST, ShardWriter, load_tokenizer, token_dtype, write_json_atomic
from .sources import Document, ReadOptions, SourceStats, expand_inputs, iter_documents

STAGING = ".partial"
_BATCH_CHARS = 1 << 20
_BATCH_DOCS = 1024


@dataclass(frozen=True)
class PrepareConfig:
    """Every setting that changes the output; their JSON form goes into the manifest."""

    read: ReadOptions = field(default_factory=ReadOptions)
    clean: CleanConfig = field(default_factory=CleanConfig)
    exact_dedup: bool = True
    near_dedup: NearDupConfig | None = field(default_factory=NearDupConfig)
    decontam: DecontamConfig | None = None
    val_fraction: float = 0.005  # of documents, chosen by content hash
    shard_tokens: int = 100_000_000

    def to_dict(self) -> dict:
        return {
            "text_field": self.read.text_field, "separator": self.read.separator,
            "clean": self.clean.to_dict(), "exact_dedup": self.exact_dedup,
            "near_dedup": self.near_dedup.to_dict() if self.near_dedup else None,
            "decontaminate": self.decontam.to_dict() if self.decontam else None,
            "val_fraction": self.val_fraction, "shard_tokens": self.shard_tokens,
        }


# ----------------------------------------------------------------------------- worker side

_STATE: dict = {}


def _init_worker(tokenizer: str, config: PrepareConfig, eval_hashes: np.ndarray | None, eval_n: int) -> None:
    # The tokenizer travels by name and is loaded once per worker (never pickled per task).
    _STATE["tok"] = load_tokenizer(tokenizer)
    _STATE["config"] = config
    _STATE["eval"] = EvalNgrams(eval_hashes, eval_n) if eval_hashes is not None else None


def _process(texts: list[str]) -> tuple[list[str | None], list[bytes], list[list[int]], list[int], np.ndarray, np.ndarray]:
    """Clean, filter, hash and tokenize a batch. Returns per document: drop reason (None: kept),
    content digest, MinHash band keys, contaminating n-gram count; then token counts and tokens."""
    tok, config, evals = _STATE["tok"], _STATE["config"], _STATE["eval"]
    near = config.near_dedup
    dtype = np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32
    reasons, digests, bands, matches, pieces = [], [], [], [], []
    for raw in texts:
        text = clean_text(raw, config.clean)
        reason = filter_reason(text, config.clean)
        digest, keys, hits = b"", [], 0
        if reason is None:
            words = word_hashes(text) if (near or evals) else None
            if evals is not None:
                hits = int(evals.contains(ngrams_of_words(words, evals.n)).sum())
                if hits and config.decontam.action == "drop":
                    reason = "contaminated"
        if reason is None:
            digest = content_key(text)
            if near:
                keys = document_band_keys(text, near, words)
            ids = tok.encode(text)
            piece = np.empty(len(ids) + 1, dtype=dtype)
            piece[:-1] = ids
            piece[-1] = tok.eot_token
            pieces.append(piece)
        reasons.append(reason)
        digests.append(digest)
        bands.append(keys)
        matches.append(hits)
    kept_lengths = np.array([p.size for p in pieces], dtype=np.int64)
    tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    return reasons, digests, bands, matches, kept_lengths, tokens


# ----------------------------------------------------------------------------- main side

def _batches(docs: Iterator[Document]) -> Iterator[list[str]]:
    batch: list[str] = []
    chars = 0
    for doc in docs:
        batch.append(doc.text)
        chars += len(doc.text)
        if chars >= _BATCH_CHARS or len(batch) >= _BATCH_DOCS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _ordered_results(batches: Iterator[list[str]], workers: int, initargs: tuple) -> Iterator[tuple]:
    """Results of `_process` in submission order, with at most 2 * workers batches in flight."""
    if workers <= 0:
        _init_worker(*initargs)
        for batch in batches:
            yield _process(batch)
        return
    ctx = mp.get_context("forkserver" if sys.platform != "win32" else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["gpt2.data.prepare"])
    # concurrent.futures rather than multiprocessing.Pool: a worker that dies raises
    # BrokenProcessPool here instead of leaving the run waiting forever.
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs) as pool:
        pending: deque = deque()
        try:
            for batch in batches:
                pending.append(pool.submit(_process, batch))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise DataError("a tokenization worker process died (out of memory?); run again with "
                            "fewer --workers") from None
        finally:
            for f in pending:
                f.cancel()


def _identity(inputs: list[str], config: PrepareConfig, tokenizer_fingerprint: str) -> str:
    """What makes two datasets the same: inputs, settings and vocabulary."""
    blob = json.dumps({"inputs": inputs, "settings": config.to_dict(), "tokenizer": tokenizer_fingerprint},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _check_output(out: Path, identity: str, overwrite: bool) -> dict | None:
    """The existing manifest (to be replaced), after refusing to clobber anything else."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory; choose another output directory")
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("fingerprint") != identity and not overwrite:
            raise DataError(f"{out}: already holds a different prepared dataset; pass --overwrite to "
                            f"replace it, or choose another output directory")
        return old
    others = [p.name for p in out.iterdir() if p.name != STAGING]
    if others and not overwrite:
        raise DataError(f"{out}: not empty and not a prepared dataset (holds {others[0]!r}); pass "
                        f"--overwrite to write into it anyway, or choose an empty directory")
    return None


def _versions() -> dict:
    import tiktoken

    from .. import __version__

    return {"gpt2": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "tiktoken": tiktoken.__version__}


def prepare(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    tokenizer: str = "gpt2",
    config: PrepareConfig = PrepareConfig(),
    workers: int | None = None,
    overwrite: bool = False,
    command: list[str] | None = None,
    arguments: dict | None = None,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Prepare a training dataset; returns its manifest (as written to OUT/manifest.json, plus
    "seconds", the run's duration).

    `tokenizer`: "gpt2" or a tokenizer directory. `workers`: tokenization processes (default: all
    cores; 0 runs everything in this process, which gives the same output).
    """
    if not 0.0 <= config.val_fraction < 1.0:
        raise DataError(f"validation fraction must lie in [0, 1), got {config.val_fraction}")
    files = expand_inputs(inputs)
    if not files:
        raise DataError("no input files found (give text, .jsonl or .parquet files, or directories holding them)")
    tok = load_tokenizer(tokenizer)
    tokenizer_id = str(Path(tokenizer).resolve()) if Path(tokenizer).is_dir() else tokenizer
    out = Path(out_dir)
    identity = _identity(files, config, tok.fingerprint)
    old = _check_output(out, identity, overwrite)

    evals = None
    if config.decontam and config.decontam.eval_files:
        evals = EvalNgrams.from_files(config.decontam.eval_files, config.decontam.ngram, config.read)
    workers = (os.cpu_count() or 1) if workers is None else workers

    staging = out / STAGING
    if staging.exists():
        shutil.rmtree(staging)  # an interrupted run's leftovers: only ever our own partial shards
    staging.mkdir(parents=True)
    dtype = token_dtype(tok.vocab_size)
    writers = {s: ShardWriter(staging, s, dtype, config.shard_tokens) for s in ("train", "val")}
    stats = SourceStats()
    dropped: Counter[str] = Counter()
    kept = {"train": 0, "val": 0}
    contaminated_kept = 0
    dedup = Deduplicator(config.exact_dedup, config.near_dedup is not None)
    threshold = int(config.val_fraction * 2**64)
    start = time.perf_counter()
    try:
        initargs = (tokenizer_id, config, evals.hashes if evals else None, evals.n if evals else 8)
        results = _ordered_results(_batches(iter_documents(files, config.read, stats)), workers, initargs)
        for reasons, digests, bands, matches, lengths, tokens in results:
            offsets = np.concatenate(([0], np.cumsum(lengths)))
            j = 0
            for reason, digest, keys, hits in zip(reasons, digests, bands, matches):
                if reason is not None:
                    dropped[reason] += 1
                    continue
                doc_tokens = tokens[offsets[j]:offsets[j + 1]]
                j += 1
                reason = dedup.check(digest, keys)
                if reason is not None:
                    dropped[reason] += 1
                    continue
                contaminated_kept += hits > 0
                split = "val" if int.from_bytes(digest[:8], "little") < threshold else "train"
                writers[split].write_document(doc_tokens)
                kept[split] += 1
            if progress is not None:
                progress({"documents": stats.documents, "bytes": stats.bytes_read,
                          "seconds": time.perf_counter() - start})
        shards = {s: w.finish() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise

    seconds = time.perf_counter() - start
    splits = {
        s: {"documents": kept[s], "tokens": sum(e["tokens"] for e in shards[s]), "shards": shards[s]}
        for s in ("train", "val")
    }
    manifest = {
        "format": FORMAT,
        "version": 1,
        "fingerprint": identity,
        "tokenizer": {"name": tokenizer_id, "fingerprint": tok.fingerprint, "vocab_size": tok.vocab_size,
                      "eot_token": tok.eot_token},
        "dtype": dtype.name,
        "splits": splits,
        "documents": {"read": stats.documents, "kept": kept["train"] + kept["val"], "dropped": sum(dropped.values()),
                      "train": kept["train"], "val": kept["val"]},
        "filters": {"dropped": dict(sorted(dropped.items())),
                    "contaminated_kept": contaminated_kept if config.decontam else None,
                    "eval_ngrams": len(evals) if evals else None},
        "sources": stats.to_dict(),
        "inputs": files,
        "settings": config.to_dict(),
        "command": command,  # the process's argv, as run
        "arguments": arguments,  # the CLI's parsed options, when run from it
        "versions": _versions(),
    }
    _publish(staging, out, old, manifest)
    return manifest | {"seconds": seconds}  # not in the file, which stays identical across runs


def _publish(staging: Path, out: Path, old: dict | None, manifest: dict) -> None:
    """Replace the old dataset (if any) by the staged one; the manifest goes last."""
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the end, OUT is visibly incomplete
    if old:
        for split in old.get("splits", {}).values():
            for entry in split.get("shards", []):
                name = Path(entry.get("file", "")).name
                if name:
                    (out / name).unlink(missing_ok=True)
    for path in sorted(staging.iterdir()):
        os.replace(path, out / path.name)
    write_json_atomic(out / MANIFEST, manifest)
    staging.rmdir()
