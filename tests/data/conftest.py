"""Fixtures for the data tests: small corpora with planted cases, written to temporary files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = ("the of and to in that have with be is it for on as was at by this from are but not "
         "river stone garden window letter morning silver harbor market winter forest candle bridge "
         "journey lantern meadow orchard painter sailor village whisper thunder valley mirror").split()


def prose(seed: int, words: int = 120) -> str:
    """Deterministic English-looking text that passes the quality rules."""
    rng = random.Random(seed)
    sentences, n = [], 0
    while n < words:
        k = rng.randint(8, 16)
        s = " ".join(rng.choice(WORDS) for _ in range(k))
        sentences.append(s[0].upper() + s[1:] + ".")
        n += k
    lines = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    return "\n".join(lines)


@pytest.fixture(name="prose")
def prose_fixture():
    return prose


@pytest.fixture
def corpus(tmp_path: Path) -> dict:
    """A JSONL corpus: 40 distinct documents plus one exact duplicate, one near duplicate, one
    document quoting the evaluation file, one low-quality document and three bad lines."""
    docs = [prose(i) for i in range(40)]
    eval_text = prose(1000, 60)
    near = docs[5].replace("river", "brook", 1)  # one word changed: Jaccard of 5-grams stays high
    rows = [{"text": d} for d in docs]
    rows.insert(10, {"text": docs[3]})  # exact duplicate
    rows.insert(20, {"text": near})
    rows.insert(25, {"text": prose(2000) + "\n" + eval_text})  # contaminated
    rows.insert(30, {"text": "the and 123 456 789 000 %%% $$$ word " * 10})  # mostly without letters
    path = tmp_path / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps(row) + "\n")
            if i == 2:
                f.write("this line is not JSON\n")
            if i == 4:
                f.write(json.dumps({"body": "no text field"}) + "\n")
            if i == 6:
                f.write(json.dumps({"text": 42}) + "\n")
    eval_path = tmp_path / "eval.txt"
    eval_path.write_text(eval_text, encoding="utf-8")
    return {"path": path, "eval": eval_path, "docs": docs, "near": near, "dir": tmp_path}
