"""`gpt2 prepare`: raw text in, token shards and manifest.json out, streamed end to end.

    read (main process) -> [clean, filter, decontaminate, hash, tokenize] (worker processes)
        -> de-duplicate, split, write shards (main process, in input order)

The work that parallelizes runs in worker processes on batches of about a megabyte of text; the
order-dependent part (which copy of a duplicate is first) runs in the main process on the results,
taken back in submission order, so the output does not depend on the number of workers. At most a
few batches are in flight, so memory stays bounded whatever the input size, but for the
de-duplication index, which grows by about 150 bytes per kept document (up to ~250 for a moment
when it reorganizes; dedup.py).

Shards are written into OUT/.partial/ and moved into OUT when the run completes, beside the
previous dataset's (a shard's name carries its content hash, so no name is reused for other
bytes); then the manifest, written atomically, switches to the new dataset (the commit point);
then whatever it does not list is removed. So at every instant OUT holds the previous complete
dataset or the new one, and readers trust only the shards the manifest lists. An interrupted run
leaves .partial/ or unlisted shards, which the next run removes. The same inputs and settings
give byte-identical output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import multiprocessing.synchronize  # noqa: F401 (imported now: see below)
import os
import platform
import shutil
import signal
import sys
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

if sys.platform != "win32":
    # What starting the workers imports, imported now instead: a Ctrl-C that lands inside the
    # code an import runs can be lost (see _sigint_remembered) or, under `python -m`, turn the
    # exit status into a death by SIGINT (CPython's unhandled-KeyboardInterrupt flag).
    import multiprocessing.forkserver  # noqa: F401
    import multiprocessing.popen_forkserver  # noqa: F401
    import multiprocessing.resource_tracker  # noqa: F401
    import multiprocessing.spawn  # noqa: F401

from .. import settings
from ..errors import ConfigError, DataError
from ..fsutil import atomic_write_json, fsync_dir, is_temp_name
from ..settings import Range, num
from .clean import CleanConfig, clean_text_changes, filter_reason
from .decontam import DecontamConfig, EvalNgrams
from .dedup import Deduplicator, NearDupConfig, content_key, document_band_keys
from .ngrams import ngrams_of_words, word_hashes
from .shards import (FORMAT, MANIFEST, SHARD_NAME, SHARD_TEMP_NAME, ShardWriter, load_tokenizer, output_error,
                     token_dtype)
from .sources import Document, ReadOptions, SourceStats, expand_inputs, iter_documents

STAGING = ".partial"
_BATCH_CHARS = 1 << 20
_BATCH_DOCS = 1024
_MAX_LISTED = 100  # contaminated documents named in the manifest; the rest are only counted
MAX_SHARD_TOKENS = 10**12  # shard_tokens' upper bound: beyond it a value is a mistake
NORMAL_FORMS = ("NFC", "NFKC", "NFD", "NFKD")


@dataclass(frozen=True)
class PrepareConfig:
    """Every setting that changes the output: built from TOML, options and `key=value` overrides
    with build_config, written into the manifest as dataclasses.asdict gives it."""

    read: ReadOptions = field(default_factory=ReadOptions)
    clean: CleanConfig = field(default_factory=CleanConfig)
    exact_dedup: bool = True
    near_dedup: NearDupConfig | None = field(default_factory=NearDupConfig)
    decontam: DecontamConfig | None = None
    val_fraction: float = num(0.005, 0, 1, high_open=True)  # of documents, chosen by content hash
    shard_tokens: int = num(100_000_000, 1, MAX_SHARD_TOKENS)


def numeric_ranges() -> dict[str, Range | None]:
    """Every int/float setting of PrepareConfig and its range (None: undeclared, a defect)."""
    return settings.numeric_ranges(PrepareConfig)


def build_config(layers: Sequence[tuple[str, dict]], label: Callable[[str], str] = str) -> PrepareConfig:
    """A PrepareConfig from settings trees given as (source, nested dict), later ones over earlier
    ones key by key (e.g. a TOML file, then options, then `--set` overrides); an unknown key, a
    value of the wrong type or range, or settings that contradict each other are a ConfigError
    naming the source (and the key, as `label` names it). Decontamination settings without
    evaluation files switch it off: there is nothing to decontaminate against."""
    config = settings.build_layered(PrepareConfig, layers)
    if config.decontam is not None and not config.decontam.eval_files:
        config = replace(config, decontam=None)
    check_config(config, " + ".join(s for s, d in layers if d), label)
    return config


def check_config(config: PrepareConfig, source: str = "config", label: Callable[[str], str] = str) -> None:
    """Refuse a config (however it was made) with a value of the wrong type or range, or settings
    that contradict each other, in one ConfigError line naming the key as `label` names it."""
    settings.build(PrepareConfig, dataclasses.asdict(config), "", source)  # types, ranges, choices

    def refuse(message: str) -> None:
        raise ConfigError(f"{source}: {message}" if source else message)

    read, clean = config.read, config.clean
    if not read.text_field:
        refuse(f"{label('read.text_field')} must not be empty (the JSONL/Parquet field holding the text, e.g. text)")
    if read.separator == "":
        refuse(f"{label('read.separator')} must not be empty (give the string between documents, e.g. '\\n\\n')")
    if clean.normalize is not None and clean.normalize not in NORMAL_FORMS:
        refuse(f"{label('clean.normalize')} must be one of {', '.join(NORMAL_FORMS)} or false, "
               f"got {clean.normalize!r}")
    if clean.max_chars is not None and clean.max_chars < clean.min_chars:
        high, low = label("clean.max_chars"), label("clean.min_chars")
        refuse(f"{high} {clean.max_chars} is below {low} {clean.min_chars}: every document would be "
               f"dropped; raise {high} or lower {low}")


def _identity_settings(config: PrepareConfig) -> dict:
    """dataclasses.asdict(config) in the layout dataset fingerprints have always hashed, so that a
    dataset prepared before keeps its fingerprint (and re-running its command stays a no-op):
    read's fields at the top level but `strict` (which can stop a run, never change its output),
    decontam under the name "decontaminate", MinHash's bands and rows beside its settings."""
    out = dataclasses.asdict(config)
    read = out.pop("read")
    del read["strict"]
    out |= read
    out["decontaminate"] = out.pop("decontam")
    if config.near_dedup is not None:
        out["near_dedup"] |= dict(zip(("bands", "rows"), config.near_dedup.bands_rows()))
    if config.decontam is not None:
        out["decontaminate"]["eval_files"] = list(config.decontam.eval_files)
    return out


