"""Training byte-level BPE vocabularies with HF `tokenizers`' BpeTrainer and GPT-2's pre-tokenizer.

These functions return mergeable ranks; `Tokenizer.train` / `Tokenizer.train_from_texts` wrap
them (and `gpt2 tokenizer train` runs those in a child process). A trained vocabulary is the 256
byte tokens, then one token per merge in order (so tiktoken reproduces HF's BPE), then
`<|endoftext|>`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import TokenizerError
from ..validate import is_int
from .files import PathLike, ranks_from_merges
from .gpt2_vocab import EOT

if TYPE_CHECKING:
    from ..data.sources import SourceStats

# Training limits. The least vocabulary is the 256 byte tokens + <|endoftext|>. The most is far
# above any published BPE (GPT-4o's has ~200k ids) yet small enough for HF's trainer, which
# allocates per id up front and aborts the process on absurd sizes; datasets store ids as uint16
# up to 65,536 ids, uint32 above.
MIN_VOCAB_SIZE = 257
MAX_VOCAB_SIZE = 1 << 20
MAX_MIN_FREQUENCY = 1_000_000_000


class _NoText(TokenizerError):
    """Training got no text at all."""


def check_training_numbers(vocab_size: int, min_frequency: int) -> None:
    """TokenizerError unless vocab_size and min_frequency are integers in their ranges."""
    for what, value, low, high in (("vocab_size", vocab_size, MIN_VOCAB_SIZE, MAX_VOCAB_SIZE),
                                   ("min_frequency", min_frequency, 1, MAX_MIN_FREQUENCY)):
        if not is_int(value) or not low <= value <= high:
            extra = f" (256 bytes + {EOT})" if what == "vocab_size" else ""
            raise TokenizerError(f"{what} must be an integer in [{low:,}, {high:,}]{extra}, got {value!r}")


def ranks_from_inputs(
    inputs: Iterable[PathLike] | PathLike,
    vocab_size: int,
    *,
    min_frequency: int,
    text_field: str,
    show_progress: bool,
    stats: "SourceStats | None",
    progress: "Callable[[SourceStats, int, bool], None] | None",
) -> dict[bytes, int]:
    """The body of `Tokenizer.train` (which documents it): the ranks learnt from `inputs`."""
    from ..data.sources import ReadOptions, SourceStats, iter_documents

    check_training_numbers(vocab_size, min_frequency)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [_expand_user(i) for i in inputs]
    if not inputs:
        raise TokenizerError("train: no inputs given (text files, directories, .jsonl, Parquet)")
    stats = stats if stats is not None else SourceStats()
    documents = iter_documents(inputs, ReadOptions(text_field=text_field), stats)

    def texts() -> Iterator[str]:
        characters = 0
        for doc in documents:
            for piece in _pieces(doc.text):
                yield piece
                characters += len(piece)
                if progress is not None:
                    progress(stats, characters, False)
        if progress is not None:
            progress(stats, characters, True)

    try:
        return ranks_from_texts(texts(), vocab_size, min_frequency=min_frequency,
                                show_progress=show_progress)
    except _NoText:
        raise TokenizerError(f"no text to train on in {', '.join(inputs[:3])}"
                             f"{' ...' if len(inputs) > 3 else ''}{_why_no_text(stats)}") from None


def ranks_from_texts(
    texts: Iterable[str], vocab_size: int, *, min_frequency: int, show_progress: bool
) -> dict[bytes, int]:
    """The body of `Tokenizer.train_from_texts`: ranks of at most `vocab_size - 1` ids (the
    last id is left for <|endoftext|>), dense and in merge order."""
    try:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, pre_tokenizers, trainers
    except ImportError:
        raise TokenizerError(
            "training a vocabulary needs the `tokenizers` package: pip install tokenizers"
        ) from None
    check_training_numbers(vocab_size, min_frequency)
    seen = [False]

    def counted() -> Iterator[str]:
        for text in texts:
            if text:
                seen[0] = True
                yield text

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1,  # the last id is <|endoftext|>
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=show_progress,
    )
    hf.train_from_iterator(counted(), trainer)
    if not seen[0]:  # HF would return the 256 bytes alone: a useless vocabulary
        raise _NoText("no text to train on")
    model = json.loads(hf.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    ranks, specials = ranks_from_merges(model["vocab"], merges, "trained vocabulary")
    if specials:  # cannot happen with an empty special_tokens list; guard the invariant
        raise TokenizerError(f"trained vocabulary: unexpected tokens {sorted(specials)[:3]}")
    # HF gives a new token the next free id, so ids are dense and in merge order already.
    return ranks


# Training feeds HF long documents in pieces cut only where a cut cannot change how GPT-2's regex
# splits the text: (a) before the last character of a run of 2+ whitespace characters followed by
# a non-space (the whole text splits there too: `\s+(?!\S)` leaves the last one to the next
# piece), and (b) after a lone newline between non-spaces ("x\nY" -> "x", "\n", "Y").
# Only ASCII characters are looked at, on which Python's and tiktoken's `\s` agree.
_CUT = re.compile(r"(?<=[ \t\r\n])(?=[ \t\r\n][!-~])|(?<=[!-~]\n)(?=[!-~])")
# HF pulls 256 pieces at a time, so small pieces keep what it has taken (the progress callback's
# count) within a few MB of what it has counted.
_CHUNK_CHARS = 1 << 14


def _pieces(text: str, chunk_chars: int = _CHUNK_CHARS) -> Iterator[str]:
    """`text`, exactly, in pieces of about `chunk_chars` characters or more (none if empty)."""
    start = 0
    while len(text) - start > chunk_chars:
        cut = _CUT.search(text, start + chunk_chars)
        if cut is None:
            break
        yield text[start:cut.end()]
        start = cut.end()
    if start < len(text):
        yield text[start:]


def _expand_user(item: PathLike) -> str:
    s = os.fspath(item)
    return s if s.startswith("hf:") else os.fspath(Path(s).expanduser())


def _why_no_text(stats: "SourceStats") -> str:
    """What the readers met, for the error when nothing could be trained on."""
    if stats.examples:
        return f": {stats.examples[0]}"
    return f" ({stats.files} files, {stats.documents} documents)"
