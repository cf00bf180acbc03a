"""Sampling: greedy decoding against transformers' generate, the logits processors against
transformers' warpers, seeds, stops, streaming, the sliding window and the KV cache."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2 import GPT2, GPT2Config, UsageError
from gpt2.generation import (
    ContextWindowWarning,
    SamplingOptions,
    apply_repetition_penalty,
    apply_temperature,
    apply_top_k,
    apply_top_p,
    decode_tokens,
    generate,
    process_logits,
    stream,
)
from gpt2.tokenizer import Tokenizer

EOT = 50256


# Tiny models decode faster on one thread (and are not slowed by a busy machine).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_pretrained("gpt2")


@pytest.fixture(scope="module")
def pair(tmp_path_factory, hf_model_factory):
    """(transformers model, our model) with the same random weights: theirs saved, ours loaded."""
    hf = hf_model_factory(seed=1, n_positions=128)
    directory = tmp_path_factory.mktemp("sampling-model")
    hf.save_pretrained(directory)
    return hf, GPT2.from_pretrained(directory)


@pytest.fixture(scope="module")
def model(pair) -> GPT2:
    return pair[1]


def random_prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 50257, (n,), generator=g).tolist() for n in lengths]


def hf_greedy(hf, prompts, n, **kwargs):
    """transformers' greedy generate on left-padded prompts, never stopping early."""
    L = max(map(len, prompts))
    ids = torch.full((len(prompts), L), EOT)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(p)
        mask[i, L - len(p):] = 1
    with torch.no_grad():
        out = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                          min_new_tokens=n, pad_token_id=EOT, eos_token_id=None, **kwargs)
    return out[:, L:].tolist()


def ours_greedy(model, prompts, n, **kwargs):
    steps = list(decode_tokens(model, prompts, SamplingOptions(max_new_tokens=n, temperature=0, **kwargs)))
    return [list(row) for row in zip(*steps)]


# --------------------------------------------------------------------------- exactness vs transformers


def test_greedy_single_prompt_matches_transformers(pair):
    hf, ours = pair
    for prompt in random_prompts([1, 9]):
        assert ours_greedy(ours, [prompt], 40) == hf_greedy(hf, [prompt], 40)


def test_greedy_batch_of_different_lengths_matches_transformers(pair):
    hf, ours = pair
    prompts = random_prompts([7, 3, 12, 1, 5], seed=1)
    expected = hf_greedy(hf, prompts, 30)
    assert ours_greedy(ours, prompts, 30) == expected
    # ... and each row is what the prompt gives on its own (padding changes nothing).
    assert [ours_greedy(ours, [p], 30)[0] for p in prompts] == expected


def test_greedy_with_repetition_penalty_matches_transformers(pair):
    hf, ours = pair
    prompt = random_prompts([6], seed=2)
    assert ours_greedy(ours, prompt, 30, repetition_penalty=1.3) == hf_greedy(
        hf, prompt, 30, repetition_penalty=1.3)


def test_text_api_greedy_matches_transformers(pair, tok):
    hf, ours = pair
    prompts = ["Hello world", "The quick brown fox jumps over the lazy dog. It"]
    samples = generate(ours, tok, prompts, max_new_tokens=20, temperature=0, stop_token_ids=())
    expected = hf_greedy(hf, [tok.encode(p) for p in prompts], 20)
    assert [s.tokens for s in samples] == expected
    assert [s.text for s in samples] == [tok.decode(t) for t in expected]
    assert [s.prompt_tokens for s in samples] == [tok.encode(p) for p in prompts]
    assert all(s.finish_reason == "length" for s in samples)


def test_incremental_decoding_logits_equal_full_forward(model):
    """The decode path (one row per sequence through the cache) gives the full forward's logits."""
    from gpt2 import KVCache

    x = torch.tensor(random_prompts([20, 20], seed=3))
    with torch.inference_mode():
        full = model(x)
        cache = KVCache(model.config, 2, 20)
        model(x[:, :12], kv_cache=cache)
        steps = [model(x[:, t:t + 1], kv_cache=cache) for t in range(12, 20)]
    torch.testing.assert_close(torch.cat(steps, 1), full[:, 12:], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- logits processors


def hf_warpers():
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    return RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


def test_top_k_on_crafted_logits():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.0, 2.0, 2.0, 2.0, 1.0]])
    out = apply_top_k(logits, 2)
    inf = float("-inf")
    assert out.tolist()[0] == [inf, 5.0, inf, 4.0, inf]
    assert out.tolist()[1] == [inf, 2.0, 2.0, 2.0, inf]  # ties with the k-th are kept
    assert torch.equal(apply_top_k(logits, 0), logits)  # 0 = off
    assert torch.equal(apply_top_k(logits, 99), logits)


