"""The scorer: batched, sorted, shared-context log-likelihoods equal one-at-a-time forward
passes; sliding windows score every token exactly once; closed-form values on a crafted model."""

from __future__ import annotations

import math
import random

import pytest
import torch

from conftest import V, unigram_logprob, unigram_model
from gpt2 import GPT2, GPT2Config
from gpt2.evaluate import EvalDataError
from gpt2.evaluate.scoring import Scorer, rolling_windows


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT2(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_ctx=48)).eval()
    with torch.no_grad():  # peakier distributions than the 0.02 init, so greedy checks mean something
        m.transformer.wte.weight.mul_(20)
    return m


def naive(model, ctx, cont):
    """log p(cont | ctx) from one unbatched forward pass over ctx + cont (lm-eval's truncation)."""
    ctx = ctx or [50256]
    full = (ctx + cont)[-(model.config.n_ctx + 1):]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full[:-1]]))[0].float(), -1)
    pos = range(len(full) - 1 - len(cont), len(full) - 1)
    lps = [logp[p, t].item() for p, t in zip(pos, cont)]
    greedy = all(logp[p].argmax().item() == t for p, t in zip(pos, cont))
    return sum(lps), greedy, lps


def test_batched_equals_one_at_a_time(model):
    rng = random.Random(1)
    requests = []
    for _ in range(12):
        ctx = [rng.randrange(V) for _ in range(rng.randrange(1, 30))]
        for _ in range(rng.choice([1, 2, 4])):  # groups share their context
            requests.append((ctx, [rng.randrange(V) for _ in range(rng.randrange(1, 12))]))
    requests.append(([7] * 45, [9] * 10))  # longer than n_ctx + 1: truncated from the left
    requests.append(([7] * 45, [11] * 3))  # shared context that needs truncation
    requests.append(([], [5, 6, 7]))  # empty context: <|endoftext|> stands in
    expected = [naive(model, ctx, cont) for ctx, cont in requests]
    for batch_size in (1, 3, 64):
        scores = Scorer(model, batch_size=batch_size).loglikelihood(requests)
        for (lp, greedy, lps), s in zip(expected, scores):
            assert s.logprob == pytest.approx(lp, abs=1e-4)
            assert s.token_logprobs == pytest.approx(lps, abs=1e-4)
            assert s.is_greedy == greedy


def test_greedy_continuations_are_recognised(model):
    # Build continuations from the model's own argmax: they must come back greedy.
    ctx = [464, 3290, 373]
    cont = []
    with torch.no_grad():
        for _ in range(4):
            cont.append(int(model(torch.tensor([ctx + cont]))[0, -1].argmax()))
    other = cont[:3] + [(cont[3] + 1) % V]
    s = Scorer(model, batch_size=4).loglikelihood([(ctx, cont), (ctx, other)])
    assert s[0].is_greedy and all(s[0].token_is_greedy)
    assert not s[1].is_greedy and s[1].token_is_greedy == (True, True, True, False)


def test_rolling_windows_by_hand():
    # s = [prefix] + 10 tokens; windows of 4.
    assert rolling_windows(10, 4, 4) == [(0, 1, 5), (4, 5, 9), (6, 9, 11)]  # last one filled with context
    assert rolling_windows(10, 4, 2) == [(0, 1, 5), (2, 5, 7), (4, 7, 9), (6, 9, 11)]
    assert rolling_windows(3, 4, 2) == [(0, 1, 4)]
    assert rolling_windows(0, 4, 4) == []
    for n, L, stride in [(1, 1, 1), (37, 8, 3), (100, 16, 16), (17, 16, 1)]:
        ws = rolling_windows(n, L, stride)
        scored = [i for _, a, e in ws for i in range(a, e)]
        assert scored == list(range(1, n + 1))  # every token once, in order
        assert all(e - 1 - start <= L for start, _, e in ws)  # inputs fit the context
        assert all(start <= a - 1 for start, a, _ in ws)


def test_rolling_matches_lm_eval_windows(model):
    utils = pytest.importorskip("lm_eval.utils")
    rng = random.Random(2)
    doc = [rng.randrange(V) for _ in range(130)]
    L = model.config.n_ctx
    ref = sum(naive(model, *utils.make_disjoint_window(w))[0]
              for w in utils.get_rolling_token_windows(doc, 50256, L, 1))
    assert Scorer(model, batch_size=2).rolling([doc])[0].logprob == pytest.approx(ref, abs=1e-3)


