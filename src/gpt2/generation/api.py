"""generate() and stream(): text in, samples out, on top of the decoding loop.

    >>> from gpt2 import load, generate, stream
    >>> model, tok = load("gpt2")
    >>> [s.text for s in generate(model, tok, ["Hello", "The meaning of life is"], top_k=40, seed=0)]
    >>> for piece in stream(model, tok, "Once upon a time", max_new_tokens=50):
    ...     print(piece, end="", flush=True)

Both take a SamplingOptions and/or its fields as keywords (the keywords win):
generate(model, tok, prompts, SamplingOptions(top_k=40), seed=1).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import UsageError
from ..model import GPT2
from ..validate import is_int
from .choose import generators
from .decode import decode_tokens
from .options import SamplingOptions, resolve
from .text import RowText, Sample, TokenizerLike, encode_prompt, is_token_ids

# Rows decoded together by generate(): more rows are decoded batch after batch, so that the
# KV cache (which grows with the batch) stays bounded; each row has its own generator, so the
# samples do not depend on the batching.
MAX_BATCH_ROWS = 64


def generate(
    model: GPT2,
    tokenizer: TokenizerLike,
    prompts: str | Sequence[int] | Sequence[str | Sequence[int] | None] | None = None,
    options: SamplingOptions | None = None,
    **overrides: Any,
) -> list[Sample]:
    """Sample continuations of one prompt or a batch of prompts, decoded together.

    prompts: a string, a list of token ids, a list of those (of any lengths), or None for one
    unconditional sample (started from <|endoftext|>; None inside a list works too). Returns
    len(prompts) * n_samples Samples, prompt by prompt (sample j of prompt i at i*n + j).
    options: a SamplingOptions; overrides: any of its fields by name (they win).
    At most MAX_BATCH_ROWS rows are decoded at once (memory); the samples do not depend on it.
    The model's own device and dtype are used.
    """
    options = resolve(options, overrides, "generate")
    one = prompts is None or isinstance(prompts, str) or (is_token_ids(prompts) and len(prompts) > 0)
    prompt_list = [prompts] if one else list(prompts)
    if not prompt_list:
        return []
    encoded = [encode_prompt(tokenizer, p) for p in prompt_list]
    n = options.n_samples
    rows = [ids for ids in encoded for _ in range(n)]
    prompt_indices = [i for i in range(len(encoded)) for _ in range(n)]
    sample_indices = [j for _ in encoded for j in range(n)]
    if options.seed is None:  # one seed for every batch of rows
        options = dataclasses.replace(options, seed=secrets.randbits(63))
    out: list[Sample] = []
    for i in range(0, len(rows), MAX_BATCH_ROWS):
        part = slice(i, i + MAX_BATCH_ROWS)
        batch = _Decoding(model, tokenizer, rows[part], options, sample_indices[part], prompt_indices[part])
        for _ in batch.pieces():
            pass
        out += batch.samples()
    return out


def stream(
    model: GPT2,
    tokenizer: TokenizerLike,
    prompt: str | Sequence[int] | None = None,
    options: SamplingOptions | None = None,
    *,
    sample_index: int = 0,
    **overrides: Any,
) -> Stream:
    """One sample of one prompt, as an iterator of text pieces yielded as they are decoded.

    Never yields half a UTF-8 character nor any part of a stop string. With the same seed,
    sample_index j gives generate(..., n_samples=n)'s sample j (n > j) of the same prompt;
    options.n_samples plays no part.
    """
    options = resolve(options, overrides, "stream")
    if not is_int(sample_index) or sample_index < 0:
        raise UsageError(f"sample_index must be an integer >= 0, got {sample_index!r}")
    ids = encode_prompt(tokenizer, prompt)
    return Stream(_Decoding(model, tokenizer, [ids], options, [sample_index], [0]))


class Stream:
    """The text of one sample as it is decoded: iterate for the pieces (str); afterwards
    `.sample` holds the finished Sample (the pieces joined equal sample.text)."""

    def __init__(self, decoding: _Decoding) -> None:
        self._decoding = decoding
        self.sample: Sample | None = None

    def __iter__(self) -> Iterator[str]:
        for _, piece in self._decoding.pieces():
            yield piece
        self.sample = self._decoding.samples()[0]


class _Decoding:
    """Rows decoded together, token ids to text: pieces() yields each row's text as it
    appears; once it is exhausted, samples() gives the finished Samples."""

    def __init__(self, model: GPT2, tokenizer: TokenizerLike, prompt_ids: list[list[int]],
                 options: SamplingOptions, sample_indices: list[int], prompt_indices: list[int]) -> None:
        self.model, self.options = model, options
        self.prompt_ids, self.sample_indices, self.prompt_indices = prompt_ids, sample_indices, prompt_indices
        self.seed = options.seed if options.seed is not None else secrets.randbits(63)
        stop_ids = frozenset((tokenizer.eot_token,) if options.stop_token_ids is None else options.stop_token_ids)
        self.rows = [RowText(tokenizer, options.stop, stop_ids) for _ in prompt_ids]

    def pieces(self) -> Iterator[tuple[int, str]]:
        """(row, text) as text can be shown, until every row has stopped or reached max_new_tokens."""
        rngs = None
        if not self.options.greedy:
            rngs = generators(self.seed, self.sample_indices, self.model.transformer.wte.weight.device)
        finished = [False] * len(self.rows)
        for tokens in decode_tokens(self.model, self.prompt_ids, self.options, rngs, finished):
            for i, (row, token) in enumerate(zip(self.rows, tokens)):
                if finished[i]:
                    continue
                piece = row.add(token)
                finished[i] = row.finish_reason is not None
                if piece:
                    yield i, piece
        for i, row in enumerate(self.rows):
            piece = row.close()
            if piece:
                yield i, piece

    def samples(self) -> list[Sample]:
        return [Sample(prompt_tokens=p, tokens=r.tokens, text=r.text, finish_reason=r.finish_reason or "length",
                       prompt_index=pi, sample_index=j, seed=self.seed)
                for p, r, pi, j in zip(self.prompt_ids, self.rows, self.prompt_indices, self.sample_indices)]
