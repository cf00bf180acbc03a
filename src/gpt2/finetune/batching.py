"""Examples -> padded tensors for the body and the heads.

GPT-2 has no pad token. Padding is never found by comparing ids with a pad id (transformers'
GPT2ForSequenceClassification pools at "the rightmost token that is not the pad id", which is
one token early when a sequence ends in the pad id itself): every row's extract position comes
from its length. Right padding (the default) needs no attention mask (causal attention never
looks right) and keeps positions 0, 1, ...; left padding gets a mask and position ids that
start at 0 on the first real token, so both give the same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .tasks import Example

IGNORE = -100  # cross-entropy's ignore_index


@dataclass
class Batch:
    """B examples of S sequences each, flattened to N = B * S rows of T tokens."""

    input_ids: torch.Tensor  # (N, T)
    extract: torch.Tensor  # (N,) position of each row's extract (last real) token
    lm_targets: torch.Tensor  # (N, T) next token, IGNORE on padding and the last real token
    labels: torch.Tensor | None  # (B,) class index (long) or value (float); None for lm
    n_seq: int  # S
    attention_mask: torch.Tensor | None = None  # (N, T), left padding only
    position_ids: torch.Tensor | None = None  # (N, T), left padding only
    soft: torch.Tensor | None = None  # (B, classes) or (B,): distillation's soft targets

    @property
    def n_examples(self) -> int:
        return self.input_ids.shape[0] // self.n_seq

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.input_ids), move(self.extract), move(self.lm_targets), move(self.labels),
                     self.n_seq, move(self.attention_mask), move(self.position_ids), move(self.soft))


def collate(examples: Sequence[Example], pad_id: int, *, left_pad: bool = False) -> Batch:
    """Pad the examples' sequences to the longest one. All examples have the same number of
    sequences (a task file with varying choice counts is refused when read)."""
    n_seq = len(examples[0].sequences)
    rows = [seq for ex in examples for seq in ex.sequences]
    masks = [m for ex in examples for m in (ex.predict or [None] * len(ex.sequences))]
    lengths = torch.tensor([len(r) for r in rows])
    T = int(lengths.max())
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), T), IGNORE, dtype=torch.long)
    for i, row in enumerate(rows):
        start = T - len(row) if left_pad else 0
        ids[i, start : start + len(row)] = torch.tensor(row)
        targets[i, start : start + len(row) - 1] = ids[i, start + 1 : start + len(row)]
        if masks[i] is not None:  # only the marked tokens are targets (a chat's responses)
            keep = torch.tensor(masks[i][1:], dtype=torch.bool)
            targets[i, start : start + len(row) - 1][~keep] = IGNORE
    labels = None
    if examples[0].label is not None:
        dtype = torch.float32 if isinstance(examples[0].label, float) else torch.long
        labels = torch.tensor([ex.label for ex in examples], dtype=dtype)
    soft = None
    if examples[0].soft is not None:
        soft = torch.tensor([ex.soft for ex in examples], dtype=torch.float32)
    if not left_pad:
        return Batch(ids, lengths - 1, targets, labels, n_seq, soft=soft)
    positions = torch.arange(T).unsqueeze(0) - (T - lengths).unsqueeze(1)
    mask = positions >= 0
    return Batch(ids, torch.full_like(lengths, T - 1), targets, labels, n_seq,
                 attention_mask=mask.long(), position_ids=positions.clamp(min=0), soft=soft)