@dataclass
class Tally:
    """What a run counted, for the manifest's report: documents kept per split, dropped per reason,
    changed (but kept) per cleaning step, and the contaminated ones."""

    kept: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    dropped: Counter[str] = field(default_factory=Counter)
    changed: dict[str, int] = field(default_factory=lambda: {"control_characters": 0, "normalization": 0})
    contaminated_kept: int = 0  # with decontam action "report"
    # Where contaminated documents came from (file:line, file#index), the first _MAX_LISTED:
    # those dropped, or with action "report" those kept.
    contaminated: list[str] = field(default_factory=list)

    def cleaned(self, r: _Result) -> None:
        self.changed["control_characters"] += r.stripped
        self.changed["normalization"] += r.normalized

    def drop(self, reason: str, origin: str) -> None:
        self.dropped[reason] += 1
        if reason == "contaminated":
            self._list_contaminated(origin)

    def keep(self, split: str, origin: str, contaminated: bool) -> None:
        self.kept[split] += 1
        if contaminated:
            self.contaminated_kept += 1
            self._list_contaminated(origin)

    def _list_contaminated(self, origin: str) -> None:
        if len(self.contaminated) < _MAX_LISTED:
            self.contaminated.append(origin)

    def documents(self, read: int) -> dict:
        return {"read": read, "kept": sum(self.kept.values()), "dropped": sum(self.dropped.values()),
                **self.kept}

    def filters(self, evals: EvalNgrams | None, decontaminating: bool) -> dict:
        return {"dropped": dict(sorted(self.dropped.items())),
                "changed": dict(self.changed),  # documents each cleaning step changed (without dropping them)
                "contaminated_kept": self.contaminated_kept if decontaminating else None,
                "contaminated_documents": list(self.contaminated) if decontaminating else None,
                "eval_ngrams": len(evals) if evals else None}


