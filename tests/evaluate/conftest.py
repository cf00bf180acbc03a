"""Fixtures of the evaluation tests: GPT-2's tokenizer, crafted models whose probabilities are
known in closed form, and the hand-written data files in fixtures/."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
V = 50257


def unigram_model(logits: dict[int, float] | None = None, n_ctx: int = 64):
    """A GPT2 whose next-token distribution ignores the context: softmax(l) with l[t] = v for
    the given tokens and 0 for all others.

    Every weight is zero except ln_f.bias = e_0 and column 0 of the (tied) embedding, which
    holds l: with ln_f's weight at zero its output is its bias whatever the input, so the
    logits are wte @ e_0 = l at every position.
    """
    from gpt2 import GPT2, GPT2Config

    model = GPT2(GPT2Config(n_layer=1, n_embd=8, n_head=2, n_ctx=n_ctx)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        for t, v in (logits or {}).items():
            model.transformer.wte.weight[t, 0] = v
    return model


def unigram_logprob(logits: dict[int, float], token: int) -> float:
    """log softmax(l)[token], by hand: l[token] - log(V - k + sum(exp(l_i)))."""
    lse = math.log(V - len(logits) + sum(math.exp(v) for v in logits.values()))
    return logits.get(token, 0.0) - lse


@pytest.fixture(scope="session")
def tokenizer():
    from gpt2.tokenizer import Tokenizer

    return Tokenizer.from_pretrained("gpt2")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES
