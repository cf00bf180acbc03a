"""Sampling text from GPT-2: incremental decoding with a preallocated KV cache.

    >>> from gpt2 import GPT2, Tokenizer, generate, stream
    >>> model, tok = GPT2.from_pretrained("gpt2"), Tokenizer.from_pretrained("gpt2")
    >>> [s.text for s in generate(model, tok, ["Hello", "The meaning of life is"], top_k=40, seed=0)]
    >>> for piece in stream(model, tok, "Once upon a time", max_new_tokens=50):
    ...     print(piece, end="", flush=True)

How a batch is decoded: the prompts are left-padded to one length (padding is masked out of
attention and real tokens get positions 0, 1, ... as if unpadded, exactly as transformers'
generate does), one forward pass fills the KV cache with the whole prefix ("prefill"), and
then each step feeds only the token just chosen, reading every earlier key/value from the
cache: the prefix is never recomputed, and only the last position's logits are projected.

Choosing the next token follows transformers' definitions, in their order: repetition
penalty (CTRL, Keskar et al. 2019), then temperature, top-k, top-p (nucleus, Holtzman et al.
2019), then one draw from the softmax; temperature 0 is greedy (argmax after the penalty).

Randomness never touches the global RNG: sample j of every prompt draws from its own
torch.Generator, seeded from (seed, j), so the same seed gives the same samples.

When a sequence would outgrow the context (n_ctx), the window slides: the oldest tokens are
dropped (the last 3/4 of the context is kept), the cache is rebuilt from the kept tokens with
one prefill, a warning is issued once, and decoding goes on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import secrets
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .config import MAX_NEW_TOKENS, MAX_SAMPLES, MAX_SEED, MAX_TOP_K, SAMPLING_RANGES as RANGES
from .errors import UsageError
from .model import GPT2, KVCache

# After a slide, the window keeps this fraction of the context: the cache is rebuilt once
# every n_ctx / 4 tokens instead of at every token (which would be quadratic work).
KEEP_FRACTION = 0.75
# Rows decoded together by generate(): more rows are decoded batch after batch, so that the
# KV cache (which grows with the batch) stays bounded; each row has its own generator, so the
# samples do not depend on the batching.
MAX_BATCH_ROWS = 64


class ContextWindowWarning(UserWarning):
    """A sequence outgrew the model's context: the oldest tokens were dropped."""


class StreamDecoder(Protocol):
    def add(self, token_id: int) -> str: ...
    def flush(self) -> str: ...