def test_top_p_on_crafted_logits():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    keep = lambda p: (apply_top_p(logits, p) > float("-inf")).tolist()[0]  # noqa: E731
    assert keep(0.5) == [True, False, False, False]
    assert keep(0.6) == [True, True, False, False]
    assert keep(0.8) == [True, True, False, False]  # 0.5 + 0.3 reaches 0.8
    assert keep(0.81) == [True, True, True, False]
    assert keep(0.01) == [True, False, False, False]  # the most likely token always stays
    assert keep(1.0) == [True] * 4


def test_repetition_penalty_on_crafted_logits():
    logits = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    seen = torch.tensor([[True, True, False, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 1.0, -1.0]]
    assert apply_temperature(logits, 0.5).tolist() == [[4.0, -4.0, 2.0, -2.0]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 60), p=st.floats(0.01, 1.0),
       t=st.floats(0.1, 3.0), penalty=st.floats(0.5, 2.0), ties=st.booleans())
def test_processors_equal_transformers(seed, k, p, t, penalty, ties):
    Rep, Temp, TopK, TopP = hf_warpers()
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 50, generator=g) * 3
    if ties:
        logits = logits.round()  # many equal logits
    ids = torch.randint(0, 50, (3, 7), generator=g)
    seen = torch.zeros(3, 50, dtype=torch.bool).scatter_(1, ids, True)
    torch.testing.assert_close(apply_repetition_penalty(logits, seen, penalty),
                               Rep(penalty)(ids, logits.clone()), rtol=0, atol=0)
    torch.testing.assert_close(apply_temperature(logits, t), Temp(t)(ids, logits.clone()))
    assert torch.equal(apply_top_k(logits, k), TopK(k)(ids, logits.clone()))
    assert torch.equal(apply_top_p(logits, p), TopP(p)(ids, logits.clone()))


def test_sampler_draws_from_the_filtered_distribution():
    """Frequencies of choose_tokens' draws match softmax(top_p(top_k(logits / t))); the
    filtered-out tokens never come up."""
    from gpt2.generation import choose_tokens

    logits = torch.tensor([[2.0, 1.5, 1.0, 0.5, 0.0, -1.0]])
    for opts, kept in [(SamplingOptions(top_k=3, temperature=0.7), 3),
                       (SamplingOptions(top_p=0.8), None), (SamplingOptions(top_k=5, top_p=0.9), None)]:
        expected = process_logits(logits, opts, None).softmax(-1)[0]
        g = torch.Generator().manual_seed(0)
        n = 6000
        draws = torch.cat([choose_tokens(logits, opts, None, [g]) for _ in range(n)])
        freq = torch.bincount(draws, minlength=6).double() / n
        sigma = (expected * (1 - expected) / n).sqrt()
        assert ((freq - expected).abs() <= 4 * sigma + 1e-9).all(), (opts, freq, expected)
        assert (freq[expected == 0] == 0).all()
        if kept:
            assert (expected > 0).sum() == kept


# --------------------------------------------------------------------------- seeds, streaming, stops


def test_seed_reproduces_samples_and_leaves_global_rng_alone(model, tok):
    kw = dict(max_new_tokens=25, top_k=40, top_p=0.95, temperature=1.2, n_samples=3)
    state = torch.get_rng_state()
    a = generate(model, tok, ["Once upon a time", "Hi"], seed=1234, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)  # the global RNG has no say
    b = generate(model, tok, ["Once upon a time", "Hi"], seed=1234, **kw)
    assert [s.tokens for s in a] == [s.tokens for s in b]
    assert len({tuple(s.tokens) for s in a[:3]}) == 3  # the n samples of a prompt differ
    c = generate(model, tok, ["Once upon a time", "Hi"], seed=1235, **kw)
    assert [s.tokens for s in a] != [s.tokens for s in c]
    assert [(s.prompt_index, s.sample_index) for s in a] == [(i, j) for i in range(2) for j in range(3)]
    assert all(s.seed == 1234 for s in a)


def test_stream_yields_the_sample_text_piece_by_piece(model, tok):
    kw = dict(max_new_tokens=30, top_k=40, seed=7)
    batch = generate(model, tok, "Streaming", n_samples=3, **kw)
    for j in (0, 2):
        s = stream(model, tok, "Streaming", sample_index=j, **kw)
        pieces = list(s)
        assert len(pieces) > 1 and "".join(pieces) == batch[j].text == s.sample.text
        assert s.sample.tokens == batch[j].tokens