# ----------------------------------------------------------------------------- worker side

_STATE: dict = {}


def _init_worker(*initargs) -> None:
    # Ctrl-C is the main process's to handle (it stops the workers); a worker that raised
    # KeyboardInterrupt itself would print a traceback and could leave the pool waiting forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _load_state(*initargs)


def _load_state(tokenizer: str, config: PrepareConfig, eval_hashes: np.ndarray | None, eval_n: int) -> None:
    # The tokenizer travels by name and is loaded once per worker (never pickled per task).
    _STATE["tok"] = load_tokenizer(tokenizer)
    _STATE["config"] = config
    _STATE["eval"] = EvalNgrams(eval_hashes, eval_n) if eval_hashes is not None else None


class _Result(NamedTuple):
    """A processed batch: per document, the drop reason (None: kept so far), content digest,
    MinHash band keys and contaminating n-gram count; the kept documents' token counts and
    tokens; how many documents control-character removal and normalization changed."""

    reasons: list[str | None]
    digests: list[bytes]
    bands: list[list[int]]
    matches: list[int]
    lengths: np.ndarray
    tokens: np.ndarray
    stripped: int
    normalized: int


def _process(texts: list[str]) -> _Result:
    """Clean, filter, hash and tokenize a batch."""
    tok, config, evals = _STATE["tok"], _STATE["config"], _STATE["eval"]
    near = config.near_dedup
    dtype = token_dtype(tok.vocab_size)
    reasons, digests, bands, matches, pieces = [], [], [], [], []
    stripped = normalized = 0
    for raw in texts:
        text, was_stripped, was_normalized = clean_text_changes(raw, config.clean)
        stripped += was_stripped
        normalized += was_normalized
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
    return _Result(reasons, digests, bands, matches, kept_lengths, tokens, stripped, normalized)


# ----------------------------------------------------------------------------- main side

