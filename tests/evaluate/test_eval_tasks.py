"""Each task's scoring on hand-written data with a crafted model whose next-token distribution
is known in closed form (see conftest.unigram_model), so the right answers are worked out by
hand: the model always prefers " the" (logit 12), then " Paris" (10), all else uniform."""

from __future__ import annotations

import json
import math
import re

import pytest

from conftest import V, unigram_logprob, unigram_model
from gpt2.errors import GPT2Error, UsageError
from gpt2.evaluate import EvalDataError, evaluate
from gpt2.evaluate.detokenize import wikitext_detokenize, wikitext_detokenize_harness

PARIS, THE, DOOR = 6342, 262, 3420
TABLE = {THE: 12.0, PARIS: 10.0}


@pytest.fixture(scope="module")
def model():
    return unigram_model(TABLE, n_ctx=64)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def lambada_file(tmp_path):
    return write_jsonl(tmp_path / "lambada.jsonl", [
        {"text": "She packed her bags and flew to Paris"},   # " Paris": not greedy (" the" is), but the
        {"text": "He walked to the window and opened the"},  # stop-word filter picks it; " the": greedy
        {"text": "He took the key and opened the door"},     # " door": never predicted
        {"text": "The best bread is baked in Paris"},
    ])


def test_lambada_openai(model, tokenizer, lambada_file):
    r = evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer)
    assert r["acc"] == 0.25  # only " the" is the greedy word
    lps = [unigram_logprob(TABLE, t) for t in (PARIS, THE, DOOR, PARIS)]
    assert r["perplexity"] == pytest.approx(math.exp(-sum(lps) / 4), rel=1e-4)
    assert r.n == 4 and r.data_hash.startswith("sha256:")


def test_lambada_paper_variants(model, tokenizer, lambada_file):
    r = evaluate(model, "lambada", lambada_file, tokenizer=tokenizer)
    assert r["acc_last_token"] == 0.25  # the passage ending in " the"
    assert r["acc"] == 0.25
    assert r["acc_stopword_filter"] == 0.5  # " the" filtered out: " Paris" wins, twice
    assert r["ppl"] == pytest.approx(evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer)["perplexity"])


def test_hellaswag_acc_and_acc_norm(model, tokenizer, tmp_path):
    docs = [
        # " word" is 1 token: fewest tokens (acc) and fewest tokens per character (acc_norm).
        {"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "endings": ["a b c d", "word", "x y"], "label": "1"},
        # " cat": 1 token / 3 chars; " elephants are big": 3 tokens / 17 chars.
        {"activity_label": "B", "ctx_a": "x [title] y", "ctx_b": "z", "endings": ["cat", "elephants are big"], "label": "1"},
    ]
    assert [len(tokenizer.encode(" " + e)) for e in ("a b c d", "word", "x y", "cat", "elephants are big")] == [4, 1, 2, 1, 3]
    r = evaluate(model, "hellaswag", write_jsonl(tmp_path / "hs.jsonl", docs), tokenizer=tokenizer)
    assert r["acc"] == 0.5 and r["acc_norm"] == 1.0


def test_cbt_original_format(model, tokenizer, fixtures):
    r = evaluate(model, "cbt_cn", fixtures / "cbtest_CN_sample.txt", tokenizer=tokenizer)
    assert r.n == 2 and r["acc"] == 0.5  # " Paris" is chosen whenever it is a candidate


def test_winograd_full_and_partial(model, tokenizer, tmp_path):
    text = "The trophy does not fit into the suitcase because it is too big."
    loc = text.index(" it ") + 1
    base = {"text": text, "pronoun": "it", "pronoun_loc": loc}
    docs = [base | {"options": ["Paris", "the suitcase"], "label": 0},
            base | {"options": ["the suitcase", "Paris"], "label": 1}]
    r = evaluate(model, "winograd", write_jsonl(tmp_path / "wsc.jsonl", docs), tokenizer=tokenizer)
    assert r["acc_full"] == 1.0  # the sentence with " Paris" is likelier
    assert r["acc_partial"] == 0.5  # the rest " is too big." scores the same: a tie goes to option 0


def test_wikitext_harness_by_hand(tokenizer, fixtures):
    m = unigram_model({}, n_ctx=32)  # uniform: every BPE token costs ln V
    r = evaluate(m, "wikitext", fixtures / "wikitext.jsonl", tokenizer=tokenizer, batch_size=3)
    pages = [json.loads(line)["page"] for line in (fixtures / "wikitext.jsonl").read_text().splitlines()]
    n_bpe = sum(len(tokenizer.encode(wikitext_detokenize_harness(p))) for p in pages)
    words = sum(len(re.split(r"\s+", p)) for p in pages)
    n_bytes = sum(len(p.encode()) for p in pages)
    assert r["ppl_bpe"] == pytest.approx(V, rel=1e-5)
    assert r["word_perplexity"] == pytest.approx(math.exp(n_bpe * math.log(V) / words), rel=1e-4)
    assert r["byte_perplexity"] == pytest.approx(math.exp(n_bpe * math.log(V) / n_bytes), rel=1e-4)
    assert r["bits_per_byte"] == pytest.approx(n_bpe * math.log2(V) / n_bytes, rel=1e-5)


@pytest.mark.parametrize("stride", [None, 7, 32])
def test_wikitext2_paper_style_by_hand(tokenizer, fixtures, stride):
    m = unigram_model({}, n_ctx=32)
    raw = (fixtures / "wiki.test.tokens").read_text()
    r = evaluate(m, "wikitext2", fixtures / "wiki.test.tokens", tokenizer=tokenizer, stride=stride)
    n_bpe = len(tokenizer.encode(wikitext_detokenize(raw)))
    n_orig = len(raw.split()) + raw.count("\n")  # tokens + one <eos> per line
    assert r["ppl"] == pytest.approx(V ** (n_bpe / n_orig), rel=1e-4)
    assert r["ppl_bpe"] == pytest.approx(V, rel=1e-5)
    assert r.settings["stride"] == stride


def test_text8_and_enwik8_units(tokenizer, tmp_path):
    m = unigram_model({}, n_ctx=32)
    (tmp_path / "text8").write_text("anarchism originated as a term of abuse first used against early")
    r = evaluate(m, "text8", tmp_path / "text8", tokenizer=tokenizer)
    n_bpe = len(tokenizer.encode("anarchism originated as a term of abuse first used against early"))
    assert r["bits_per_char"] == pytest.approx(n_bpe * math.log2(V) / 64, rel=1e-5)
    (tmp_path / "enwik8").write_bytes("<page>caf\u00e9</page>".encode())  # 18 bytes, 17 characters
    r = evaluate(m, "enwik8", tmp_path / "enwik8", tokenizer=tokenizer)
    n_bpe = len(tokenizer.encode("<page>caf\u00e9</page>"))
    assert r["bits_per_byte"] == pytest.approx(n_bpe * math.log2(V) / 18, rel=1e-5)


def test_bad_input_is_one_line(model, tokenizer, tmp_path, lambada_file):
    with pytest.raises(UsageError, match="unknown task 'nope'"):
        evaluate(model, "nope", lambada_file, tokenizer=tokenizer)
    with pytest.raises(EvalDataError, match="no such data file"):
        evaluate(model, "lambada_openai", tmp_path / "missing.jsonl", tokenizer=tokenizer)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(EvalDataError, match=r"bad.jsonl:2: not valid JSON"):
        evaluate(model, "lambada_openai", bad, tokenizer=tokenizer)
    with pytest.raises(EvalDataError, match=r"missing field\(s\) text"):
        evaluate(model, "lambada_openai", write_jsonl(tmp_path / "x.jsonl", [{"txt": 1}]), tokenizer=tokenizer)
    with pytest.raises(UsageError, match="--limit"):
        evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer, limit=0)
    with pytest.raises(UsageError, match="no setting stride"):
        evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer, stride=3)
    with pytest.raises(UsageError, match="--stride"):
        evaluate(model, "wikitext2", lambada_file, tokenizer=tokenizer, stride=1000)
    with pytest.raises(EvalDataError, match="needs --data"):
        evaluate(model, "enwik8", tokenizer=tokenizer)
    with pytest.raises(GPT2Error):  # the hub is unreachable in tests: an actionable error, not a traceback
        evaluate(model, "lambada_openai", tokenizer=tokenizer)


