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


def bigram_model(table: dict[int, dict[int, float]], n_ctx: int = 64):
    """A GPT2 whose next-token distribution depends on the current token only: after token t
    it is softmax(l) with l[u] = table[t][u] for the listed u and 0 for all others; after a
    token not in the table it is uniform. So bigram_logprob gives every score in closed form.

    The output layer is untied from the embedding. Key i of the table embeds as
    e_2i - e_(2i+1): zero mean, so ln_f (weight 1, bias 0, eps ~0) only scales it by
    sqrt(C / 2); every block is zero, so the residual stream reaches ln_f unchanged; row u of
    lm_head holds table[t_i][u] / sqrt(C / 2) in column 2i. Other tokens embed as 0 -> logits 0.
    """
    from gpt2 import GPT2, GPT2Config

    keys = list(table)
    C = max(8, 2 * len(keys))
    model = GPT2(GPT2Config(n_layer=1, n_embd=C, n_head=2, n_ctx=n_ctx, layer_norm_epsilon=1e-12)).eval()
    head = torch.zeros(V, C)
    scale = math.sqrt(C / 2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.transformer.ln_f.weight.fill_(1.0)
        for i, t in enumerate(keys):
            model.transformer.wte.weight[t, 2 * i] = 1.0
            model.transformer.wte.weight[t, 2 * i + 1] = -1.0
            for u, v in table[t].items():
                head[u, 2 * i] = v / scale
    model.lm_head.weight = torch.nn.Parameter(head)
    return model


def bigram_logprob(table: dict[int, dict[int, float]], prev: int, token: int) -> float:
    """log p(token | previous token prev) under bigram_model(table), by hand."""
    return unigram_logprob(table.get(prev, {}), token)


@pytest.fixture(scope="session")
def tokenizer():
    from gpt2.tokenizer import Tokenizer

    return Tokenizer.from_pretrained("gpt2")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES
