"""Encode and decode text with GPT-2's BPE (or a trained one); train new BPE vocabularies.

    gpt2 tokenizer encode "Hello world"              # 15496 995
    echo "Hello world" | gpt2 tokenizer encode - --json
    gpt2 tokenizer decode 15496 995                  # Hello world
    gpt2 tokenizer train corpus/ more.jsonl --vocab-size 8192 --output my-tokenizer
    gpt2 tokenizer encode "Hello" --tokenizer my-tokenizer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import GPT2Error, TokenizerError, UsageError
from ..tokenizer import MAX_MIN_FREQUENCY, MAX_VOCAB_SIZE, MIN_VOCAB_SIZE, TOKENIZER_FILES
from ..validate import is_int
from .numbers import int_in
from .streams import read_stdin_text

PROGRESS_SECONDS = 1.0  # between progress lines on stderr while training reads its inputs


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenizer",
        help="encode or decode text, train a BPE vocabulary",
        description=__doc__.split("\n\n")[0],
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    enc = sub.add_parser("encode", help="print the token ids of TEXT (or of stdin with '-')")
    enc.add_argument("text", nargs="?", default="-", metavar="TEXT|-",
                     help="text to encode; '-' or nothing reads stdin (UTF-8)")
    _tokenizer_option(enc)
    enc.add_argument("--json", action="store_true", help="print a JSON list instead of ids on one line")
    enc.add_argument("--allow-special", action="store_true",
                     help="encode special-token text such as <|endoftext|> as its id (default: as text)")

    dec = sub.add_parser("decode", help="print the text of token ids (or of ids read from stdin)")
    dec.add_argument("ids", nargs="*", metavar="IDS",
                     help="token ids: integers separated by spaces or commas, or one JSON list of "
                          "integers; '-' or nothing reads them from stdin")
    _tokenizer_option(dec)

    tr = sub.add_parser("train", help="train a byte-level BPE vocabulary on text, as `prepare` reads it")
    tr.add_argument("files", nargs="*", metavar="INPUT",
                    help="text files, directories (recursively: .txt/.md/.jsonl/.parquet, optionally "
                         ".gz/.bz2/.xz/.zst), .jsonl files, Parquet files, hf:NAME; as `gpt2 prepare` reads them")
    tr.add_argument("--corpus", metavar="NAME", help="train on a bundled corpus instead (demo)")
    tr.add_argument("--text-field", default="text", metavar="FIELD",
                    help="JSONL/Parquet field holding the text (default: text)")
    tr.add_argument("--vocab-size", type=int_in(MIN_VOCAB_SIZE, MAX_VOCAB_SIZE), required=True,
                    help=f"number of ids, <|endoftext|> (the last) included; in [{MIN_VOCAB_SIZE}, "
                         f"{MAX_VOCAB_SIZE}] (256 bytes + <|endoftext|> at least; datasets store ids "
                         "as uint16 up to 65536, uint32 above)")
    tr.add_argument("--min-frequency", type=int_in(1, MAX_MIN_FREQUENCY), default=2,
                    help=f"merge only pairs seen at least this often; in [1, {MAX_MIN_FREQUENCY}] (default: 2)")
    tr.add_argument("--output", required=True, metavar="DIR",
                    help="directory for vocab.json, merges.txt and the tokenizer configs; "
                         "created if need be; other files there are left alone")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the tokenizer files already in DIR (only those)")
    p.set_defaults(func=run)


def _tokenizer_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", default="gpt2", metavar="NAME_OR_DIR",
                   help="gpt2 (default, bundled) or a directory saved by `tokenizer train`/save_pretrained")


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        return _train(args)
    if args.action == "encode":
        return _encode(args)
    return _decode(args)


# ------------------------------------------------------------------------------ encode / decode


def _load(name: str):
    from ..tokenizer import Tokenizer

    return Tokenizer.from_pretrained(name)


def _encode(args: argparse.Namespace) -> int:
    if args.text != "-":
        _check_utf8(args.text, "TEXT")
    tok = _load(args.tokenizer)
    text = read_stdin_text("TEXT") if args.text == "-" else args.text
    ids = tok.encode(text, allowed_special="all" if args.allow_special else frozenset())
    print(json.dumps(ids) if args.json else " ".join(map(str, ids)))
    return 0


def _decode(args: argparse.Namespace) -> int:
    from_stdin = not args.ids or args.ids == ["-"]
    ids = None if from_stdin else parse_ids(" ".join(args.ids))
    tok = _load(args.tokenizer)
    if ids is None:
        ids = parse_ids(read_stdin_text("IDS"))
    sys.stdout.write(tok.decode(ids) + "\n")
    return 0


_ID = re.compile(r"-?[0-9]+")


def parse_ids(text: str) -> list[int]:
    """Token ids written as one JSON list of integers, or as integers separated by whitespace
    and/or commas. Anything else (nesting, floats, words) is a UsageError naming it."""
    _check_utf8(text, "IDS")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as e:
            raise UsageError(f"IDS: not a JSON list of token ids ({e.msg} at character {e.pos}); "
                             "write e.g. [15496, 995] or 15496 995") from None
        if not isinstance(value, list):
            raise UsageError("IDS: not a JSON list of token ids; write e.g. [15496, 995] or 15496 995")
        for item in value:
            if not is_int(item):
                raise UsageError(f"IDS: {json.dumps(item)[:40]} is not a token id (an integer); "
                                 "write a flat list such as [15496, 995]")
        return value
    ids = []
    for item in re.split(r"[\s,]+", stripped):
        if not item:
            continue
        if not _ID.fullmatch(item):
            raise UsageError(f"IDS: {item[:40]!r} is not a token id (an integer); "
                             "write ids separated by spaces or commas, or a JSON list")
        ids.append(int(item))
    return ids


def _check_utf8(text: str, what: str) -> None:
    """Text from argv that held bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"{what}: not UTF-8 text (character {e.start}); give UTF-8 text") from None


