"""The model's behaviour on its own: shapes, loss, initialisation, masking and the KV cache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpt2 import GPT2, GPT2Config, KVCache

TINY = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_ctx=64, vocab_size=101)


@pytest.fixture()
def model() -> GPT2:
    torch.manual_seed(0)
    return GPT2(TINY).eval()


def test_logits_shape_and_loss(model):
    x = torch.randint(0, TINY.vocab_size, (3, 10))
    y = torch.randint(0, TINY.vocab_size, (3, 10))
    logits = model(x)
    assert logits.shape == (3, 10, TINY.vocab_size)
    logits2, loss = model(x, y)
    assert torch.equal(logits, logits2)
    expected = F.cross_entropy(logits.view(-1, TINY.vocab_size), y.view(-1))
    assert loss.shape == () and torch.allclose(loss, expected)


def test_loss_ignores_minus_100_targets(model):
    x = torch.randint(0, TINY.vocab_size, (2, 8))
    y = torch.randint(0, TINY.vocab_size, (2, 8))
    y_masked = y.clone()
    y_masked[:, :4] = -100
    logits, loss = model(x, y_masked)
    expected = F.cross_entropy(logits[:, 4:].reshape(-1, TINY.vocab_size), y[:, 4:].reshape(-1))
    assert torch.allclose(loss, expected)


def test_random_model_loss_is_near_uniform(model):
    x = torch.randint(0, TINY.vocab_size, (4, 32))
    y = torch.randint(0, TINY.vocab_size, (4, 32))
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(TINY.vocab_size)) < 0.2


def test_output_head_is_tied_to_token_embedding(model):
    assert model.lm_head.weight is model.transformer.wte.weight
    assert "lm_head.weight" not in dict(model.named_parameters())


def test_gpt2_initialisation():
    torch.manual_seed(0)
    config = GPT2Config(n_layer=8, n_embd=256, n_head=4, n_ctx=128, vocab_size=2000)
    model = GPT2(config)
    residual = [m.weight for n, m in model.named_modules() if n.endswith("c_proj")]
    assert len(residual) == 2 * config.n_layer
    for w in residual:
        assert w.std().item() == pytest.approx(0.02 / math.sqrt(2 * config.n_layer), rel=0.05)
    assert model.transformer.h[0].attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.transformer.h[0].mlp.c_fc.bias.abs().max().item() == 0
    assert torch.equal(model.transformer.ln_f.weight, torch.ones(config.n_embd))


def test_attention_is_causal(model):
    x = torch.randint(0, TINY.vocab_size, (1, 12))
    changed = x.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % TINY.vocab_size
    a, b = model(x), model(changed)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:], atol=1e-3)


def test_last_logits_only(model):
    x = torch.randint(0, TINY.vocab_size, (2, 9))
    assert torch.allclose(model(x, last_logits_only=True), model(x)[:, -1:], atol=1e-6)


def test_kv_cache_decoding_equals_full_forward(model):
    x = torch.randint(0, TINY.vocab_size, (2, 20))
    full = model(x)
    cache = KVCache(TINY, batch_size=2)
    pieces = [model(x[:, :7], kv_cache=cache)]  # prefill
    pieces += [model(x[:, 7:12], kv_cache=cache)]  # a chunk after a prefix
    pieces += [model(x[:, t : t + 1], kv_cache=cache) for t in range(12, 20)]  # one token a step
    assert cache.length == 20
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


def test_left_padding_with_attention_mask_matches_unpadded(model):
    short = torch.randint(0, TINY.vocab_size, (1, 6))
    long = torch.randint(0, TINY.vocab_size, (1, 10))
    batch = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), short], dim=1), long])
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, :4] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(batch, attention_mask=mask, position_ids=positions)
    assert not torch.isnan(logits).any()
    assert torch.allclose(logits[0, 4:], model(short)[0], atol=1e-5)
    assert torch.allclose(logits[1], model(long)[0], atol=1e-5)


def test_context_overflow_is_an_error(model):
    with pytest.raises(ValueError, match="n_ctx=64"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    model = GPT2(TINY.replace(dropout=0.5))
    x = torch.randint(0, TINY.vocab_size, (1, 8))
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_model_without_biases():
    model = GPT2(TINY.replace(bias=False))
    assert all(not n.endswith("bias") for n, _ in model.named_parameters())
    x = torch.randint(0, TINY.vocab_size, (1, 8))
    assert model(x).shape == (1, 8, TINY.vocab_size)


def test_backward_reaches_every_parameter(model):
    model.train()
    x = torch.randint(0, TINY.vocab_size, (2, 16))
    _, loss = model(x, x)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("bad", [TINY.vocab_size, 10**6, -1])
def test_an_id_outside_the_vocabulary_names_the_id_and_the_size(model, bad):
    """Not the embedding's `IndexError: index out of range in self`."""
    x = torch.tensor([[1, 2, bad, 3]])
    with pytest.raises(ValueError, match=rf"token id {bad} is out of range: the vocabulary has 101 ids \(0 to 100\)"):
        model(x)
    cache = KVCache(TINY, 1)
    model(torch.tensor([[1, 2]]), kv_cache=cache)
    with pytest.raises(ValueError, match=f"token id {bad} "):  # the incremental path too
        model(torch.tensor([[bad]]), kv_cache=cache)
    with pytest.raises(TypeError, match="integer tensor"):
        model(x.float())


