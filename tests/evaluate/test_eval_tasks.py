"""Each task's scoring on hand-written data with a crafted model whose next-token distribution
is known in closed form (see conftest.unigram_model), so the right answers are worked out by
hand: the model always prefers " the" (logit 12), then " Paris" (10), all else uniform."""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from conftest import V, bigram_logprob, bigram_model, unigram_logprob, unigram_model
from gpt2.errors import UsageError
from gpt2.evaluate import EvalDataError, evaluate, tasks
from gpt2.evaluate.families.cbt import read_cbt
from gpt2.evaluate.families.coqa import read_coqa
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


def test_lambada_multi_token_word(tokenizer, tmp_path):
    # " Parisians" is " Paris" + "ians": the model predicts "ians" after " Paris" but nothing
    # in particular after " proud", so the last token is greedy and the whole word is not.
    PROUD, IANS, TO = 6613, 1547, 284
    table = {PARIS: {IANS: 12.0}, TO: {PARIS: 12.0}}
    path = write_jsonl(tmp_path / "l.jsonl", [{"text": "They cheered for the proud Parisians"},
                                              {"text": "She flew to Paris"}])
    assert tokenizer.encode(" Parisians") == [PARIS, IANS]
    r = evaluate(bigram_model(table), "lambada", path, tokenizer=tokenizer)
    assert r["acc_last_token"] == 1.0 and r["acc"] == 0.5
    assert r["acc_stopword_filter"] == 0.5  # " Paris" is the best word start after " to" only
    lps = [bigram_logprob(table, PROUD, PARIS) + bigram_logprob(table, PARIS, IANS), bigram_logprob(table, TO, PARIS)]
    assert r["ppl"] == pytest.approx(math.exp(-sum(lps) / 2), rel=1e-5)


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


CITIES = ["Paris", "Rome", "London", "Tokyo", "Berlin", "Madrid", "Oslo", "Vienna", "Prague", "Dublin"]
CBT_DOCS = [
    {"sentences": ["The little dog ran to the gate .", "`` Where are you going ? '' asked the cat ."],
     "question": "The dog wanted to see XXXXX at night .", "answer": "London", "options": CITIES},
    {"sentences": ["The cat stayed home ."], "question": "She longed to see XXXXX .", "answer": "Paris",
     "options": CITIES[::-1]},
]


def cbt_text(docs) -> str:
    """docs in the original cbtest_*.txt format."""
    out = []
    for d in docs:
        out += [f"{i} {t}" for i, t in enumerate(d["sentences"], 1)]
        out += [f"21 {d['question']}\t{d['answer']}\t\t{'|'.join(d['options'])}", ""]
    return "\n".join(out)


def test_cbt_scores_candidate_with_rest_of_sentence(tokenizer, tmp_path):
    # After " see" the model prefers " Paris"; after " London" it expects " at". Alone,
    # " Paris" is the likeliest candidate in both questions; with the rest of the sentence
    # (" at night."), " London" wins the first.
    SEE, AT = 766, 379
    ids = {c: tokenizer.encode(" " + c)[0] for c in CITIES}
    table = {SEE: {ids["Paris"]: 8.0}, ids["London"]: {AT: 15.0}}
    alone = {c: bigram_logprob(table, SEE, ids[c]) for c in CITIES}
    assert max(alone, key=alone.get) == "Paris"
    with_rest = {c: alone[c] + bigram_logprob(table, ids[c], AT) for c in CITIES}
    assert max(with_rest, key=with_rest.get) == "London"
    m = bigram_model(table)
    (tmp_path / "cbtest_NE_valid_2000ex.txt").write_text(cbt_text(CBT_DOCS))
    for task, path in [("cbt_ne", tmp_path / "cbtest_NE_valid_2000ex.txt"),
                       ("cbt_cn", write_jsonl(tmp_path / "cbt.jsonl", CBT_DOCS))]:
        r = evaluate(m, task, path, tokenizer=tokenizer)
        assert r.n == 2 and r["acc"] == 1.0, task