class TokenizerLike(Protocol):
    """What sampling needs of a tokenizer (gpt2.Tokenizer provides it)."""

    eot_token: int

    def encode(self, text: str, *args, **kwargs) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def stream_decoder(self) -> StreamDecoder: ...


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SamplingOptions:
    """How to choose tokens and when to stop; validated on construction (UsageError).

    temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off; repetition_penalty
    1 is none. stop_token_ids None means the tokenizer's <|endoftext|>; () never stops early.
    seed None draws a fresh seed (recorded in each Sample). Ranges: see RANGES.
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] | None = None
    seed: int | None = None
    n_samples: int = 1

    def __post_init__(self) -> None:
        def check(name: str, ok: bool) -> None:
            if not ok:
                raise UsageError(f"{name} must be {RANGES[name]}, got {getattr(self, name)!r}")

        check("max_new_tokens", _is_int(self.max_new_tokens) and 1 <= self.max_new_tokens <= MAX_NEW_TOKENS)
        check("temperature", _is_real(self.temperature) and self.temperature >= 0)
        check("top_k", _is_int(self.top_k) and 0 <= self.top_k <= MAX_TOP_K)
        check("top_p", _is_real(self.top_p) and 0 < self.top_p <= 1)
        check("repetition_penalty", _is_real(self.repetition_penalty) and self.repetition_penalty > 0)
        check("n_samples", _is_int(self.n_samples) and 1 <= self.n_samples <= MAX_SAMPLES)
        check("seed", self.seed is None or (_is_int(self.seed) and 0 <= self.seed <= MAX_SEED))
        if isinstance(self.stop, str):  # one stop string, not its characters
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not all(isinstance(s, str) and s for s in self.stop):
            raise UsageError(f"stop strings must be non-empty strings, got {self.stop!r}")
        if self.stop_token_ids is not None:
            object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
            if not all(_is_int(t) and t >= 0 for t in self.stop_token_ids):
                raise UsageError(f"stop_token_ids must be token ids (integers >= 0), got {self.stop_token_ids!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class Sample:
    """One generated continuation.

    tokens are the generated ids only (a stop token or the tokens of a stop string excluded);
    text is the generated text only, cut before the first stop string.
    finish_reason: "length" (max_new_tokens reached), "stop_token" or "stop_string".
    """

    prompt_tokens: list[int]
    tokens: list[int]
    text: str
    finish_reason: str
    prompt_index: int = 0
    sample_index: int = 0
    seed: int = 0


# --------------------------------------------------------------------------- logits processors
# Each takes logits (B, V) and returns new logits (B, V); -inf marks a removed token. They are
# transformers' RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper and
# TopPLogitsWarper (min_tokens_to_keep=1), written for this module.


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty on every token id already in the sequence (`seen`: (B, V) bool):
    positive logits are divided by `penalty`, negative ones multiplied by it."""
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalized, logits)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by the temperature (> 0): < 1 sharpens the distribution, > 1 flattens it."""
    return logits / temperature


def apply_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (all of those tied with the k-th), -inf the rest."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def apply_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most probable tokens whose probabilities sum
    to at least p (a token is dropped when the mass of the tokens less probable than or as
    probable as it, itself included, is <= 1 - p); the most probable token is always kept."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def _cool(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """apply_temperature; below 1, each row is first shifted so that its maximum is 0, which
    leaves the softmax as it was and keeps a tiny temperature from overflowing logits to inf."""
    if temperature < 1:
        finite = torch.finfo(logits.dtype)
        logits = logits - logits.amax(-1, keepdim=True).clamp(finite.min, finite.max)
    return apply_temperature(logits, temperature)


def _finite(logits: torch.Tensor) -> torch.Tensor:
    """Overflowed logits (a tiny temperature or penalty divides them to +inf) capped at the
    largest float, so the softmax stays a distribution (-inf, a removed token, stays)."""
    return logits.clamp(max=torch.finfo(logits.dtype).max)


def process_logits(logits: torch.Tensor, options: SamplingOptions, seen: torch.Tensor | None) -> torch.Tensor:
    """All of the processors that `options` switches on, in transformers' order."""
    if options.repetition_penalty != 1.0 and seen is not None:
        logits = apply_repetition_penalty(logits, seen, options.repetition_penalty)
    if options.greedy:
        return logits
    if options.temperature != 1.0:
        logits = _cool(logits, options.temperature)
    logits = apply_top_k(_finite(logits), options.top_k)
    return apply_top_p(logits, options.top_p)


def choose_tokens(
    logits: torch.Tensor,
    options: SamplingOptions,
    seen: torch.Tensor | None = None,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """The next token (B,) from next-token logits (B, V): the processors, then argmax (greedy) or
    one draw per row from the softmax, using row i's generator."""
    logits = logits.float()
    if options.greedy:
        return process_logits(logits, options, seen).argmax(dim=-1)
    candidates = None
    if 0 < options.top_k < logits.shape[-1]:
        # Top-k first, on the k candidates only: top-p then sorts k values instead of the whole
        # vocabulary. Same kept set as process_logits unless logits tie with the k-th largest
        # (all ties are kept there): then take the general path.
        if options.repetition_penalty != 1.0 and seen is not None:
            logits = apply_repetition_penalty(logits, seen, options.repetition_penalty)
        if options.temperature != 1.0:
            logits = _cool(logits, options.temperature)
        logits = _finite(logits)
        values, candidates = torch.topk(logits, options.top_k, dim=-1)
        if bool(((logits >= values[:, -1:]).sum(-1) > options.top_k).any()):
            candidates = None
            scores = apply_top_p(apply_top_k(logits, options.top_k), options.top_p)
        else:
            scores = apply_top_p(values, options.top_p)
    else:
        scores = process_logits(logits, options, seen)
    # Inverse-CDF sampling with one uniform number per row from that row's generator; the
    # first index whose cumulative mass exceeds u * total is never a zero-probability token.
    cdf = scores.softmax(dim=-1).double().cumsum(dim=-1)
    u = torch.cat([torch.rand(1, generator=g, device=g.device, dtype=torch.float64) for g in generators])
    index = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).clamp_(max=cdf.shape[-1] - 1)
    if candidates is not None:
        index = candidates.gather(1, index)
    return index.squeeze(1)


