"""Perplexity tasks on a uniform model (every BPE token costs ln V), so each metric is
V ** (BPE tokens / units) or a bit count, with the units counted by hand."""

from __future__ import annotations

import json
import math

import pytest

from conftest import V, unigram_model
from gpt2.errors import UsageError
from gpt2.evaluate import evaluate
from gpt2.evaluate.detokenize import wikitext_detokenize
from gpt2.evaluate.families.perplexity import encode_exact
from gpt2.evaluate.types import EvalContext


@pytest.fixture(scope="module")
def uniform():
    return unigram_model({}, n_ctx=32)


def test_ptb_per_original_token_by_hand(uniform, tokenizer, fixtures):
    # ptb.sample.txt: 5 lines of 12, 12, 12, 9, 12 words = 57 words + 5 <eos> = 62 original
    # tokens; detokenized (" did n't" -> " didn't", ...) it is 69 BPE tokens.
    r = evaluate(uniform, "ptb", fixtures / "ptb.sample.txt", tokenizer=tokenizer)
    assert r.metrics[0].name == "ppl" and r.metrics[0].n == 62
    assert r["ppl"] == pytest.approx(V ** (69 / 62), rel=1e-5)  # 1.6...e5
    assert r["ppl_bpe"] == pytest.approx(V, rel=1e-5) and r.metrics[-1].n == 69
    assert r["bits_per_byte"] == pytest.approx(69 * math.log2(V) / len((fixtures / "ptb.sample.txt").read_bytes()))


def test_last_line_without_newline_has_its_eos(uniform, tokenizer, tmp_path):
    # "a b\nc d": 4 words and 2 lines (the second has no "\n") -> 6 original tokens, as
    # `for line in f: words = line.split() + ['<eos>']` counts them.
    (tmp_path / "ptb.txt").write_text("a b\nc d")
    r = evaluate(uniform, "ptb", tmp_path / "ptb.txt", tokenizer=tokenizer)
    assert r.metrics[0].n == 6
    assert r["ppl"] == pytest.approx(V ** (5 / 6), rel=1e-5)  # "a b\nc d" is 5 BPE tokens
    (tmp_path / "ptb_nl.txt").write_text("a b\nc d\n")
    assert evaluate(uniform, "ptb", tmp_path / "ptb_nl.txt", tokenizer=tokenizer).metrics[0].n == 6


def test_1bw_per_original_token(uniform, tokenizer, tmp_path):
    raw = "The U.S. economy grew 3 % last year .\nShares fell , he said .\n"
    (tmp_path / "heldout").write_text(raw)
    r = evaluate(uniform, "1bw", tmp_path / "heldout", tokenizer=tokenizer)
    # 9 + 6 tokens + 2 <eos> = 17; "The U.S. economy grew 3 % last year.\nShares fell, he said.\n" = 20 BPE.
    assert len(tokenizer.encode(wikitext_detokenize(raw))) == 20
    assert r.metrics[0].n == 17 and r["ppl"] == pytest.approx(V ** (20 / 17), rel=1e-5)


def test_lambada_lm_per_word(uniform, tokenizer, tmp_path):
    texts = ["He opened the door", "She sat by the window and read"]
    path = tmp_path / "lambada.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    r = evaluate(uniform, "lambada_lm", path, tokenizer=tokenizer)
    n_bpe = len(tokenizer.encode("He opened the door\nShe sat by the window and read\n"))
    assert r.metrics[0].name == "ppl_word" and r.metrics[0].n == 4 + 7
    assert r["ppl_word"] == pytest.approx(V ** (n_bpe / 11), rel=1e-5)