def test_cbt_readers_agree(tmp_path):
    (tmp_path / "cbt.txt").write_text(cbt_text(CBT_DOCS))
    assert read_cbt(tmp_path / "cbt.txt") == read_cbt(write_jsonl(tmp_path / "cbt.jsonl", CBT_DOCS)) == CBT_DOCS
    bad = [CBT_DOCS[0] | {"answer": "Lima"}]
    with pytest.raises(EvalDataError, match=r"cbt.jsonl:1: the answer 'Lima' is not among the candidates"):
        read_cbt(write_jsonl(tmp_path / "cbt.jsonl", bad))
    with pytest.raises(EvalDataError, match="lists of strings"):
        read_cbt(write_jsonl(tmp_path / "cbt.jsonl", [CBT_DOCS[0] | {"options": "Paris|London"}]))


def test_mc_acc_and_acc_norm(model, tokenizer, tmp_path):
    docs = [
        # " Paris" (logit 10) beats " London Bridge" (2 uniform tokens) in total and per character.
        {"query": "Capital of France?", "choices": ["Paris", "London Bridge"], "gold": 0},
        # " dog" (1 token, -12.4) beats " the cat sat" (-0.4 - 24.7) in total, but per character
        # -25.1 / 11 > -12.4 / 3: acc_norm picks the wrong one.
        {"query": "Which animal barks?", "choices": ["the cat sat", "dog"], "gold": 1},
    ]
    r = evaluate(model, "mc", write_jsonl(tmp_path / "mc.jsonl", docs), tokenizer=tokenizer)
    assert r["acc"] == 1.0 and r["acc_norm"] == 0.5
    with pytest.raises(EvalDataError, match="gold must be an index of choices"):
        evaluate(model, "mc", write_jsonl(tmp_path / "bad.jsonl", [docs[0] | {"gold": 2}]), tokenizer=tokenizer)


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
    assert r.settings["stride"] == (stride or 16)  # the stride that ran: n_ctx // 2 by default


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


def test_hub_unreachable_is_one_line(model, tokenizer, tmp_path, monkeypatch):
    # Offline mode and an empty cache, so this never downloads (nor finds a cached copy).
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    try:  # the libraries read those variables when imported: set their copies too
        import datasets.config
        import huggingface_hub.constants as hub
    except ImportError:
        pass  # without `datasets` the error says to install it or pass --data
    else:
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    with pytest.raises(EvalDataError, match=r"task lambada_openai: .*pass --data PATH"):
        evaluate(model, "lambada_openai", tokenizer=tokenizer)


@pytest.mark.parametrize("task, settings, message", [
    ("nq_open", {"shots": "x"}, r"--shots must be an integer in \[0, 10000\], got 'x'"),
    ("nq_open", {"shots": -1}, r"--shots must be an integer in \[0, 10000\]"),
    ("nq_open", {"shots": 10**30}, r"--shots must be an integer in \[0, 10000\]"),
    ("nq_open", {"max_new_tokens": 64}, r"--set max_new_tokens must be an integer in \[1, 63\]"),
    ("coqa", {"max_new_tokens": 0}, r"--set max_new_tokens must be an integer in \[1, 63\]"),
    ("cnn_dailymail", {"top_k": 2.5}, r"--set top_k must be an integer in \[0, 1000000\]"),
    ("cnn_dailymail", {"top_k": float("nan")}, r"--set top_k must be an integer in \[0, 1000000\] .*, got nan"),
    ("cnn_dailymail", {"sentences": 0}, r"--set sentences must be an integer in \[1, 1000\]"),
    ("cnn_dailymail", {"seed": "1"}, r"--seed must be an integer in \[0, 4294967295\]"),
    ("cnn_dailymail", {"seed": 2**64}, r"--seed must be an integer in \[0, 4294967295\]"),
    ("ptb", {"join": "no"}, r"--set join must be true or false"),
])
def test_bad_settings_are_refused(model, tokenizer, lambada_file, task, settings, message):
    # Refused before the data is read (lambada_file is not these tasks' format).
    with pytest.raises(UsageError, match=message):
        evaluate(model, task, lambada_file, tokenizer=tokenizer, **settings)


def test_every_setting_has_a_rule():
    from gpt2.evaluate import Setting
    from gpt2.evaluate.runner import check_settings

    for task in tasks().values():
        assert all(isinstance(s, Setting) for s in task.settings.values()), task.name
        check_settings(task, task.defaults)  # the defaults themselves pass