def sample_seed(seed: int, sample_index: int) -> int:
    """The torch.Generator seed of sample `sample_index` for a user's seed (64-bit)."""
    digest = hashlib.blake2b(f"{seed}:{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


# --------------------------------------------------------------------------- the decoding loop


def decode_tokens(
    model: GPT2,
    prompts: Sequence[Sequence[int]],
    options: SamplingOptions,
    generators: Sequence[torch.Generator] | None = None,
    finished: list[bool] | None = None,
) -> Iterator[list[int]]:
    """Decode a batch of token sequences; yield the next token of every row at each step.

    Runs at most options.max_new_tokens steps (the stop options are the caller's business:
    it marks rows done in `finished`, and decoding ends early once every row is done).
    `generators` gives each row its torch.Generator (not needed when greedy). The prompts
    must be non-empty and may differ in length.
    """
    B = len(prompts)
    if B == 0:
        return
    if any(len(p) == 0 for p in prompts):
        raise UsageError("a prompt has no tokens; unconditional samples start from <|endoftext|>")
    if not options.greedy and (generators is None or len(generators) != B):
        raise ValueError("sampling needs one torch.Generator per row")
    finished = [False] * B if finished is None else finished
    config = model.config
    param = model.transformer.wte.weight
    device, dtype = param.device, param.dtype
    vocab = config.vocab_size
    bad = next((t for p in prompts for t in p if not 0 <= t < vocab), None)
    if bad is not None:
        raise UsageError(f"prompt token id {bad} is out of range: the vocabulary has {vocab} ids "
                         f"(0 to {vocab - 1})")

    # The tokens of every row, left-padded: seq[:, :length] is the sequence so far; real[]
    # marks non-padding. The window of the sequence in the cache starts at column `start`.
    # When the window slides, the kept columns move to the front (compact), so the buffers
    # hold at most the prompt and a context's worth of tokens, however large max_new_tokens is.
    longest = max(len(p) for p in prompts)
    total = longest + options.max_new_tokens
    width = max(longest, config.n_ctx) + min(options.max_new_tokens, config.n_ctx) + 1
    seq = torch.zeros(B, width, dtype=torch.long, device=device)
    real = torch.zeros(B, width, dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        seq[i, longest - len(p) : longest] = torch.tensor(list(p), dtype=torch.long)
        real[i, longest - len(p) : longest] = 1
    padded = any(len(p) != longest for p in prompts)
    length = longest

    seen = None  # (B, V) bool: which ids occur in each row, for the repetition penalty
    if options.repetition_penalty != 1.0:
        seen = torch.zeros(B, vocab, dtype=torch.bool, device=device)
        seen.scatter_(1, seq[:, :length], real[:, :length].bool())

    keep = max(1, int(config.n_ctx * KEEP_FRACTION))
    cache = KVCache(config, B, min(config.n_ctx, total), device=device, dtype=dtype)
    warned = False

    # inference_mode wraps each piece of work, never a yield: the caller's code between steps
    # must not run in inference mode.
    @torch.inference_mode()
    def prefill(start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill the (reset) cache with columns [start, length); the next-token logits and the
        position of the last column of each row."""
        cache.reset()
        mask = real[:, start:length]
        if padded:
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as transformers does
        else:
            positions = torch.arange(length - start, device=device).expand(B, -1)
        logits = model(seq[:, start:length], attention_mask=mask if padded else None,
                       position_ids=positions, kv_cache=cache, last_logits_only=True)
        return logits[:, -1], positions[:, -1]

    @torch.inference_mode()
    def compact(start: int, length: int) -> None:
        """Move columns [start, length) to the front of seq and real."""
        seq[:, : length - start] = seq[:, start:length].clone()
        real[:, : length - start] = real[:, start:length].clone()

    @torch.inference_mode()
    def choose(logits: torch.Tensor) -> torch.Tensor:
        token = choose_tokens(logits, options, seen, generators)
        seq[:, length] = token
        real[:, length] = 1
        if seen is not None:
            seen[torch.arange(B, device=device), token] = True
        return token

    @torch.inference_mode()
    def advance(token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Feed one token per row through the cache: the next-token logits."""
        logits = model(token[:, None], attention_mask=real[:, start:length] if padded else None,
                       position_ids=position[:, None], kv_cache=cache, last_logits_only=True)
        return logits[:, -1]

    start = 0
    if longest > config.n_ctx:
        start = longest - keep
        warnings.warn(f"the prompt has {longest} tokens, more than the model's context of "
                      f"{config.n_ctx}: keeping its last {keep}", ContextWindowWarning, stacklevel=3)
        warned = True
    logits, position = prefill(start)
    for step in range(options.max_new_tokens):
        token = choose(logits)
        length += 1
        yield token.tolist()
        if step == options.max_new_tokens - 1 or all(finished):
            return
        if length - start > cache.max_len:  # the cache is full: slide the window
            if not warned:
                warnings.warn(f"the sequence outgrew the model's context of {config.n_ctx} "
                              f"tokens: sliding the window (keeping the last {keep})",
                              ContextWindowWarning, stacklevel=3)
                warned = True
            compact(length - keep, length)
            start, length = 0, keep
            logits, position = prefill(start)
        else:
            position = position + 1
            logits = advance(token, position)


# --------------------------------------------------------------------------- text


class _Row:
    """The text side of one sequence: incremental detokenization, stops, held-back text."""

    def __init__(self, tokenizer: TokenizerLike, options: SamplingOptions, stop_ids: frozenset[int]) -> None:
        self.decoder = _stream_decoder(tokenizer)
        self.stop = options.stop
        self.stop_ids = stop_ids
        self.tokens: list[int] = []
        self.ends: list[int] = []  # len(text) after each token
        self.text = ""
        self.emitted = 0  # characters of text already handed out
        self.finish_reason: str | None = None

    def add(self, token: int) -> str:
        """Take the next token; return the text that can be shown now."""
        if token in self.stop_ids:
            self.finish_reason = "stop_token"
            return self._append(self.decoder.flush(), final=True)
        self.tokens.append(token)
        piece = self.decoder.add(token)
        out = self._append(piece, final=False)
        self.ends.append(len(self.text))
        return out

    def close(self) -> str:
        """No more tokens (max_new_tokens reached): the rest of the text."""
        if self.finish_reason is None:
            self.finish_reason = "length"
            return self._append(self.decoder.flush(), final=True)
        return ""

    def _append(self, piece: str, final: bool) -> str:
        before = len(self.text)
        self.text += piece
        if self.stop:
            # A stop string may straddle earlier pieces: search from where one could begin.
            lookback = max(len(s) for s in self.stop) - 1
            hits = [i for s in self.stop if (i := self.text.find(s, max(0, before - lookback))) >= 0]
            if hits:
                cut = min(hits)
                self.text = self.text[:cut]
                self.tokens = self.tokens[: sum(1 for e in self.ends if e <= cut)]
                self.finish_reason = "stop_string"
                final = True
        safe = len(self.text) if final else len(self.text) - self._held()
        out = self.text[self.emitted : safe]
        self.emitted = max(self.emitted, safe)
        return out

    def _held(self) -> int:
        """Length of the longest end of the text that could begin a stop string."""
        held = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:n]):
                    held = n
                    break
        return held


class _FallbackStreamDecoder:
    """Incremental decoding for a tokenizer without stream_decoder(): emit the decoded text once
    it no longer ends in a partial UTF-8 character (shown by decode() as U+FFFD)."""

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer
        self.pending: list[int] = []

    def add(self, token_id: int) -> str:
        self.pending.append(token_id)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd") and len(self.pending) < 4:
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text = self.tokenizer.decode(self.pending) if self.pending else ""
        self.pending = []
        return text


def _stream_decoder(tokenizer: TokenizerLike) -> StreamDecoder:
    factory = getattr(tokenizer, "stream_decoder", None)
    return factory() if factory is not None else _FallbackStreamDecoder(tokenizer)


def _encode_prompt(tokenizer: TokenizerLike, prompt: str | None) -> list[int]:
    if prompt is None:
        return [tokenizer.eot_token]  # unconditional, as OpenAI's generate_unconditional_samples
    if not isinstance(prompt, str):
        raise UsageError(f"a prompt must be a string (or None for unconditional), got {type(prompt).__name__}")
    if prompt == "":
        raise UsageError("empty prompt; pass None for an unconditional sample")
    try:
        return list(tokenizer.encode(prompt, allowed_special="all"))
    except TypeError:  # a tokenizer whose encode() takes no allowed_special
        return list(tokenizer.encode(prompt))


def _run(
    model: GPT2,
    tokenizer: TokenizerLike,
    prompt_ids: list[list[int]],
    options: SamplingOptions,
    sample_indices: list[int],
    prompt_indices: list[int],
) -> Iterator[tuple[int, str, list[Sample] | None]]:
    """Decode rows; yield (row, text piece, None) as text appears, then (-1, "", samples)."""
    seed = options.seed if options.seed is not None else secrets.randbits(63)
    device = model.transformer.wte.weight.device
    generators = None
    if not options.greedy:
        generators = [torch.Generator(device=device).manual_seed(sample_seed(seed, j)) for j in sample_indices]
    stop_ids = frozenset((tokenizer.eot_token,) if options.stop_token_ids is None else options.stop_token_ids)
    rows = [_Row(tokenizer, options, stop_ids) for _ in prompt_ids]
    finished = [False] * len(rows)
    for tokens in decode_tokens(model, prompt_ids, options, generators, finished):
        for i, (row, token) in enumerate(zip(rows, tokens)):
            if finished[i]:
                continue
            piece = row.add(token)
            finished[i] = row.finish_reason is not None
            if piece:
                yield i, piece, None
    for i, row in enumerate(rows):
        piece = row.close()
        if piece:
            yield i, piece, None
    yield -1, "", [
        Sample(prompt_tokens=p, tokens=r.tokens, text=r.text, finish_reason=r.finish_reason or "length",
               prompt_index=pi, sample_index=j, seed=seed)
        for p, r, pi, j in zip(prompt_ids, rows, prompt_indices, sample_indices)
    ]


# --------------------------------------------------------------------------- the public API


def generate(
    model: GPT2,
    tokenizer: TokenizerLike,
    prompts: str | Sequence[str | None] | None = None,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    stop: Sequence[str] = (),
    stop_token_ids: Sequence[int] | None = None,
    seed: int | None = None,
    n_samples: int = 1,
) -> list[Sample]:
    """Sample continuations of one prompt or a batch of prompts, decoded together.

    prompts: a string, a list of strings (of any lengths), or None for one unconditional
    sample (started from <|endoftext|>; None inside a list works too). Returns
    len(prompts) * n_samples Samples, prompt by prompt (sample j of prompt i at i*n + j).
    At most MAX_BATCH_ROWS rows are decoded at once (memory); the samples do not depend on it.
    Options: see SamplingOptions. The model's own device and dtype are used.
    """
    options = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                              top_p=top_p, repetition_penalty=repetition_penalty, stop=stop,
                              stop_token_ids=None if stop_token_ids is None else tuple(stop_token_ids),
                              seed=seed, n_samples=n_samples)
    prompt_list = [prompts] if prompts is None or isinstance(prompts, str) else list(prompts)
    if not prompt_list:
        return []
    encoded = [_encode_prompt(tokenizer, p) for p in prompt_list]
    n = options.n_samples
    rows = [ids for ids in encoded for _ in range(n)]
    prompt_indices = [i for i in range(len(encoded)) for _ in range(n)]
    sample_indices = [j for _ in encoded for j in range(n)]
    if options.seed is None:  # one seed for every batch of rows
        options = dataclasses.replace(options, seed=secrets.randbits(63))
    out: list[Sample] = []
    for i in range(0, len(rows), MAX_BATCH_ROWS):
        part = slice(i, i + MAX_BATCH_ROWS)
        for _, _, samples in _run(model, tokenizer, rows[part], options, sample_indices[part],
                                  prompt_indices[part]):
            if samples is not None:
                out += samples
    return out


