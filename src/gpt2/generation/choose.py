"""The next token of each row: the processors, then the argmax (greedy) or one draw.

Randomness never touches the global RNG: sample j of every prompt draws from its own
torch.Generator, seeded from (seed, j), so the same seed gives the same samples whatever the
batch they are decoded in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .processors import Scores, apply_processors

if TYPE_CHECKING:
    from .options import SamplingOptions


def sample_seed(seed: int, sample_index: int) -> int:
    """The torch.Generator seed of sample `sample_index` for a user's seed (64-bit)."""
    digest = hashlib.blake2b(f"{seed}:{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generators(seed: int, sample_indices: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One generator per row: row i is sample sample_indices[i] of its prompt."""
    return [torch.Generator(device=device).manual_seed(sample_seed(seed, j)) for j in sample_indices]


def choose_tokens(
    logits: torch.Tensor,
    options: SamplingOptions,
    seen: torch.Tensor | None = None,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """The next token (B,) from next-token logits (B, V): the processors, then argmax (greedy) or
    one draw per row from the softmax, using row i's generator."""
    scores = apply_processors(Scores(logits.float(), None, seen), options)
    if options.greedy:
        index = scores.logits.argmax(dim=-1, keepdim=True)
    else:
        # Inverse-CDF sampling with one uniform number per row from that row's generator; the
        # first index whose cumulative mass exceeds u * total is never a zero-probability token.
        cdf = scores.logits.softmax(dim=-1).double().cumsum(dim=-1)
        u = torch.cat([torch.rand(1, generator=g, device=g.device, dtype=torch.float64) for g in generators])
        index = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).clamp_(max=cdf.shape[-1] - 1)
    if scores.ids is not None:  # top-k narrowed the columns to its candidates
        index = scores.ids.gather(1, index)
    return index.squeeze(1)