def test_rolling_with_stride_is_exact_per_token(model):
    # With stride s, token i is predicted from the window that scores it; check one window by hand.
    rng = random.Random(3)
    doc = [rng.randrange(V) for _ in range(70)]
    L, stride = model.config.n_ctx, 16
    s = [50256] + doc
    total = 0.0
    for start, a, end in rolling_windows(len(doc), L, stride):
        total += naive(model, s[start:a], s[a:end])[0]
    got = Scorer(model, batch_size=3).rolling([doc], stride=stride)[0]
    assert got.logprob == pytest.approx(total, abs=1e-3)
    assert got.n_tokens == 70
    # A document that fits one window: the plain forward pass's log-likelihood.
    short = doc[:30]
    assert Scorer(model).rolling([short])[0].logprob == pytest.approx(naive(model, [], short)[0], abs=1e-4)


def test_crafted_unigram_model_closed_form():
    table = {6342: 8.0, 262: 5.0}  # " Paris", " the"
    m = unigram_model(table)
    scores = Scorer(m).loglikelihood([([464], [6342]), ([464, 1], [262, 6342, 995])])
    assert scores[0].logprob == pytest.approx(unigram_logprob(table, 6342), abs=1e-4)
    assert scores[0].is_greedy
    expected = sum(unigram_logprob(table, t) for t in (262, 6342, 995))
    assert scores[1].logprob == pytest.approx(expected, abs=1e-4)
    assert scores[1].token_is_greedy == (False, True, False)
    # Uniform model: every token costs ln V, whatever the windows.
    u = Scorer(unigram_model({}, n_ctx=16), batch_size=4).rolling([list(range(100)), [1, 2]], stride=5)
    assert [r.logprob for r in u] == pytest.approx([-100 * math.log(V), -2 * math.log(V)], rel=1e-6)


def test_filtered_first_argmax():
    table = {262: 9.0, 6342: 8.0}
    allowed = torch.ones(V, dtype=torch.bool)
    allowed[262] = False  # " the" is filtered out
    s = Scorer(unigram_model(table)).loglikelihood([([464], [6342])], first_token_filter=allowed)[0]
    assert s.filtered_first_argmax == 6342 and not s.is_greedy


def test_bad_requests():
    m = unigram_model({}, n_ctx=8)
    # Requests come from data: our EvalDataError (one line in the CLI), still a ValueError.
    with pytest.raises(EvalDataError, match="cbt: request 1 has an empty continuation"):
        Scorer(m).loglikelihood([([1], [2]), ([1], [])], desc="cbt")
    with pytest.raises(EvalDataError, match="scores 9 tokens, more than the model's context n_ctx=8"):
        Scorer(m).loglikelihood([([1], [2] * 9)])
    assert issubclass(EvalDataError, ValueError)
    with pytest.raises(ValueError, match="batch_size"):
        Scorer(m, batch_size=0)


def test_shared_contexts_that_do_not_pack_into_n_ctx(model):
    # Each request fits n_ctx, but a long question with short answers next to a short question
    # with long answers packs to 40 + 29 > 48 positions: the batch must be split, not crash
    # (it raised "KVCache max_len must be in [1, n_ctx]" at batch size 16), and the numbers
    # must not depend on the batch size.
    rng = random.Random(4)
    L = model.config.n_ctx

    def tokens(n):
        return [rng.randrange(V) for _ in range(n)]

    requests = []
    for ctx_len, cont_len in [(40, 2), (5, 30), (L - 10, 11), (12, 20), (3, 3)]:
        ctx = tokens(ctx_len)
        requests += [(ctx, tokens(cont_len)) for _ in range(3)]
    assert all(len(c) + len(x) <= L + 1 for c, x in requests)
    expected = [naive(model, ctx, cont) for ctx, cont in requests]
    results = {}
    for batch_size in (1, 2, 16):
        scores = Scorer(model, batch_size=batch_size).loglikelihood(requests)
        results[batch_size] = scores
        for (lp, greedy, lps), s in zip(expected, scores):
            assert s.logprob == pytest.approx(lp, abs=1e-4)
            assert s.token_logprobs == pytest.approx(lps, abs=1e-4)
    # The same numbers at every batch size (up to float rounding: padding changes the sums' order).
    for batch_size in (2, 16):
        for a, b in zip(results[1], results[batch_size]):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
            assert a.token_is_greedy == b.token_is_greedy
