"""The logit processors: each declared once in PROCESSORS, in the order they run.

A processor is one SamplingOptions field (its setting), one function and one entry below saying
when it runs. Adding one is exactly that: `gpt2 generate` gets its flag from the option's
declaration, and tests/generation/test_processors.py checks that every entry has its option, its
flag and a bad-input row.

The four here are transformers' RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper and TopPLogitsWarper (min_tokens_to_keep=1), in transformers' order: repetition
penalty (CTRL, Keskar et al. 2019), temperature, top-k, top-p (nucleus, Holtzman et al. 2019).
Greedy decoding (temperature 0) runs only the entries marked greedy=True (the penalty), then
takes the argmax; the others shape the distribution a token is drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .options import SamplingOptions


@dataclass(slots=True)
class Scores:
    """The next-token scores of a batch as they go through the processors.

    logits (B, n) score the token ids `ids` (B, n); ids None means the whole vocabulary in order
    (column j is token j). Top-k narrows the columns to the k candidates, so that the processors
    after it and the draw work on k values instead of the vocabulary. seen (B, V) bool marks the
    ids already in each row (kept only when an active processor needs_seen), else None.
    """

    logits: torch.Tensor
    ids: torch.Tensor | None = None
    seen: torch.Tensor | None = None

    def with_logits(self, logits: torch.Tensor) -> Scores:
        return Scores(logits, self.ids, self.seen)


@dataclass(frozen=True)
class Processor:
    """One entry of the pipeline: `apply(scores, value)` runs when `active(value)` holds, value
    being the option's setting; greedy=False entries run only when sampling."""

    option: str
    apply: Callable[[Scores, Any], Scores]
    active: Callable[[Any], bool]
    greedy: bool = False
    needs_seen: bool = False


# --------------------------------------------------------------------------- on logits (B, V)
# Each takes logits and returns new logits; -inf marks a removed token.


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty on every token id already in the sequence (`seen`: bool, logits' shape):
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


# --------------------------------------------------------------------------- the pipeline entries


def repetition_penalty(s: Scores, penalty: float) -> Scores:
    if s.seen is None:  # no history given: nothing to penalize
        return s
    seen = s.seen if s.ids is None else s.seen.gather(1, s.ids)
    return s.with_logits(apply_repetition_penalty(s.logits, seen, penalty))


def temperature(s: Scores, t: float) -> Scores:
    """apply_temperature (nothing to do at 1), then overflowed logits capped at the largest
    float: a tiny temperature or penalty divides them to +inf, and the processors after this one
    and the softmax need finite values (-inf, a removed token, stays). Below 1, each row is first
    shifted so that its maximum is 0, which leaves the softmax as it was and keeps a tiny
    temperature from overflowing the largest logits."""
    logits = s.logits
    finite = torch.finfo(logits.dtype)
    if t != 1.0:
        if t < 1:
            logits = logits - logits.amax(-1, keepdim=True).clamp(finite.min, finite.max)
        logits = apply_temperature(logits, t)
    return s.with_logits(logits.clamp(max=finite.max))


def top_k(s: Scores, k: int) -> Scores:
    """apply_top_k, narrowing the scores to the k candidates; when logits tie with the k-th
    (apply_top_k keeps them all, more than k) the scores stay whole, with -inf for the rest."""
    if k >= s.logits.shape[-1]:
        return s
    values, columns = torch.topk(s.logits, k, dim=-1)
    if bool(((s.logits >= values[:, -1:]).sum(-1) > k).any()):
        return s.with_logits(apply_top_k(s.logits, k))
    return Scores(values, columns if s.ids is None else s.ids.gather(1, columns), s.seen)


def top_p(s: Scores, p: float) -> Scores:
    return s.with_logits(apply_top_p(s.logits, p))


PROCESSORS: list[Processor] = [
    Processor("repetition_penalty", repetition_penalty, active=lambda r: r != 1.0, greedy=True, needs_seen=True),
    # Always when sampling (0 is greedy): at 1 it still caps the penalty's overflow.
    Processor("temperature", temperature, active=lambda t: t > 0),
    Processor("top_k", top_k, active=lambda k: k > 0),
    Processor("top_p", top_p, active=lambda p: p < 1.0),
]


def active_processors(options: SamplingOptions) -> list[Processor]:
    """The entries of PROCESSORS that `options` switches on, in order."""
    return [p for p in PROCESSORS
            if (p.greedy or not options.greedy) and p.active(getattr(options, p.option))]


def apply_processors(scores: Scores, options: SamplingOptions) -> Scores:
    """Every processor that `options` switches on, in order."""
    for p in active_processors(options):
        scores = p.apply(scores, getattr(options, p.option))
    return scores


def process_logits(logits: torch.Tensor, options: SamplingOptions, seen: torch.Tensor | None = None) -> torch.Tensor:
    """The processed logits over the whole vocabulary (-inf: removed): the distribution that
    choose_tokens draws from, or takes the argmax of."""
    s = apply_processors(Scores(logits, None, seen), options)
    if s.ids is None:
        return s.logits
    return torch.full_like(logits, float("-inf")).scatter(-1, s.ids, s.logits)