class Stream:
    """The text of one sample as it is decoded: iterate for the pieces (str); afterwards
    `.sample` holds the finished Sample (the pieces joined equal sample.text)."""

    def __init__(self, events: Iterator[tuple[int, str, list[Sample] | None]]) -> None:
        self._events = events
        self.sample: Sample | None = None

    def __iter__(self) -> Iterator[str]:
        for _, piece, samples in self._events:
            if samples is not None:
                self.sample = samples[0]
            elif piece:
                yield piece


def stream(
    model: GPT2,
    tokenizer: TokenizerLike,
    prompt: str | None = None,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    stop: Sequence[str] = (),
    stop_token_ids: Sequence[int] | None = None,
    seed: int | None = None,
    sample_index: int = 0,
) -> Stream:
    """One sample of one prompt, as an iterator of text pieces yielded as they are decoded.

    Never yields half a UTF-8 character nor any part of a stop string. With the same seed,
    sample_index j gives generate(..., n_samples=n)'s sample j (n > j) of the same prompt.
    """
    options = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                              top_p=top_p, repetition_penalty=repetition_penalty, stop=stop,
                              stop_token_ids=None if stop_token_ids is None else tuple(stop_token_ids),
                              seed=seed)
    if not _is_int(sample_index) or sample_index < 0:
        raise UsageError(f"sample_index must be an integer >= 0, got {sample_index!r}")
    ids = _encode_prompt(tokenizer, prompt)
    return Stream(_run(model, tokenizer, [ids], options, [sample_index], [0]))
