"""Winograd (WSC273): lm-evaluation-harness's option normalization, checked by hand and against
lm-eval's own wsc273 code, and full vs partial scoring on a model where they disagree."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest

from conftest import bigram_logprob, bigram_model
from gpt2.evaluate import EvalDataError, evaluate
from gpt2.evaluate.families.winograd import normalize, read_wsc, sentences


def wsc(text: str, pronoun: str, options: list[str], label: int = 0) -> dict:
    """A doc with pronoun_loc at the pronoun's first whole-word occurrence."""
    loc = re.search(rf"\b{pronoun}\b", text).start()
    return {"text": text, "pronoun": pronoun, "pronoun_loc": loc, "options": options, "label": label}


DOCS = [
    # possessive "his": "'s" added; "The" lowercased mid-sentence
    wsc("The man lifted the boy onto his shoulders.", "his", ["The man", "The boy"]),
    # "He" starts a sentence (". " two characters before it): options keep their capitals
    wsc("Bob paid for Charlie's college education. He is very generous.", "He", ["Bob", "Charlie"]),
    wsc("Susan knows all about Ann's personal problems because she is nosy.", "she", ["Susan", "Ann"]),
    # "her" counts as possessive (lm-eval's list)
    wsc("Joan made sure to thank Susan for all the help her sister had given.", "her", ["Joan", "Susan"]),
    wsc("The sculpture rolled off the shelf because it wasn't anchored.", "it", ["The sculpture", "The shelf"]),
    # a double space after the pronoun is collapsed
    wsc("The dog chased the cat, which ran up a tree. It waited  at the top.", "It", ["The dog", "The cat"]),
    wsc("Pete envies Martin although he is very successful.", "he", ["Pete", "Martin"]),
    wsc("The fish ate the worm. It was tasty.", "It", ["The fish", "A worm"]),
    wsc("I poured water from the bottle into the cup until it was full.", "it", ["An empty bottle", "The cup"]),
]


def test_normalization_by_hand():
    heads = [[h for h, _ in sentences(d)] for d in DOCS]
    assert heads[0] == ["The man lifted the boy onto the man's", "The man lifted the boy onto the boy's"]
    assert sentences(DOCS[0])[0][1] == " shoulders."
    assert heads[1] == ["Bob paid for Charlie's college education. Bob",
                        "Bob paid for Charlie's college education. Charlie"]
    assert heads[3][1].endswith("the help Susan's")
    assert heads[4][0].endswith("because the sculpture") and heads[4][1].endswith("because the shelf")
    assert sentences(DOCS[5])[1] == ("The dog chased the cat, which ran up a tree. The cat", " waited at the top.")
    assert heads[7] == ["The fish ate the worm. The fish", "The fish ate the worm. A worm"]
    assert heads[8] == ["I poured water from the bottle into the cup until an empty bottle",
                        "I poured water from the bottle into the cup until the cup"]


def test_normalization_corner_cases():
    # A double space before the pronoun: the offset moves back with it.
    d = wsc("Tom  met Ann and  he smiled.", "he", ["Tom", "Ann"])
    assert d["pronoun_loc"] == 18
    n = normalize(d)
    assert n["text"] == "Tom met Ann and he smiled." and n["pronoun_loc"] == 16
    assert sentences(d) == [("Tom met Ann and Tom", " smiled."), ("Tom met Ann and Ann", " smiled.")]
    # A pronoun at the very start of the text starts a sentence; only the first word is lowered.
    d = {"text": "He saw The Who.", "pronoun": "He", "pronoun_loc": 0, "options": ["The Man", "The Kid"], "label": 0}
    assert sentences(d)[0] == ("The Man", " saw The Who.")
    d = wsc("So he said The.", "he", ["The man of The Times", "Bo"])
    assert sentences(d)[0][0] == "So the man of The Times"


def test_sentences_equal_lm_evals_wsc273():
    """Our (head, rest) equal what lm-eval builds: its process_doc, then its YAML's doc_to_choice
    (text[:pronoun_loc] + option) and doc_to_target (text after the pronoun)."""
    utils = pytest.importorskip("lm_eval.tasks.wsc273.utils")
    yaml = pytest.importorskip("yaml")
    from lm_eval.utils import apply_template

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    config = yaml.load((Path(utils.__file__).parent / "default.yaml").read_text(), Loader=Loader)

    class Docs(list):  # process_doc calls dataset.map(fn)
        def map(self, fn):
            return Docs(fn(copy.deepcopy(d)) for d in self)

    for doc, theirs in zip(DOCS, utils.process_doc(Docs(DOCS))):
        heads = ast.literal_eval(apply_template(config["doc_to_choice"], theirs))
        rest = apply_template(config["doc_to_target"], theirs)
        assert sentences(doc) == [(h, rest) for h in heads], doc["text"]


def write(tmp_path, docs) -> Path:
    path = tmp_path / "wsc.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_full_and_partial_disagree(tokenizer, tmp_path):
    # After " because" the model expects " Paris"; after " trophy" it expects " is". Full scoring
    # prefers the sentence with " Paris" in it, partial scoring the option that predicts " is".
    BECAUSE, PARIS, TROPHY, IS, THE = 780, 6342, 16383, 318, 262
    table = {BECAUSE: {PARIS: 12.0}, TROPHY: {IS: 8.0}}
    text = "The trophy does not fit into the suitcase because it is too big."
    docs = [wsc(text, "it", ["The trophy", "Paris"], 0), wsc(text, "it", ["Paris", "The trophy"], 1)]
    assert tokenizer.encode(" because the trophy is too big.")[:4] == [BECAUSE, THE, TROPHY, IS]

    def lp(a: int, b: int) -> float:
        return bigram_logprob(table, a, b)

    full = [lp(BECAUSE, THE) + lp(THE, TROPHY) + lp(TROPHY, IS), lp(BECAUSE, PARIS) + lp(PARIS, IS)]
    partial = [lp(TROPHY, IS), lp(PARIS, IS)]
    assert full[1] > full[0] + 10 and partial[0] > partial[1] + 5  # far from a tie
    r = evaluate(bigram_model(table), "winograd", write(tmp_path, docs), tokenizer=tokenizer)
    assert r["acc_partial"] == 1.0 and r["acc_full"] == 0.0


@pytest.mark.parametrize("change, message", [
    ({"label": "0"}, "label must be an index"),
    ({"label": 2}, "label must be an index"),
    ({"pronoun_loc": "4"}, "pronoun_loc must be an integer"),
    ({"pronoun_loc": 5}, "is not the pronoun"),
    ({"text": "The cat and the dog saw it", "pronoun_loc": 24}, "nothing follows the pronoun"),
    ({"options": ["cat"]}, "options must be a list of 2"),
])
def test_bad_data(tmp_path, change, message):
    doc = {"text": "The cat and the dog saw it run.", "pronoun": "it", "pronoun_loc": 24,
           "options": ["the cat", "the dog"], "label": 0} | change
    with pytest.raises(EvalDataError, match=message):
        read_wsc(write(tmp_path, [doc]))