def test_stream_never_splits_a_character(model, tok):
    # "é" and "😀" span several byte-level tokens when forced token by token.
    s = stream(model, tok, "x", max_new_tokens=40, temperature=0, stop_token_ids=())
    for piece in s:
        assert "\ufffd" not in piece or piece == "\ufffd"
    assert s.sample.text == tok.decode(s.sample.tokens)


def test_stop_string_cuts_text_and_is_not_returned(model, tok):
    full = generate(model, tok, "Hello world", max_new_tokens=30, temperature=0, stop_token_ids=())[0]
    stop = full.text[len(full.text) // 2: len(full.text) // 2 + 3]
    cut = full.text.index(stop)
    s = stream(model, tok, "Hello world", max_new_tokens=30, temperature=0, stop_token_ids=(), stop=[stop, "never-appears"])
    pieces = list(s)
    assert s.sample.text == "".join(pieces) == full.text[:cut]
    assert s.sample.finish_reason == "stop_string"
    assert full.tokens[: len(s.sample.tokens)] == s.sample.tokens
    assert full.text[:cut].startswith(tok.decode(s.sample.tokens))
    assert stop not in tok.decode(s.sample.tokens)


def test_stop_token_ends_a_sample_and_is_not_returned(model, tok):
    full = generate(model, tok, ["Hello world", "A"], max_new_tokens=30, temperature=0, stop_token_ids=())
    stop_id = full[0].tokens[10]
    k = full[0].tokens.index(stop_id)
    out = generate(model, tok, ["Hello world", "A"], max_new_tokens=30, temperature=0, stop_token_ids=[stop_id])
    assert out[0].tokens == full[0].tokens[:k] and out[0].finish_reason == "stop_token"
    assert out[0].text == tok.decode(full[0].tokens[:k])
    # The other row of the batch is unaffected (unless it met the same token).
    k1 = full[1].tokens.index(stop_id) if stop_id in full[1].tokens else 30
    assert out[1].tokens == full[1].tokens[:k1]


def test_unconditional_starts_from_endoftext(model, tok):
    s = generate(model, tok, None, max_new_tokens=10, temperature=0, stop_token_ids=())[0]
    assert s.prompt_tokens == [EOT]
    assert s.tokens == ours_greedy(model, [[EOT]], 10)[0]


def test_bad_options_and_prompts_are_usage_errors(model, tok):
    for bad in [dict(temperature=-0.1), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-1),
                dict(max_new_tokens=0), dict(repetition_penalty=0.0), dict(n_samples=0),
                dict(stop=[""]), dict(temperature=float("nan"))]:
        with pytest.raises(UsageError):
            generate(model, tok, "x", **bad)


@pytest.mark.parametrize("field, value", [
    ("max_new_tokens", 4 * 10**9), ("max_new_tokens", 10**20), ("max_new_tokens", 1.0),
    ("temperature", float("inf")), ("temperature", True), ("top_k", 10**7), ("top_p", float("nan")),
    ("repetition_penalty", float("inf")), ("repetition_penalty", -1.0), ("n_samples", 1001),
    ("seed", -1), ("seed", 2**63), ("seed", "7"), ("stop_token_ids", (-1,)),
])
def test_options_have_documented_ranges(field, value):
    """The bounds the CLI's argparse types enforce (test_generate_cli checks that they agree)."""
    with pytest.raises(UsageError, match=field) as e:
        SamplingOptions(**{field: value})
    assert "\n" not in str(e.value)


def test_max_new_tokens_allocates_nothing_in_proportion(model, monkeypatch):
    """4e9 tokens used to allocate two (B, 4e9) buffers up front (64 GB): buffers are now
    bounded by the prompt and the context, however many tokens are asked for."""
    from gpt2.generation.options import MAX_NEW_TOKENS

    sizes: list[int] = []
    zeros = torch.zeros

    def spy(*shape, **kw):
        out = zeros(*shape, **kw)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(torch, "zeros", spy)
    steps = decode_tokens(model, [[1, 2, 3]], SamplingOptions(max_new_tokens=MAX_NEW_TOKENS, temperature=0))
    for _ in range(3):
        next(steps)
    c = model.config
    assert max(sizes) <= c.n_layer * c.n_head * c.n_ctx * c.head_dim  # the KV cache, the largest