def test_text_task_joins_records_with_newlines(uniform, tokenizer, tmp_path):
    path = tmp_path / "any.jsonl"
    path.write_text(json.dumps({"text": "one two"}) + "\n" + json.dumps({"text": "three"}) + "\n")
    r = evaluate(uniform, "text", path, tokenizer=tokenizer)
    stream = "one two\nthree"  # not "one twothree"
    n_bpe = len(tokenizer.encode(stream))
    assert r.metrics[0].n == 3 and r["ppl_word"] == pytest.approx(V ** (n_bpe / 3), rel=1e-5)
    assert r["bits_per_byte"] == pytest.approx(n_bpe * math.log2(V) / len(stream), rel=1e-5)
    assert r.metrics[-1].n == n_bpe
    # A plain text file, scored as it is.
    (tmp_path / "any.txt").write_text(stream)
    plain = evaluate(uniform, "text", tmp_path / "any.txt", tokenizer=tokenizer)
    assert plain["ppl_word"] == pytest.approx(r["ppl_word"])


@pytest.mark.parametrize("task", ["wikitext2", "wikitext103"])
def test_wikitext_paper_tasks(uniform, tokenizer, fixtures, task):
    raw = (fixtures / "wiki.test.tokens").read_text()
    r = evaluate(uniform, task, fixtures / "wiki.test.tokens", tokenizer=tokenizer)
    n_bpe = len(tokenizer.encode(wikitext_detokenize(raw)))
    assert raw.endswith("\n")
    assert r.metrics[0].n == len(raw.split()) + raw.count("\n")
    assert r["ppl"] == pytest.approx(V ** (n_bpe / r.metrics[0].n), rel=1e-5)


def test_effective_stride_is_reported(uniform, tokenizer, fixtures):
    r = evaluate(uniform, "wikitext2", fixtures / "wiki.test.tokens", tokenizer=tokenizer)
    assert r.settings["stride"] == 16  # n_ctx // 2, not null
    assert evaluate(uniform, "ptb", fixtures / "ptb.sample.txt", tokenizer=tokenizer, stride=5).settings["stride"] == 5


@pytest.mark.parametrize("stride", [0, -3, 1.5, "8", True, 33])
def test_bad_stride_is_refused(uniform, tokenizer, fixtures, stride):
    with pytest.raises(UsageError, match=r"--stride must be an integer in \[1, 32\]"):
        evaluate(uniform, "ptb", fixtures / "ptb.sample.txt", tokenizer=tokenizer, stride=stride)


def test_text8_bits_per_character(uniform, tokenizer, tmp_path):
    text = "naïve café crème brûlée"  # 23 characters, 28 bytes
    (tmp_path / "text8").write_text(text, encoding="utf-8")
    r = evaluate(uniform, "text8", tmp_path / "text8", tokenizer=tokenizer)
    n_bpe = len(tokenizer.encode(text))
    assert r.metrics[0].n == 23 and r["bits_per_char"] == pytest.approx(n_bpe * math.log2(V) / 23, rel=1e-5)
    assert r["bits_per_byte"] == pytest.approx(n_bpe * math.log2(V) / 28, rel=1e-5)


def test_enwik8_scores_exactly_the_file_bytes(uniform, tokenizer, tmp_path):
    raw = "<page>caf\u00e9</page>".encode() + b"\xff\xfe x"  # 18 valid bytes, 2 invalid, 2 more
    (tmp_path / "enwik8").write_bytes(raw)
    r = evaluate(uniform, "enwik8", tmp_path / "enwik8", tokenizer=tokenizer)
    ctx = EvalContext(model=None, tokenizer=tokenizer, scorer=None, settings={})
    ids = encode_exact(ctx, raw.decode("utf-8", errors="surrogateescape"))
    assert tokenizer.decode_bytes(ids) == raw  # the invalid bytes are scored, not U+FFFD
    assert r.metrics[0].n == 22 and r["bits_per_byte"] == pytest.approx(len(ids) * math.log2(V) / 22, rel=1e-5)
    assert r["invalid_utf8_bytes"] == 2
    (tmp_path / "valid").write_bytes(raw[:18])
    assert evaluate(uniform, "enwik8", tmp_path / "valid", tokenizer=tokenizer)["invalid_utf8_bytes"] == 0
