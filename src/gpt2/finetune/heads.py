"""Task heads: small layers on the final hidden state at each sequence's extract token.

Each head gets `pooled` (B, S, n_embd): S sequences per example (1; 2 for similarity's two
orderings; one per choice for multiple choice). Parameter names follow transformers, so a
single-task model saves in its layout: `score` as GPT2ForSequenceClassification's,
`summary` as GPT2DoubleHeadsModel's `multiple_choice_head.summary`.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ClassificationHead(nn.Module):
    """Class logits (B, num_labels) (or one regression output) from the sum of an example's
    pooled states: one state for a text or an ordered pair, the two orderings for similarity
    (GPT-1 adds them: the pair has no natural order)."""

    def __init__(self, n_embd: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)  # GPT-1's classifier dropout; none in transformers' head
        self.score = nn.Linear(n_embd, num_labels, bias=False)
        nn.init.normal_(self.score.weight, std=0.02)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.score(self.dropout(pooled.sum(dim=1)))


class MultipleChoiceHead(nn.Module):
    """One score per choice (B, S); a softmax over the choices gives their probabilities."""

    def __init__(self, n_embd: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)  # transformers' summary_first_dropout
        self.summary = nn.Linear(n_embd, 1)
        nn.init.normal_(self.summary.weight, std=0.02)
        nn.init.zeros_(self.summary.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.summary(self.dropout(pooled)).squeeze(-1)
