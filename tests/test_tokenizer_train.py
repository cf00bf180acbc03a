"""Training byte-level BPE vocabularies: tiktoken (our encode path) and HF `tokenizers` agree.

tiktoken merges the pair whose merged token has the lowest id; HF applies merges in merges.txt
order. A trained vocabulary is only usable through tiktoken if the two coincide, so these
tests compare both on the training text itself and on unseen text.
"""

from __future__ import annotations

import inspect
import json
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2 import GPT2Error, Tokenizer, TokenizerError
from gpt2.cli.main import main
from gpt2.tokenizer import EOT, MAX_VOCAB_SIZE, bytes_to_unicode
from gpt2.tokenizer.training import _pieces

from test_tokenizer import TEXTS, mixed_document

VOCAB_SIZE = 1500


def _prose(rng: random.Random, words: list[str], n: int) -> str:
    sentences = []
    for _ in range(n):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice([".", ".", "?", "!", ";"]))
    return " ".join(sentences)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> list[Path]:
    """Three UTF-8 files, ~250 KB: Python source, word-list prose with CRLF lines, unicode."""
    import argparse
    import json as json_module
    import textwrap

    directory = tmp_path_factory.mktemp("corpus")
    rng = random.Random(1234)
    source = "\n\n".join(inspect.getsource(m) for m in (argparse, json_module.decoder, textwrap))
    words = sorted(set(w.lower() for w in source.split() if w.isalpha()))
    prose = "\r\n\r\n".join(_prose(rng, words, 20) for _ in range(60))
    unicode_text = "\n".join(rng.choice(TEXTS[5:8] + TEXTS[19:22]) for _ in range(800))
    files = []
    for name, text in [("code.py", source), ("prose.txt", prose), ("unicode.txt", unicode_text)]:
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="")
        files.append(path)
    return files


@pytest.fixture(scope="session")
def trained(corpus) -> Tokenizer:
    return Tokenizer.train(corpus, VOCAB_SIZE)