def _batches(docs: Iterator[Document]) -> Iterator[tuple[list[str], list[str]]]:
    """(texts, origins) of about a megabyte of documents at a time."""
    texts: list[str] = []
    origins: list[str] = []
    chars = 0
    for doc in docs:
        texts.append(doc.text)
        origins.append(doc.origin)
        chars += len(doc.text)
        if chars >= _BATCH_CHARS or len(texts) >= _BATCH_DOCS:
            yield texts, origins
            texts, origins, chars = [], [], 0
    if texts:
        yield texts, origins


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread for the duration (a pending one is delivered when it ends).
    Processes started inside inherit the block and keep it. A no-op where signal masks do not
    exist (Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _python_sigint_handler() -> Callable | None:
    """The Python-level SIGINT handler when this thread may replace it (the main thread), else None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGINT)
    return handler if callable(handler) else None


@contextmanager
def _sigint_remembered() -> Iterator[Callable[[], None]]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is remembered: the yielded check raises it
    again. CPython drops an exception raised inside some import machinery ("Exception ignored
    in ... _get_module_lock"), which would let the run go on to the end; checking at each batch
    makes such a Ctrl-C stop it all the same."""
    previous = _python_sigint_handler()
    if previous is None:
        yield lambda: None
        return
    came: list[bool] = []

    def handler(signum, frame):
        came.append(True)
        previous(signum, frame)  # KeyboardInterrupt, for the default handler

    def check() -> None:
        if came:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigint_deferred() -> Iterator[Callable[[], bool]]:
    """Ctrl-C noted, not raised, for the duration (yields: whether one came), then passed to the
    handler it was meant for at the end. A Python handler rather than a signal mask: the signal
    may be delivered to any thread, but Python runs its handlers in the main thread. Elsewhere
    (only the main thread may set handlers), or when SIGINT is ignored, nothing changes."""
    previous = _python_sigint_handler()
    if previous is None:
        yield lambda: False
        return
    came: list[bool] = []
    signal.signal(signal.SIGINT, lambda signum, frame: came.append(True))
    try:
        yield lambda: bool(came)
    finally:
        signal.signal(signal.SIGINT, previous)
    if came:
        previous(signal.SIGINT, None)


def _start_pool(workers: int, initargs: tuple) -> ProcessPoolExecutor:
    """A pool of `workers` processes that never see SIGINT, even one sent to the whole process
    group (a terminal's Ctrl-C): the forkserver is started with SIGINT blocked, and every worker
    forked from it inherits that mask (and ignores SIGINT once initialized, in case a forkserver
    started earlier in this process serves it)."""
    ctx = mp.get_context("forkserver" if sys.platform != "win32" else "spawn")
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver, resource_tracker

        ctx.set_forkserver_preload(["gpt2.data.prepare"])
        # The resource tracker first: starting it unblocks SIGINT (it blocks the signal for
        # its own start, then unblocks it), which would open a gap in the block below.
        resource_tracker.ensure_running()
        with _sigint_blocked():
            forkserver.ensure_running()
    # concurrent.futures rather than multiprocessing.Pool: a worker that dies raises
    # BrokenProcessPool here instead of leaving the run waiting forever.
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the pool now, for an error or Ctrl-C: waiting for the batches in flight would take
    seconds, and an interpreter exiting with workers still busy waits for them."""
    for process in list((pool._processes or {}).values()):  # no public API before Python 3.14
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _ordered_results(batches: Iterator[tuple[list[str], list[str]]], workers: int,
                     initargs: tuple) -> Iterator[tuple[list[str], _Result]]:
    """(origins, result of `_process`) in submission order, with at most 2 * workers batches in
    flight; the origins stay in this process."""
    if workers <= 0:
        _load_state(*initargs)
        for texts, origins in batches:
            yield origins, _process(texts)
        return
    pool = _start_pool(workers, initargs)
    try:
        pending: deque = deque()
        for texts, origins in batches:
            # A submit may start a worker: Ctrl-C waits until the pool knows its process id, or
            # the worker would outlive the run and fail loading what the run has since deleted.
            with _sigint_deferred():
                pending.append((origins, pool.submit(_process, texts)))
            if len(pending) >= 2 * workers:
                origins, future = pending.popleft()
                yield origins, future.result()
        while pending:
            origins, future = pending.popleft()
            yield origins, future.result()
    except BrokenProcessPool:
        _stop_pool(pool)
        raise DataError("a tokenization worker process died (out of memory?); run again with "
                        "fewer --workers") from None
    except BaseException:  # Ctrl-C, a failed write, the consumer closing this generator
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _file_identity(item: str) -> list:
    """A local file as its absolute path, size and modification time (so that the same file named
    two ways is the same input, and a file changed in place is not); hf: names as they are."""
    if item.startswith("hf:"):
        return [item]
    path = Path(item).resolve()
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _identity(inputs: list[str], config: PrepareConfig, tokenizer_fingerprint: str) -> str:
    """What makes two datasets the same: the input files, settings and vocabulary."""
    chosen = _identity_settings(config)
    if config.decontam:  # the evaluation files are inputs too
        evals = expand_inputs(config.decontam.eval_files)
        chosen["decontaminate"]["eval_files"] = [_file_identity(f) for f in evals]
    blob = json.dumps({"inputs": [_file_identity(f) for f in inputs], "settings": chosen,
                       "tokenizer": tokenizer_fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _is_leftover(name: str) -> bool:
    """Files an interrupted run of ours may leave in OUT: the staging directory, temporary files,
    shards that no manifest lists yet (or any more)."""
    return (name == STAGING or bool(SHARD_NAME.fullmatch(name) or SHARD_TEMP_NAME.fullmatch(name))
            or (name.startswith(f".{MANIFEST}.") and is_temp_name(name)))


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
        if not isinstance(old, dict):
            old = {}
        if old.get("fingerprint") != identity and not overwrite:
            raise DataError(f"{out}: already holds a different prepared dataset; pass --overwrite to "
                            f"replace it, or choose another output directory")
        return old
    others = sorted(p.name for p in out.iterdir() if not _is_leftover(p.name))
    if others and not overwrite:
        raise DataError(f"{out}: not empty and not a prepared dataset (holds {others[0]!r}); pass "
                        f"--overwrite to write into it anyway, or choose an empty directory")
    return None


def _first_missing(out: Path) -> Path | None:
    """The outermost directory on the way to `out` that does not exist yet (None: `out` exists)."""
    missing = None
    for path in (out, *out.parents):
        if path.exists():
            break
        missing = path
    return missing


def _make_staging(staging: Path, out: Path) -> None:
    try:
        if staging.exists():
            shutil.rmtree(staging)  # an interrupted run's leftovers: only ever our own partial shards
        staging.mkdir(parents=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create the output directory ({e.strerror or e}); check the path "
                        f"and permissions, or choose another output directory") from None


def _remove_if_empty(out: Path, created: Path | None) -> None:
    """Remove the directories a failed run created on the way to `out`, if they hold nothing."""
    if created is None:
        return
    path = out
    while True:
        try:
            path.rmdir()
        except OSError:
            return  # not empty (or already gone): what is there stays
        if path == created:
            return
        path = path.parent


def _all_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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

    `tokenizer`: "gpt2" or a tokenizer directory. `workers`: tokenization processes (default: one
    per core this process may run on; 0 runs everything in this process, which gives the same
    output). `command`: recorded in the manifest as the command that made it. `progress` is
    called with {"stage": "start", "files", "workers"} once the inputs and OUT are checked, then
    with {"stage": "read", "documents", "bytes", "seconds"} after each batch.
    """
    check_config(config)
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
        if not len(evals):  # decontaminating against nothing would look like a clean result
            n = config.decontam.ngram
            raise DataError(f"{', '.join(config.decontam.eval_files)}: no {n}-grams to decontaminate against "
                            f"(no evaluation files there, or none with {n} words); check --decontaminate, "
                            f"or lower --decontam-ngram")
    workers = _all_cores() if workers is None else workers

    staging = out / STAGING
    created = _first_missing(out)  # removed again if the run fails
    dtype = token_dtype(tok.vocab_size)
    writers = {s: ShardWriter(staging, s, dtype, config.shard_tokens) for s in ("train", "val")}
    stats = SourceStats()
    tally = Tally()
    dedup = Deduplicator(config.exact_dedup, config.near_dedup is not None)
    threshold = int(config.val_fraction * 2**64)
    start = time.perf_counter()
    initargs = (tokenizer_id, config, evals.hashes if evals else None, evals.n if evals else 8)
    results = _ordered_results(_batches(iter_documents(files, config.read, stats)), workers, initargs)
    with _sigint_remembered() as stop_if_interrupted:
        try:
            _make_staging(staging, out)
            if progress is not None:
                progress({"stage": "start", "files": len(files), "workers": workers})
            for origins, r in results:  # a failure below closes `results`, which stops the workers
                stop_if_interrupted()
                tally.cleaned(r)
                for reason, origin in zip(r.reasons, origins):
                    if reason is not None:
                        tally.drop(reason, origin)
                # The documents that passed the filters, de-duplicated in order (kept[j] is r.tokens' j-th).
                passed = [i for i, reason in enumerate(r.reasons) if reason is None]
                verdicts = dedup.check_batch([r.digests[i] for i in passed], [r.bands[i] for i in passed])
                offsets = np.concatenate(([0], np.cumsum(r.lengths)))
                for j, (i, reason) in enumerate(zip(passed, verdicts)):
                    if reason is not None:
                        tally.drop(reason, origins[i])
                        continue
                    split = "val" if int.from_bytes(r.digests[i][:8], "little") < threshold else "train"
                    writers[split].write_document(r.tokens[offsets[j]:offsets[j + 1]])
                    tally.keep(split, origins[i], contaminated=r.matches[i] > 0)
                if progress is not None:
                    progress({"stage": "read", "documents": stats.documents, "bytes": stats.bytes_read,
                              "seconds": time.perf_counter() - start})
            shards = {s: w.finish() for s, w in writers.items()}
            seconds = time.perf_counter() - start
            splits = {
                s: {"documents": tally.kept[s], "tokens": sum(e["tokens"] for e in shards[s]), "shards": shards[s]}
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
                "documents": tally.documents(stats.documents),
                "filters": tally.filters(evals, decontaminating=config.decontam is not None),
                "sources": stats.to_dict(),
                "inputs": files,
                "settings": dataclasses.asdict(config),  # every field, by construction
                "command": command,  # as run: `gpt2 prepare ...`, or what was passed to the CLI's main()
                "arguments": arguments,  # the CLI's parsed options, when run from it
                "versions": _versions(),
            }
            stop_if_interrupted()
            _publish(staging, out, old, manifest)
        except BaseException:  # an error or Ctrl-C: OUT is left as it was
            results.close()
            for w in writers.values():
                w.abort()
            shutil.rmtree(staging, ignore_errors=True)
            _remove_if_empty(out, created)
            raise
    return manifest | {"seconds": seconds}  # not in the file, which stays identical across runs


def _listed_shards(manifest: dict | None) -> set[str]:
    """The shard file names a manifest lists (tolerating a damaged one)."""
    names: set[str] = set()
    try:
        for split in (manifest or {}).get("splits", {}).values():
            names.update(Path(entry["file"]).name for entry in split["shards"])
    except (AttributeError, KeyError, TypeError):
        pass
    return names


def _publish(staging: Path, out: Path, old: dict | None, manifest: dict) -> None:
    """Replace the old dataset (if any) by the staged one so that a kill at any point leaves OUT
    holding one of the two whole, and the next run able to finish the job:

    1. the new shards move in beside the old ones (a name carries the shard's content hash, so
       none replaces a shard of the old dataset with other bytes): the old manifest still holds;
    2. the new manifest replaces the old in one rename: the commit point;
    3. what the new manifest does not list goes: the old dataset's shards, leftovers of
       interrupted runs, the staging directory.

    Ctrl-C waits for the few milliseconds this takes: before the commit point, the new shards go
    back to staging and OUT is left as it was; after it, the interrupt is raised once OUT holds
    the new dataset alone.
    """
    keep = _listed_shards(manifest)
    moved: list[str] = []
    with _sigint_deferred() as interrupted:
        try:
            for name in sorted(keep):
                os.replace(staging / name, out / name)
                moved.append(name)
            fsync_dir(out)  # the shards are in place before the manifest that lists them
            if interrupted():
                raise KeyboardInterrupt  # before the commit point: undone below
            atomic_write_json(out / MANIFEST, manifest)
        except BaseException as e:
            _unpublish(staging, out, old, moved)
            if isinstance(e, OSError):
                raise output_error(e.filename or out, e) from None
            raise
        try:
            stale = _listed_shards(old) - keep
            for path in sorted(out.iterdir()):
                if path.name in keep or path.name == MANIFEST:
                    continue
                if path.name == STAGING:
                    shutil.rmtree(path)
                elif path.name in stale or _is_leftover(path.name):
                    path.unlink()
            fsync_dir(out)
        except OSError as e:
            raise output_error(e.filename or out, e) from None


def _unpublish(staging: Path, out: Path, old: dict | None, moved: list[str]) -> None:
    """Step 1 undone: the shards moved into OUT go back to staging (those the old manifest lists
    too hold the same bytes under the same name, and stay); a half-written manifest removed itself."""
    listed = _listed_shards(old)
    for name in moved:
        if name not in listed:
            try:
                os.replace(out / name, staging / name)
            except OSError:
                pass  # an unlisted shard is a leftover the next run removes