# ------------------------------------------------------------------------------ train


def _train(args: argparse.Namespace) -> int:
    inputs, text_field = _training_inputs(args)
    output = Path(args.output).expanduser()
    check_output(output, args.overwrite)
    if getattr(sys.stdout, "lost", None):  # the report would be lost: say so before the work
        raise UsageError("stdout is closed; redirect it to a file or /dev/null")
    show_bars = sys.stderr.isatty()
    # /dev/fd/N inputs (bash's <(...)) name descriptors of this process: the child gets them too.
    fds = [int(m[1]) for m in map(_FD_PATH.match, inputs) if m]
    tok, stats = run_in_child(_train_in_child, inputs, args.vocab_size, args.min_frequency,
                              text_field, output.name or "trained", show_bars, pass_fds=fds)
    _warn_about_skips(stats)
    # The report first: a stdout that cannot take it (full, closed) stops the command before
    # anything is written.
    print(f"trained {tok.vocab_size} ids ({len(tok.merges)} merges, <|endoftext|> = {tok.eot_token}) "
          f"on {_count(stats['documents'], 'document')} ({stats['bytes_read'] / 1e6:,.1f} MB); "
          f"fingerprint {tok.fingerprint[:16]}", flush=True)
    with _sigint_deferred():  # all four files or none
        written = tok.save_pretrained(output)
    for path in written:
        print(f"wrote {path}")
    return 0


_FD_PATH = re.compile(r"^/(?:dev|proc/self)/fd/([0-9]+)$")


def _training_inputs(args: argparse.Namespace) -> tuple[list[str], str]:
    """The inputs to read and the JSONL/Parquet field, checked before any work starts."""
    from ..data.sources import expand_inputs

    if args.corpus:
        from ..data.corpus import corpus_path

        if args.files:
            raise UsageError("give either INPUT files or --corpus, not both (as `gpt2 prepare`)")
        if args.text_field != "text":
            raise UsageError("--text-field is for INPUT files; the bundled corpus has its own field")
        return [str(corpus_path(args.corpus))], "text"
    if not args.files:
        raise UsageError("no INPUT given (text files, directories, .jsonl, Parquet, hf:NAME, or --corpus demo)")
    for item in args.files:
        if item.startswith("hf:"):
            continue
        path = Path(item).expanduser()
        if not expand_inputs([path]):
            raise UsageError(f"{item}: a directory with no text files (.txt, .md, .jsonl, .parquet, "
                             "optionally compressed) in it or below")
    return [a if a.startswith("hf:") else os.fspath(Path(a).expanduser()) for a in args.files], args.text_field


def check_output(output: Path, overwrite: bool) -> None:
    """--output must be a directory we can write, without another tokenizer in it unless
    `overwrite`. Checked before training, so a mistake costs nothing."""
    try:
        if output.exists() and not output.is_dir():
            raise UsageError(f"--output {output}: is a file; give a directory (new or existing)")
        ancestor = output
        while not ancestor.exists() and ancestor.parent != ancestor:
            ancestor = ancestor.parent
    except (OSError, ValueError) as e:
        raise UsageError(f"--output {output}: not a usable path ({getattr(e, 'strerror', None) or e})") from None
    if not ancestor.is_dir():
        raise UsageError(f"--output {output}: {ancestor} is a file, so nothing can be written under it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: cannot write in {ancestor} (permission denied)")
    present = _tokenizer_files_in(output) if output.is_dir() else []
    if present and not overwrite:
        raise UsageError(f"--output {output}: already holds a tokenizer ({present[0]}); pass --overwrite "
                         "to replace its tokenizer files (nothing else there is touched), or choose "
                         "another directory")
    if "tokenizer.json" in present:  # not ours, so never deleted; but transformers reads it first
        print(f"gpt2 tokenizer: warning: {output / 'tokenizer.json'} stays as it is, and transformers "
              "reads it before vocab.json + merges.txt; remove it to use the new vocabulary there",
              file=sys.stderr)