def test_limit(model, tokenizer, lambada_file):
    r = evaluate(model, "lambada_openai", lambada_file, tokenizer=tokenizer, limit=2)
    assert r.n == 2 and r["acc"] == 0.5


# --------------------------------------------------------------------------- generation tasks
# A model that puts nearly all its mass on " Paris": greedy and top-k output is " Paris" repeated.

@pytest.fixture(scope="module")
def paris():
    return unigram_model({PARIS: 30.0}, n_ctx=256)


def test_nq_open_exact_match(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.generation")
    docs = [{"question": "Capital of Italy?", "answer": ["Rome"]},
            {"question": "Capital of France?", "answer": ["Paris", "paris, france"]},
            {"question": "Capital of Spain?", "answer": "Madrid"}]
    r = evaluate(paris, "nq_open", write_jsonl(tmp_path / "nq.jsonl", docs), tokenizer=tokenizer,
                 shots=1, max_new_tokens=1)
    assert r.metrics[0].n == 2 and r["exact_match"] == 0.5


def test_coqa_f1(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.generation")
    conv = {"story": "Anna lives in Paris. She has a cat.", "questions": ["Where does Anna live?", "What pet?"],
            "answers": {"input_text": ["Paris", "a cat"]}}
    r = evaluate(paris, "coqa", write_jsonl(tmp_path / "coqa.jsonl", [conv]), tokenizer=tokenizer,
                 max_new_tokens=4)
    # "Paris Paris Paris Paris" vs "Paris": P = 1/4, R = 1 -> F1 = 0.4; vs "a cat": 0.
    assert r.metrics[0].n == 2 and r["f1"] == pytest.approx(0.2)


def test_coqa_official_json(paris, tokenizer, tmp_path):
    pytest.importorskip("gpt2.generation")
    official = {"version": "1.0", "data": [{
        "story": "Anna lives in Paris.",
        "questions": [{"input_text": "Where does Anna live?", "turn_id": 1}, {"input_text": "Who?", "turn_id": 2}],
        "answers": [{"input_text": "Paris", "turn_id": 1}, {"input_text": "Anna", "turn_id": 2}],
        "additional_answers": {"0": [{"input_text": "in Paris"}, {"input_text": "Anna"}],
                               "1": [{"input_text": "Rome"}, {"input_text": "Anna"}]},
    }]}
    path = tmp_path / "coqa-dev-v1.0.json"
    path.write_text(json.dumps(official))
    assert read_coqa(path) == [{"story": "Anna lives in Paris.", "questions": ["Where does Anna live?", "Who?"],
                                "answers": [["Paris", "in Paris", "Rome"], ["Anna", "Anna", "Anna"]]}]
    r = evaluate(paris, "coqa", path, tokenizer=tokenizer, max_new_tokens=1)
    # "Paris" vs golds (Paris, in Paris, Rome): leave-one-out maxima 2/3, 1, 1 -> 8/9; vs "Anna": 0.
    assert r.metrics[0].n == 2 and r["f1"] == pytest.approx((8 / 9 + 0) / 2)
    path.write_text(json.dumps({"data": [{"story": "x", "questions": [{"text": "q"}], "answers": []}]}))
    with pytest.raises(EvalDataError, match=r"data\[0\]: expected story, questions\[\].input_text"):
        read_coqa(path)


# A model that writes " Paris. Paris. ..." (bigram: ":" -> " Paris" -> "." -> " Paris") with
# logit 10, a runner-up "!" with logit 1 (so that the top 2 hold no tie), 0 for all else:
# under top-k 2 each step keeps its token with probability 0.9999; without top-k the other
# 50,255 tokens take 70% of the mass.
DOT, COLON, BANG = 13, 25, 0


def test_summarization_first_sentences_and_top_k(tokenizer, tmp_path):
    pytest.importorskip("gpt2.generation")
    m = bigram_model({t: {nxt: 10.0, BANG: 1.0} for t, nxt in ((COLON, PARIS), (PARIS, DOT), (DOT, PARIS))})
    path = write_jsonl(tmp_path / "cnn.jsonl", [{"article": "The city is large and old.", "highlights": "Paris is big."}])

    def rouge1(**settings):
        return evaluate(m, "cnn_dailymail", path, tokenizer=tokenizer, max_new_tokens=12, **settings)["rouge1"]

    r = evaluate(m, "cnn_dailymail", path, tokenizer=tokenizer, max_new_tokens=12)
    # 6 sentences "Paris." generated, the first 3 kept: "Paris. Paris. Paris." vs "Paris is big."
    # ROUGE-1 P = 1/3, R = 1/3 -> 1/3 (all 6 would give 2/9); no shared bigram.
    assert r["rouge1"] == pytest.approx(1 / 3) and r["rougeL"] == pytest.approx(1 / 3) and r["rouge2"] == 0.0
    assert r.settings["top_k"] == 2 and r.settings["sentences"] == 3
    # Two sentences: P = 1/2 -> F = 0.4.
    assert rouge1(sentences=2) == pytest.approx(0.4)
    # Without top-k the samples leave the " Paris." loop: top_k reaches the sampler.
    assert rouge1(top_k=0) != pytest.approx(1 / 3)


@pytest.mark.parametrize("task, refs", [("wmt14_fr_en", "en"), ("wmt14_en_fr", "fr")])
def test_translation_keeps_the_first_sentence(tokenizer, tmp_path, task, refs):
    pytest.importorskip("gpt2.generation")
    import sacrebleu

    # Greedy output after " =": " Paris is big. Paris is big. Paris is" (10 tokens, one line).
    EQ, IS, BIG = 796, 318, 1263
    m = bigram_model({EQ: {PARIS: 10.0}, PARIS: {IS: 10.0}, IS: {BIG: 10.0}, BIG: {DOT: 10.0}, DOT: {PARIS: 10.0}})
    docs = [{"en": "hello", "fr": "bonjour"}, {"en": "Paris is big.", "fr": "Paris est grande."},
            {"en": "Paris is big.", "fr": "C'est grand."}]
    r = evaluate(m, task, write_jsonl(tmp_path / "wmt.jsonl", docs), tokenizer=tokenizer, shots=1, max_new_tokens=10)
    gold = [d[refs] for d in docs[1:]]
    first = sacrebleu.corpus_bleu(["Paris is big."] * 2, [gold]).score
    whole_line = sacrebleu.corpus_bleu(["Paris is big. Paris is big. Paris is"] * 2, [gold]).score
    assert r.metrics[0].n == 2 and r["bleu"] == pytest.approx(first)
    if refs == "en":  # the references are the target side: a perfect match
        assert first == pytest.approx(100.0) and whole_line < 100.0


def test_generation_shows_progress(paris, tokenizer, tmp_path, capsys):
    pytest.importorskip("gpt2.generation")
    docs = [{"question": "Capital of France?", "answer": ["Paris"]}] * 3
    evaluate(paris, "nq_open", write_jsonl(tmp_path / "nq.jsonl", docs), tokenizer=tokenizer, shots=1,
             max_new_tokens=1, batch_size=1, progress=True)
    err = capsys.readouterr().err
    assert "nq_open" in err and "0/2" in err  # a bar over the 2 scored prompts


def _empty_hub_cache(tmp_path, monkeypatch):
    """An empty cache for huggingface_hub and datasets (the libraries copy the variables when
    imported: set their copies too); returns the modules, or None without `datasets`."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    datasets = pytest.importorskip("datasets")
    import datasets.config
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    return hub, datasets


@pytest.mark.parametrize("offline", [True, False])
def test_unreachable_hub_fails_at_once(model, tokenizer, tmp_path, monkeypatch, offline):
    # huggingface_hub retried an unreachable hub for ~25 s (5 retries with back-off) before
    # the one-line error. Offline mode (HF_HUB_OFFLINE) must fail at once, and without it one
    # quick attempt must do: the endpoint here is a closed local port, so no network is used.
    hub, datasets = _empty_hub_cache(tmp_path, monkeypatch)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    else:
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    endpoint = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused
    monkeypatch.setattr(hub, "ENDPOINT", endpoint)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", endpoint)
    start = time.monotonic()
    with pytest.raises(EvalDataError, match=r"task wikitext2: .*pass --data PATH") as e:
        evaluate(model, "wikitext2", tokenizer=tokenizer)
    assert time.monotonic() - start < 5
    assert ("HF_HUB_OFFLINE is set" if offline else "cannot be reached") in str(e.value)