def test_limit(model, tokenizer, lambada_file):
    r = evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer, limit=2)
    assert r.n == 2 and r["acc"] == 0.5


# --------------------------------------------------------------------------- generation tasks
# A model that puts nearly all its mass on " Paris": greedy and top-k output is " Paris" repeated.

@pytest.fixture(scope="module")
def paris():
    return unigram_model({PARIS: 30.0}, n_ctx=256)


def test_nq_open_exact_match(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.sampling")
    docs = [{"question": "Capital of Italy?", "answer": ["Rome"]},
            {"question": "Capital of France?", "answer": ["Paris", "paris, france"]},
            {"question": "Capital of Spain?", "answer": "Madrid"}]
    r = evaluate(paris, "nq_open", write_jsonl(tmp_path / "nq.jsonl", docs), tokenizer=tokenizer,
                 shots=1, max_new_tokens=1)
    assert r.metrics[0].n == 2 and r["exact_match"] == 0.5


def test_coqa_f1(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.sampling")
    conv = {"story": "Anna lives in Paris. She has a cat.", "questions": ["Where does Anna live?", "What pet?"],
            "answers": {"input_text": ["Paris", "a cat"]}}
    r = evaluate(paris, "coqa", write_jsonl(tmp_path / "coqa.jsonl", [conv]), tokenizer=tokenizer,
                 max_new_tokens=4)
    # "Paris Paris Paris Paris" vs "Paris": P = 1/4, R = 1 -> F1 = 0.4; vs "a cat": 0.
    assert r.metrics[0].n == 2 and r["f1"] == pytest.approx(0.2)


def test_summarization_rouge(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.sampling")
    docs = [{"article": "The city is large and old.", "highlights": "Paris is big."}]
    r = evaluate(paris, "cnn_dailymail", write_jsonl(tmp_path / "cnn.jsonl", docs), tokenizer=tokenizer)
    # 100 x "Paris", one sentence: ROUGE-1 P = 1/100, R = 1/3 -> F = 2/103; no shared bigram.
    assert r["rouge1"] == pytest.approx(2 / 103) and r["rougeL"] == pytest.approx(2 / 103)
    assert r["rouge2"] == 0.0


def test_translation_bleu(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.sampling")
    import sacrebleu

    docs = [{"en": "hello", "fr": "bonjour"}, {"en": "Paris is Paris", "fr": "Paris Paris Paris"},
            {"en": "the city", "fr": "la ville"}]
    r = evaluate(paris, "wmt14_en_fr", write_jsonl(tmp_path / "wmt.jsonl", docs), tokenizer=tokenizer,
                 shots=1, max_new_tokens=3)
    expected = sacrebleu.corpus_bleu(["Paris Paris Paris"] * 2, [["Paris Paris Paris", "la ville"]]).score
    assert r.metrics[0].n == 2 and r["bleu"] == pytest.approx(expected)
