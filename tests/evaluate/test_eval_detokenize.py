"""Detokenizers: hand-checked outputs, invertibility on WikiText/PTB-style text and on random
token sequences, and the harness variant equal to lm-evaluation-harness's own function."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2.evaluate.detokenize import (
    cbt_detokenize,
    ptb_detokenize,
    ptb_retokenize,
    wikitext_detokenize,
    wikitext_detokenize_harness,
    wikitext_retokenize,
)


@pytest.mark.parametrize("tokenized, text", [
    (" = = History = = ", " == History == "),
    (" built in 1 @,@ 862 , it is 23 @.@ 5 m ( 77 ft ) tall . ", " built in 1,862, it is 23.5 m (77 ft) tall. "),
    (' a two @-@ storey building ; " It was lonely , " he said . ', ' a two-storey building; "It was lonely," he said. '),
    (" The keeper 's cottage did n't fall : it stood [ a ] . ", " The keeper's cottage didn't fall: it stood [a]. "),
    (" The U.S. Navy and Mr. Brown . ", " The U.S. Navy and Mr. Brown. "),
])
def test_wikitext_by_hand(tokenized, text):
    assert wikitext_detokenize(tokenized) == text
    assert wikitext_retokenize(text) == tokenized


def test_wikitext_fixture_round_trip(fixtures):
    raw = (fixtures / "wiki.test.tokens").read_text()
    detok = wikitext_detokenize(raw)
    assert detok != raw and " @" not in detok
    assert wikitext_retokenize(detok) == raw
    for line in (fixtures / "wikitext.jsonl").read_text().splitlines():
        page = json.loads(line)["page"]
        assert wikitext_retokenize(wikitext_detokenize(page)) == page


def test_ptb_round_trip(fixtures):
    raw = (fixtures / "ptb.sample.txt").read_text()
    detok = ptb_detokenize(raw)
    assert " didn't expect" in detok and " it's the third" in detok and " won't reopen" in detok
    assert " they're planning" in detok and " company's shares" in detok
    assert ptb_retokenize(detok) == raw


# Random lines in WikiText's token conventions: words, numbers with escaped separators,
# punctuation, clitics after words, brackets and quotes, each token separated by one space.
_WORDS = ["the", "keeper", "Light", "1981", "<unk>", "U.S.", "Mr.", "tower", "km", "£", "St.", "it"]
_token = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from([".", ",", ";", ":", "!", "?"]),
    # A clitic follows a word in WikiText ("did n't"), never punctuation.
    st.tuples(st.sampled_from(_WORDS[:4]), st.sampled_from(["'s", "n't", "'re"])).map(" ".join),
    st.tuples(st.integers(0, 999), st.sampled_from(["@,@", "@.@"]), st.integers(0, 999)).map(
        lambda t: f"{t[0]} {t[1]} {t[2]:03d}"),
    st.tuples(st.sampled_from(_WORDS[:3]), st.sampled_from(_WORDS[:3])).map(lambda t: f"{t[0]} @-@ {t[1]}"),
    st.lists(st.sampled_from(_WORDS[:4]), min_size=1, max_size=3).map(lambda w: "( " + " ".join(w) + " )"),
    st.lists(st.sampled_from(_WORDS[:4]), min_size=1, max_size=3).map(lambda w: '" ' + " ".join(w) + ' "'),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_token, min_size=1, max_size=12))
def test_wikitext_invertible_on_random_lines(tokens):
    line = " " + " ".join([_WORDS[0]] + tokens) + " "  # a line starts with a word
    assert wikitext_retokenize(wikitext_detokenize(line)) == line


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["the", "ca", "do", "it", "N", "<unk>", "$", "'s", "n't", "'re", "'ve"]),
                min_size=1, max_size=15))
def test_ptb_invertible_on_random_lines(tokens):
    line = " " + " ".join(["we"] + tokens) + " "
    assert ptb_retokenize(ptb_detokenize(line)) == line


def test_harness_detokenizer_is_lm_evals(fixtures):
    lm_eval_wikitext = pytest.importorskip("lm_eval.tasks.wikitext.preprocess_wikitext")
    texts = [json.loads(line)["page"] for line in (fixtures / "wikitext.jsonl").read_text().splitlines()]
    texts.append((fixtures / "wiki.test.tokens").read_text())
    texts.append(" s ' 3 N apples ( a ) [ b ] { c } ' x ' 90 ° = = = = T = = = = \n ")
    for t in texts:
        assert wikitext_detokenize_harness(t) == lm_eval_wikitext.wikitext_detokenizer({"page": t})


def test_cbt():
    assert cbt_detokenize("`` Come here , '' said the King . He did n't ( see ) .") == \
        '"Come here," said the King. He didn\'t (see).'