def _tokenizer_files_in(directory: Path) -> list[str]:
    """Names of the files in `directory` that a tokenizer reader would load."""
    names = [*TOKENIZER_FILES, "tokenizer.json", "encoder.json", "vocab.bpe"]
    return [n for n in names if (directory / n).exists()] + sorted(p.name for p in directory.glob("*.tiktoken"))


def _warn_about_skips(stats: dict) -> None:
    skipped = sum(stats["skipped_lines"].values())
    problems = [f"{n:,} {what}" for n, what in ((skipped, "lines skipped"),
                                                 (stats["replaced_bytes"], "undecodable bytes replaced"),
                                                 (stats["unreadable_files"], "unreadable files skipped"))
                if n]
    if problems:
        example = f" (e.g. {stats['examples'][0]})" if stats["examples"] else ""
        print(f"gpt2 tokenizer: warning: {', '.join(problems)}{example}", file=sys.stderr)


def _train_in_child(inputs: list[str], vocab_size: int, min_frequency: int, text_field: str,
                    name: str, show_bars: bool) -> tuple[Any, dict]:
    """Runs in the child process: read, train, report progress on stderr."""
    from ..data.sources import SourceStats
    from ..tokenizer import Tokenizer

    stats = SourceStats()
    start = time.monotonic()
    last = [start]

    def progress(s: SourceStats, characters: int, finished: bool) -> None:
        # Every second while reading; then once more if reading took that long, because HF's
        # merge phase is silent off a terminal and must not look like a hang.
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS or (finished and now - start >= PROGRESS_SECONDS):
            last[0] = now
            _progress_line(s, characters, now - start, "; computing merges" if finished else "")

    tok = Tokenizer.train(inputs, vocab_size, min_frequency=min_frequency, text_field=text_field,
                          name=name, show_progress=show_bars, stats=stats, progress=progress)
    return tok, stats.to_dict()


def _progress_line(stats, characters: int, seconds: float, tail: str) -> None:
    # One write: the parent may kill this process right after it, and a line cut before its
    # newline would run into the parent's last line.
    sys.stderr.write(f"gpt2 tokenizer: read {stats.bytes_read / 1e6:,.1f} MB, {_count(stats.documents, 'document')}, "
                     f"{characters / 1e6:,.1f}M characters counted in {seconds:.0f} s{tail}\n")
    sys.stderr.flush()


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# ------------------------------------------------------------------------------ the child process
# HF's trainer runs in Rust and never returns to Python while it counts and merges, so Ctrl-C
# would wait for it to finish. It runs in a child Python process instead (a fresh interpreter:
# no fork of a process that may hold threads; not multiprocessing, whose helper processes would
# delay the exit): the parent waits, and on Ctrl-C kills it and leaves at once. The arguments
# go to the child's stdin and its result comes back on its stdout, pickled; stderr is shared,
# for progress lines.

_CHILD_CODE = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
               "from gpt2.cli.tokenizer import _child_main; _child_main()")


def run_in_child(target: Callable, *args: Any, pass_fds: Sequence[int] = ()) -> Any:
    """`target(*args)` in a child process (which also gets the descriptors `pass_fds`); its
    GPT2Error is raised here. Ctrl-C ends the child at once and raises KeyboardInterrupt. The
    child never acts on SIGINT (a terminal's Ctrl-C reaches both processes): the parent decides."""
    import pickle
    import subprocess

    payload = pickle.dumps((os.getpid(), target, args))
    proc = None
    try:
        with _sigint_blocked():  # the child inherits the mask and never gets SIGINT
            proc = subprocess.Popen([sys.executable, "-c", _CHILD_CODE, json.dumps(sys.path)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=tuple(pass_fds))
        with contextlib.suppress(BrokenPipeError):  # a child that died early: reported below
            with proc.stdin:
                proc.stdin.write(payload)
        with proc.stdout:  # not communicate(): on Ctrl-C it waits for the child 0.25 s
            out = proc.stdout.read()
        proc.wait()
    except BaseException:
        if proc is not None:
            proc.kill()
            proc.wait()
        raise
    try:
        status, value = pickle.loads(out)
    except Exception:
        raise TokenizerError(f"the training process ended without a result (exit code {proc.returncode}"
                             f"{'; killed, perhaps for lack of memory' if proc.returncode < 0 else ''})") from None
    if status == "error":
        raise value
    if status == "crash":
        raise RuntimeError(f"training failed in the child process:\n{value}")
    return value


def _child_main() -> None:
    """The child's side: arguments from stdin, (status, value) pickled to stdout."""
    import pickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_pid, target, args = pickle.load(sys.stdin.buffer)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    result_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the result
    try:
        result = ("ok", target(*args))
    except GPT2Error as e:
        result = ("error", e)
    except Exception:
        import traceback

        result = ("crash", traceback.format_exc())
    with result_out:
        pickle.dump(result, result_out)


def _exit_with_parent(parent_pid: int) -> None:
    """An orphaned child (the parent was killed) stops instead of training on alone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a pending Ctrl-C arrives here


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect after it (a few milliseconds of file renames)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise KeyboardInterrupt