# ----------------------------------------------------------------------------- the body: hidden_states


@pytest.fixture(scope="module")
def body_pair(tmp_path_factory, hf_model_factory):
    """(ours, transformers' GPT2Model) with the same random weights, float32."""
    directory = tmp_path_factory.mktemp("body")
    hf = hf_model_factory(n_positions=32)
    hf.save_pretrained(directory)
    return GPT2.from_pretrained(directory), hf.transformer


def test_hidden_states_equal_transformers_gpt2model(body_pair):
    ours, hf = body_pair
    x = torch.randint(0, ours.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        h = ours.hidden_states(x)
        assert h.shape == (2, 32, ours.config.n_embd)
        assert (h - hf(x).last_hidden_state).abs().max().item() <= 1e-5
        assert torch.equal(ours.lm_head(h), ours(x))  # forward is the LM head on the body


def test_hidden_states_of_a_left_padded_batch_equal_transformers(body_pair):
    ours, hf = body_pair
    x = torch.randint(0, ours.config.vocab_size, (3, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[0, :5] = 0
    mask[1, :1] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    real = mask.bool()
    with torch.no_grad():
        h = ours.hidden_states(x, attention_mask=mask, position_ids=positions)
        expected = hf(x, attention_mask=mask, position_ids=positions).last_hidden_state
    assert (h[real] - expected[real]).abs().max().item() <= 1e-5  # padding positions are unused


def test_hidden_states_with_a_kv_cache_step_by_step_equal_transformers(body_pair):
    """A left-padded prompt into the cache, then one token a step, as generation runs."""
    ours, hf = body_pair
    x = torch.randint(0, ours.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[0, :3] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = KVCache(ours.config, batch_size=2, max_len=16)
    with torch.no_grad():
        pieces = [ours.hidden_states(x[:, :6], attention_mask=mask[:, :6], position_ids=positions[:, :6],
                                     kv_cache=cache)]
        for t in range(6, 16):
            pieces.append(ours.hidden_states(x[:, t : t + 1], attention_mask=mask[:, : t + 1],
                                             position_ids=positions[:, t : t + 1], kv_cache=cache))
        expected = hf(x, attention_mask=mask, position_ids=positions).last_hidden_state
    assert cache.length == 16
    h = torch.cat(pieces, dim=1)
    real = mask.bool()
    assert (h[real] - expected[real]).abs().max().item() <= 1e-5


def test_hidden_states_check_token_ids(model):
    """The id check is in the body, so every head gets it."""
    with pytest.raises(ValueError, match=r"token id 101 is out of range"):
        model.hidden_states(torch.tensor([[1, 101]]))