def test_tiny_temperature_or_penalty_never_gives_nan():
    """logits / 1e-300 overflow to inf; the draw must still be the most likely token."""
    from gpt2.generation import choose_tokens

    logits = torch.tensor([[2.0, 1.5, -1.0, 3.0]])
    seen = torch.tensor([[True, True, True, True]])
    for opts in (SamplingOptions(temperature=1e-300), SamplingOptions(temperature=1e-300, top_k=2),
                 SamplingOptions(repetition_penalty=1e-300), SamplingOptions(temperature=1e300)):
        g = [torch.Generator().manual_seed(0)]
        tokens = {choose_tokens(logits, opts, seen, g).item() for _ in range(20)}
        if opts.repetition_penalty == 1:  # (the penalty overflows every seen token alike)
            assert tokens == {3} or opts.temperature == 1e300, (opts, tokens)
        assert tokens <= {0, 1, 2, 3}, (opts, tokens)  # a NaN distribution gives out-of-range ids


def test_rows_are_decoded_in_bounded_batches_with_the_same_samples(model, tok, monkeypatch):
    import gpt2.generation.api

    kw = dict(max_new_tokens=6, top_k=40, seed=3, n_samples=3)
    whole = generate(model, tok, ["Hello", "A longer prompt here"], **kw)
    monkeypatch.setattr(gpt2.generation.api, "MAX_BATCH_ROWS", 2)
    parts = generate(model, tok, ["Hello", "A longer prompt here"], **kw)
    assert [s.tokens for s in parts] == [s.tokens for s in whole]
    assert [(s.prompt_index, s.sample_index) for s in parts] == [(i, j) for i in range(2) for j in range(3)]
    with pytest.raises(UsageError, match="empty prompt"):
        generate(model, tok, "")
    with pytest.raises(UsageError, match=r"prompt token id 50257 is out of range: the vocabulary has 50257 ids"):
        next(decode_tokens(model, [[1, 50257]], SamplingOptions(temperature=0)))


# --------------------------------------------------------------------------- cache and context


def test_prefix_is_never_recomputed(model):
    """Each decoding step feeds the model exactly one new token per row."""
    fed: list[int] = []
    handle = model.transformer.wte.register_forward_hook(lambda m, args, out: fed.append(args[0].shape[1]))
    try:
        ours_greedy(model, random_prompts([9, 4]), 25)
    finally:
        handle.remove()
    assert fed == [9] + [1] * 24


def test_caller_code_between_steps_is_not_in_inference_mode(model):
    steps = decode_tokens(model, [[1, 2, 3]], SamplingOptions(max_new_tokens=3, temperature=0))
    for _ in steps:
        assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


def test_context_overflow_slides_the_window(hf_model_factory, tmp_path):
    """Past n_ctx the oldest tokens are dropped and the cache rebuilt; every token is still the
    argmax of a full forward pass over the window it was chosen from."""
    from gpt2.generation.decode import KEEP_FRACTION

    hf_model_factory(seed=2, n_positions=32).save_pretrained(tmp_path)
    model = GPT2.from_pretrained(tmp_path)
    n_ctx, keep = 32, int(32 * KEEP_FRACTION)
    prompts = random_prompts([10, 4], seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ours_greedy(model, prompts, 70)
    assert [w.category for w in caught] == [ContextWindowWarning]
    for prompt, generated in zip(prompts, out):
        seq, start = list(prompt), 0
        for token in generated:
            if len(seq) - start > n_ctx:
                start = len(seq) - keep
            with torch.inference_mode():
                expected = model(torch.tensor([seq[start:]]))[0, -1].argmax().item()
            assert token == expected
            seq.append(token)


def test_prompt_longer_than_context(hf_model_factory, tmp_path, tok):
    hf_model_factory(seed=3, n_positions=16).save_pretrained(tmp_path)
    model = GPT2.from_pretrained(tmp_path)
    with pytest.warns(ContextWindowWarning, match="keeping its last"):
        s = generate(model, tok, "word " * 40, max_new_tokens=20, top_k=5, seed=0, stop_token_ids=())[0]
    assert len(s.tokens) == 20 and s.prompt_tokens == tok.encode("word " * 40)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_cuda_greedy_runs(model, tok):
    cuda = GPT2(model.config).to("cuda", torch.bfloat16).eval()
    cuda.load_state_dict(model.state_dict())
    s = generate(cuda, tok, ["a", "longer prompt"], max_new_tokens=10, temperature=0)
    assert len(s) == 2