@pytest.fixture(scope="session")
def trained_dir(trained, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("trained-tokenizer")
    trained.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def hf_trained(trained_dir):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    hf = HFTokenizer(models.BPE.from_file(str(trained_dir / "vocab.json"), str(trained_dir / "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


def test_trained_vocabulary_layout(trained):
    assert trained.vocab_size == len(trained) == VOCAB_SIZE
    assert trained.eot_token == VOCAB_SIZE - 1
    assert trained.special_tokens == {EOT: VOCAB_SIZE - 1}
    ranks = trained.mergeable_ranks
    # The 256 byte tokens come first, in GPT-2's order ...
    gpt2_ranks = Tokenizer.from_pretrained("gpt2").mergeable_ranks
    assert {t: r for t, r in ranks.items() if len(t) == 1} == {
        t: r for t, r in gpt2_ranks.items() if len(t) == 1}
    # ... then one token per merge, its id being the merge's position.
    assert len(trained.merges) == VOCAB_SIZE - 257
    assert [ranks[a + b] for a, b in trained.merges] == list(range(256, VOCAB_SIZE - 1))


def test_vocabulary_is_what_hf_bpetrainer_learns(trained, corpus):
    # Trained directly with HF, the same settings: the same merges, the same ids.
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 1, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator((p.read_bytes().decode("utf-8") for p in corpus), trainer)
    model = json.loads(hf.to_str())["model"]
    spell = bytes_to_unicode()
    ours = {"".join(spell[b] for b in token): i for token, i in trained.mergeable_ranks.items()}
    assert ours == model["vocab"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    assert [["".join(spell[x] for x in a), "".join(spell[x] for x in b)] for a, b in trained.merges] == merges


def test_tiktoken_and_hf_agree_on_the_training_text(trained, hf_trained, corpus):
    for path in corpus:
        text = path.read_bytes().decode("utf-8")
        ids = trained.encode(text)
        assert ids == hf_trained.encode(text, add_special_tokens=False).ids, path.name
        assert trained.decode(ids) == text
        assert len(ids) < 0.6 * len(text.encode())  # the merges do compress their own text


@pytest.mark.parametrize("text", TEXTS)
def test_tiktoken_and_hf_agree_on_other_text(trained, hf_trained, text):
    ids = trained.encode(text)
    assert ids == hf_trained.encode(text, add_special_tokens=False).ids
    assert trained.decode(ids) == text


def test_transformers_loads_the_trained_directory(trained, trained_dir):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(trained_dir)
    text = mixed_document()
    assert hf(text, split_special_tokens=True)["input_ids"] == trained.encode(text)
    assert hf.eos_token_id == VOCAB_SIZE - 1
    assert hf("x<|endoftext|>")["input_ids"] == trained.encode("x<|endoftext|>", allowed_special="all")


def test_saved_then_loaded(trained, trained_dir, corpus):
    loaded = Tokenizer.from_pretrained(trained_dir)
    assert loaded.fingerprint == trained.fingerprint
    assert loaded.fingerprint != Tokenizer.from_pretrained("gpt2").fingerprint
    assert loaded.name == trained_dir.name
    text = corpus[1].read_bytes().decode("utf-8")
    assert loaded.encode(text) == trained.encode(text)
    vocab = json.loads((trained_dir / "vocab.json").read_text())
    assert len(vocab) == VOCAB_SIZE and vocab[EOT] == VOCAB_SIZE - 1


def test_training_is_deterministic(corpus, trained):
    assert Tokenizer.train(corpus, VOCAB_SIZE).fingerprint == trained.fingerprint


def test_small_text_gives_fewer_ids(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello hello hello world world")
    tok = Tokenizer.train([path], 5000)
    assert 257 < tok.vocab_size < 5000
    assert tok.eot_token == tok.vocab_size - 1
    assert tok.decode(tok.encode("hello world")) == "hello world"
    assert len(tok.encode("hello")) == 1


def test_chunks_cut_only_where_the_split_is_unchanged(trained, corpus):
    # Training sees the documents in pieces; encoding the pieces separately must equal encoding
    # the whole, i.e. no cut ever falls inside a pre-tokenizer piece.
    for path in corpus:
        text = path.read_bytes().decode("utf-8")
        chunks = list(_pieces(text, chunk_chars=2000))
        assert len(chunks) > 5 and "".join(chunks) == text
        assert [i for c in chunks for i in trained.encode(c)] == trained.encode(text)


# Characters around which GPT-2's regex behaves differently: runs of spaces, tabs, CR/LF,
# letters, digits, punctuation, contractions, and whitespace Python and tiktoken disagree on.
PIECES = [" ", "  ", "\n", "\r\n", "\t", "a", "B", "'s", "1", ".", "é", "\u00a0", "\x1c", "\u3000"]


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=200), chunk_chars=st.integers(1, 40))
def test_chunk_cuts_never_change_the_split(parts, chunk_chars):
    text = "".join(parts)
    chunks = list(_pieces(text, chunk_chars=chunk_chars))
    assert "".join(chunks) == text
    gpt2 = Tokenizer.from_pretrained("gpt2")
    assert [i for c in chunks for i in gpt2.encode(c)] == gpt2.encode(text)


@pytest.mark.parametrize("vocab_size", [256, 0, "1000", True, MAX_VOCAB_SIZE + 1, 99999999999999])
def test_bad_vocab_size(corpus, vocab_size):
    # 99999999999999 used to reach HF's trainer, which aborted the process (exit 134).
    with pytest.raises(TokenizerError, match=r"vocab_size must be an integer in \[257, 1,048,576\]"):
        Tokenizer.train(corpus, vocab_size)


@pytest.mark.parametrize("min_frequency", [0, -1, 2.5, 10**12])
def test_bad_min_frequency(corpus, min_frequency):
    with pytest.raises(TokenizerError, match="min_frequency must be an integer"):
        Tokenizer.train(corpus, 300, min_frequency=min_frequency)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(GPT2Error, match="missing.txt: no such file"):
        Tokenizer.train([tmp_path / "missing.txt"], 300)
    # Read as `gpt2 prepare` reads it: undecodable bytes become U+FFFD and are counted.
    from gpt2.data.sources import SourceStats

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café ".encode("latin-1") * 10)
    stats = SourceStats()
    tok = Tokenizer.train([bad], 300, stats=stats)
    assert stats.replaced_bytes == 10 and stats.documents == 1
    assert tok.decode(tok.encode("caf\ufffd")) == "caf\ufffd"


def test_reads_inputs_as_prepare_does(tmp_path):
    # A .jsonl input is trained on its text field, not on the raw JSON; a directory recursively.
    docs = [{"body": f"the quick brown fox number {i} jumps", "id": i} for i in range(50)]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    tok = Tokenizer.train([tmp_path], 400, text_field="body")
    merged = {t for t in tok.mergeable_ranks if len(t) > 1}
    assert b" quick" in merged and b" jumps" in merged
    assert not any(b'"' in t or b"body" in t or b"id" in t for t in merged)
    # The text is exactly what the same documents give as plain text files.
    for i, d in enumerate(docs):
        (tmp_path / "plain" / f"{i:02d}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "plain" / f"{i:02d}.txt").write_text(d["body"])
    assert Tokenizer.train([tmp_path / "plain"], 400).fingerprint == tok.fingerprint


def test_no_text_is_an_error_naming_the_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"body": "x"}\n')
    with pytest.raises(TokenizerError, match=r'no text to train on in .*docs.jsonl:1: no "text" field'):
        Tokenizer.train([path], 300)


def test_progress_is_called_and_ends_with_finished(corpus):
    calls = []
    Tokenizer.train(corpus, 300, progress=lambda s, chars, finished: calls.append((s.documents, chars, finished)))
    assert calls[-1] == (3, sum(len(p.read_bytes().decode("utf-8")) for p in corpus), True)
    assert not any(finished for *_, finished in calls[:-1]) and len(calls) > 3


def test_training_without_tokenizers_installed(corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # `import tokenizers` now fails
    with pytest.raises(TokenizerError, match="pip install tokenizers"):
        Tokenizer.train(corpus, 300)


def test_cli_train_then_encode(corpus, tmp_path, capsys):
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", *map(str, corpus), "--vocab-size", "600", "--output", str(out)]) == 0
    assert "trained 600 ids" in capsys.readouterr().out
    tok = Tokenizer.from_pretrained(out)
    assert tok.fingerprint == Tokenizer.train(corpus, 600).fingerprint  # the child trained the same
    assert main(["tokenizer", "encode", "def main():", "--tokenizer", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == tok.encode("def main():")
