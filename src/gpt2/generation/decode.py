"""The decoding loop: a batch of token sequences through the KV cache, one token per row per step.

The prompts are left-padded to one length (padding is masked out of attention and real tokens get
positions 0, 1, ... as if unpadded, exactly as transformers' generate does), one forward pass
fills the KV cache with the whole prefix ("prefill"), and then each step feeds only the token
just chosen, reading every earlier key/value from the cache: the prefix is never recomputed, and
only the last position's logits are projected.

When a sequence would outgrow the context (n_ctx), the window slides: the oldest tokens are
dropped (the last 3/4 of the context is kept), the cache is rebuilt from the kept tokens with
one prefill, a warning is issued once, and decoding goes on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import torch

from ..errors import UsageError
from ..model import GPT2, KVCache
from .choose import choose_tokens
from .options import SamplingOptions
from .processors import active_processors

# After a slide, the window keeps this fraction of the context: the cache is rebuilt once
# every n_ctx / 4 tokens instead of at every token (which would be quadratic work).
KEEP_FRACTION = 0.75


class ContextWindowWarning(UserWarning):
    """A sequence outgrew the model's context: the oldest tokens were dropped."""


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
    if len(prompts) == 0:
        return
    _check(model, prompts, options, generators)
    finished = [False] * len(prompts) if finished is None else finished
    track_seen = any(p.needs_seen for p in active_processors(options))
    batch = _Batch(model, prompts, options.max_new_tokens, track_seen)
    n_ctx, keep = model.config.n_ctx, batch.keep
    warned = batch.start > 0
    if warned:  # stacklevel 3: the loop in generate() or Stream
        warnings.warn(f"the prompt has {batch.length} tokens, more than the model's context of "
                      f"{n_ctx}: keeping its last {keep}", ContextWindowWarning, stacklevel=3)
    logits = batch.prefill()
    for step in range(options.max_new_tokens):
        with torch.inference_mode():  # never around a yield: the caller's code is not in it
            token = choose_tokens(logits, options, batch.seen, generators)
            batch.append(token)
        yield token.tolist()
        if step == options.max_new_tokens - 1 or all(finished):
            return
        if batch.full:
            if not warned:
                warnings.warn(f"the sequence outgrew the model's context of {n_ctx} tokens: "
                              f"sliding the window (keeping the last {keep})", ContextWindowWarning,
                              stacklevel=3)
                warned = True
            logits = batch.slide()
        else:
            logits = batch.step(token)


def _check(model: GPT2, prompts: Sequence[Sequence[int]], options: SamplingOptions,
           generators: Sequence[torch.Generator] | None) -> None:
    if any(len(p) == 0 for p in prompts):
        raise UsageError("a prompt has no tokens; unconditional samples start from <|endoftext|>")
    if not options.greedy and (generators is None or len(generators) != len(prompts)):
        raise ValueError("sampling needs one torch.Generator per row")
    vocab = model.config.vocab_size
    bad = next((t for p in prompts for t in p if not 0 <= t < vocab), None)
    if bad is not None:
        raise UsageError(f"prompt token id {bad} is out of range: the vocabulary has {vocab} ids "
                         f"(0 to {vocab - 1})")


class _Batch:
    """The rows being decoded: their tokens, left-padded (seq[:, :length] is the sequence so far,
    real marks what is not padding), the KV cache over the window seq[:, start:length], the
    position of each row's last token, and (when a processor needs it) which ids each row holds.

    When the window slides, the kept columns move to the front, so the buffers hold at most the
    prompt and a context's worth of tokens, however large max_new_tokens is.
    """

    def __init__(self, model: GPT2, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 track_seen: bool) -> None:
        config = model.config
        param = model.transformer.wte.weight
        device = param.device
        B, longest = len(prompts), max(len(p) for p in prompts)
        width = max(longest, config.n_ctx) + min(max_new_tokens, config.n_ctx) + 1
        self.model = model
        self.seq = torch.zeros(B, width, dtype=torch.long, device=device)
        self.real = torch.zeros(B, width, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            self.seq[i, longest - len(p) : longest] = torch.tensor(list(p), dtype=torch.long)
            self.real[i, longest - len(p) : longest] = 1
        self.padded = any(len(p) != longest for p in prompts)
        self.length = longest
        self.keep = max(1, int(config.n_ctx * KEEP_FRACTION))
        self.start = longest - self.keep if longest > config.n_ctx else 0  # a prompt too long: its end
        self.cache = KVCache(config, B, min(config.n_ctx, longest + max_new_tokens), device=device,
                             dtype=param.dtype)
        self.rows = torch.arange(B, device=device)
        self.seen: torch.Tensor | None = None  # (B, V) bool
        if track_seen:
            self.seen = torch.zeros(B, config.vocab_size, dtype=torch.bool, device=device)
            self.seen.scatter_(1, self.seq[:, :longest], self.real[:, :longest].bool())
        self.position: torch.Tensor | None = None  # (B,)

    @property
    def full(self) -> bool:
        """Whether the cache has no room for the last token chosen."""
        return self.length - self.start > self.cache.max_len

    @torch.inference_mode()
    def prefill(self) -> torch.Tensor:
        """Fill the emptied cache with the window: the next-token logits (B, V)."""
        self.cache.reset()
        mask = self.real[:, self.start : self.length]
        if self.padded:
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as transformers does
        else:
            positions = torch.arange(self.length - self.start, device=mask.device).expand(len(mask), -1)
        logits = self.model(self.seq[:, self.start : self.length], attention_mask=mask if self.padded else None,
                            position_ids=positions, kv_cache=self.cache, last_logits_only=True)
        self.position = positions[:, -1]
        return logits[:, -1]

    def append(self, token: torch.Tensor) -> None:
        """The chosen tokens (B,) join the sequences (not yet the cache)."""
        self.seq[:, self.length] = token
        self.real[:, self.length] = 1
        self.length += 1
        if self.seen is not None:
            self.seen[self.rows, token] = True

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        """Feed the last tokens (B,) through the cache: the next-token logits (B, V)."""
        self.position = self.position + 1
        mask = self.real[:, self.start : self.length] if self.padded else None
        logits = self.model(token[:, None], attention_mask=mask, position_ids=self.position[:, None],
                            kv_cache=self.cache, last_logits_only=True)
        return logits[:, -1]

    @torch.inference_mode()
    def slide(self) -> torch.Tensor:
        """Keep the last `keep` tokens, moved to the front, and prefill the cache with them."""
        first = self.length - self.keep
        self.seq[:, : self.keep] = self.seq[:, first : self.length].clone()
        self.real[:, : self.keep] = self.real[:, first : self.length].clone()
        self.start, self.length = 0, self.keep
        return self.prefill()
