"""GPT-2's tokenizer: exact ids against tiktoken's own GPT-2 construction and transformers.

The reference is built the way tiktoken_ext.openai_public.gpt2() builds "gpt2", from OpenAI's
encoder.json + vocab.bpe checked against OpenAI's published sha256: those two files are the
ones our save_pretrained writes (they cannot be downloaded here), so the same check also proves
that we reproduce OpenAI's files byte for byte.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle
import shutil
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpt2
from gpt2 import Tokenizer, TokenizerError
from gpt2.cli.main import main
from gpt2.errors import TokenIdError
from gpt2.tokenizer import EOT, GPT2_PATTERN, bytes_to_unicode

# Published sha256 of OpenAI's GPT-2 files (tiktoken_ext/openai_public.py).
OPENAI_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
OPENAI_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
BUNDLED_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
BUNDLED_PATH = Path(inspect.getfile(gpt2)).parent / "assets" / "gpt2.tiktoken"
# The vocabulary's identity as recorded in data manifests: must never change silently.
GPT2_FINGERPRINT = "081b9d145e0c2443d38650502a92e07a486d907839a5565cf264bee1f11458e2"

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog. It's 3:45 p.m.; isn't it?",
    "DON'T I'LL WE'VE SHE'D you're can't've 'tis O'Neill",
    "def f(x: int) -> int:\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
    "if (a != b && c <= 0x1F) { return -1; } // C-like",
    "数学は楽しい。中文测试，한국어 텍스트",
    "👨\u200d👩\u200d👧\u200d👦 family, flags 🇺🇸🇫🇷🇯🇵, skin tone 👍🏽, keycap 1\ufe0f\u20e3",
    "e\u0301 n\u0303 a\u0308 Zalgo: Z\u0335\u0322a\u0337l\u0336g\u0338o",
    "  leading and trailing spaces  ",
    "\t\ttabs\t and\t\t\ttabs\t",
    "line1\r\nline2\r\n\r\nline3\n\n\n\nend\n",
    "   ",
    " ",
    "\n",
    "",
    "3.14159 1,000,000 -42 1e-9 ２０２４ ١٢٣ Ⅻ",
    "<|endoftext|>",
    "before<|endoftext|>after <|endoftext|> <|endoftext|>\n",
    "<|endoftext",
    "Ünïcödé façade naïve coöperate résumé Ω≈ç√∫",
    "\u00a0non-breaking\u2003em-space\u200bzero-width\ufeffbom",
    "русский текст и ελληνικά και עברית ועוד",
    "x" * 300 + " " + "ab" * 200,
]


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tok() -> Tokenizer:
    return Tokenizer.from_pretrained("gpt2")


@pytest.fixture(scope="session")
def hf_dir(tok, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("gpt2-tokenizer")
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def openai_dir(hf_dir, tmp_path_factory) -> Path:
    """The same vocabulary under OpenAI's file names (encoder.json + vocab.bpe)."""
    directory = tmp_path_factory.mktemp("gpt2-openai")
    shutil.copy(hf_dir / "vocab.json", directory / "encoder.json")
    shutil.copy(hf_dir / "merges.txt", directory / "vocab.bpe")
    return directory


@pytest.fixture(scope="session")
def reference(openai_dir) -> tiktoken.Encoding:
    """tiktoken's GPT-2 exactly as tiktoken_ext.openai_public.gpt2() defines it, from local files."""
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext import openai_public

    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(openai_dir / "vocab.bpe"),
        encoder_json_file=str(openai_dir / "encoder.json"),
        vocab_bpe_hash=OPENAI_VOCAB_BPE_SHA256,
        encoder_json_hash=OPENAI_ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        "gpt2",
        pat_str=openai_public.r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={openai_public.ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


@pytest.fixture(scope="session")
def hf_fast(hf_dir):
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast(vocab=str(hf_dir / "vocab.json"), merges=str(hf_dir / "merges.txt"))


@pytest.fixture(scope="session")
def hf_auto(hf_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf_dir)


@pytest.fixture(scope="session")
def hf_raw(hf_dir):
    """HF `tokenizers` directly: byte-level BPE from the files, GPT-2's pre-tokenizer."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    hf = HFTokenizer(models.BPE.from_file(str(hf_dir / "vocab.json"), str(hf_dir / "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


def mixed_document() -> str:
    """A few hundred KB of varied text: Python sources of the standard library and TEXTS."""
    import argparse
    import json.decoder
    import textwrap

    parts = [inspect.getsource(m) for m in (argparse, json.decoder, textwrap)]
    return "\n\n".join(parts + TEXTS * 3)


# --------------------------------------------------------------------------------- the vocabulary


def test_bundled_file_is_gpt2s_vocabulary():
    assert hashlib.sha256(BUNDLED_PATH.read_bytes()).hexdigest() == BUNDLED_SHA256


def test_pattern_is_tiktokens_gpt2_pattern():
    from tiktoken_ext import openai_public

    assert GPT2_PATTERN == openai_public.r50k_pat_str


def test_known_ids_and_sizes(tok):
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.decode([15496, 995]) == "Hello world"
    assert tok.eot_token == 50256
    assert tok.vocab_size == len(tok) == 50257
    assert tok.name == "gpt2"
    assert tok.special_tokens == {EOT: 50256}
    assert len(tok.mergeable_ranks) == 50256


def test_saved_files_are_openais_files_byte_for_byte(hf_dir):
    # Also checked by the reference fixture through tiktoken's own hash check.
    assert hashlib.sha256((hf_dir / "vocab.json").read_bytes()).hexdigest() == OPENAI_ENCODER_JSON_SHA256
    assert hashlib.sha256((hf_dir / "merges.txt").read_bytes()).hexdigest() == OPENAI_VOCAB_BPE_SHA256


def test_reference_ranks_equal_ours(tok, reference):
    assert reference._mergeable_ranks == dict(tok.mergeable_ranks)


def test_fingerprint_is_stable(tok, hf_dir, openai_dir):
    assert tok.fingerprint == GPT2_FINGERPRINT
    assert Tokenizer.from_pretrained(hf_dir).fingerprint == GPT2_FINGERPRINT
    assert Tokenizer.from_pretrained(openai_dir).fingerprint == GPT2_FINGERPRINT
    other = Tokenizer({bytes([b]): b for b in range(256)}, name="bytes")
    assert other.fingerprint != GPT2_FINGERPRINT


@pytest.mark.parametrize("name", [
    "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl",
    "openai-community/gpt2", "openai-community/gpt2-medium",
    "openai-community/gpt2-large", "openai-community/gpt2-xl",
])
def test_every_gpt2_name_gives_the_bundled_vocabulary(name):
    t = Tokenizer.from_pretrained(name)
    assert t.fingerprint == GPT2_FINGERPRINT
    assert t.encode("Hello world") == [15496, 995]


def test_bundled_vocabulary_is_parsed_once(tok):
    a, b = Tokenizer.from_pretrained("gpt2"), Tokenizer.from_pretrained("openai-community/gpt2")
    assert a.mergeable_ranks == tok.mergeable_ranks
    assert a.encoding is b.encoding is tok.encoding  # one cached tiktoken Encoding


# --------------------------------------------------------------------------------- exact ids


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_tiktoken_and_transformers(text, tok, reference, hf_fast, hf_auto, hf_raw):
    ids = tok.encode(text)
    assert ids == reference.encode(text, disallowed_special=())
    assert ids == hf_fast(text, split_special_tokens=True)["input_ids"]
    assert ids == hf_auto(text, split_special_tokens=True)["input_ids"]
    assert ids == hf_raw.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text == hf_fast.decode(ids)

    allowed = tok.encode(text, allowed_special="all")
    assert allowed == reference.encode(text, allowed_special="all")
    assert allowed == hf_fast(text)["input_ids"]  # transformers treats special text as special
    assert tok.decode(allowed) == text


def test_ids_match_on_a_mixed_document(tok, reference, hf_raw):
    text = mixed_document()
    ids = tok.encode(text)
    assert ids == reference.encode_ordinary(text)
    assert ids == hf_raw.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text


def test_special_token_text_is_plain_text_by_default(tok):
    text = "a<|endoftext|>b"
    assert EOT not in [tok.decode([i]) for i in tok.encode(text)]
    assert 50256 not in tok.encode(text)
    assert tok.encode(text, allowed_special={EOT}) == [64, 50256, 65]
    assert tok.encode(text, allowed_special="all") == [64, 50256, 65]
    assert tok.decode([64, 50256, 65]) == text


def test_allowed_special_rejects_unknown_tokens(tok):
    with pytest.raises(TokenizerError, match="<|startoftext|>"):
        tok.encode("x", allowed_special={"<|startoftext|>"})
    with pytest.raises(TokenizerError, match="allowed_special"):
        tok.encode("x", allowed_special="none")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())  # hypothesis' text never holds surrogates
def test_decode_inverts_encode_on_any_text(tok, reference, hf_raw, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids == reference.encode_ordinary(text)
    assert ids == hf_raw.encode(text, add_special_tokens=False).ids


def test_lone_surrogates_become_replacement_characters(tok):
    # Python strings can hold them, UTF-8 cannot: tiktoken replaces them with U+FFFD.
    assert tok.decode(tok.encode("a\ud800b")) == "a\ufffdb"


def test_encode_batch_equals_encode(tok):
    texts = TEXTS * 4
    expected = [tok.encode(t) for t in texts]
    assert tok.encode_batch(texts) == expected
    assert tok.encode_batch(texts, num_threads=1) == expected
    assert tok.encode_batch(texts, allowed_special="all", num_threads=2) == [
        tok.encode(t, allowed_special="all") for t in texts
    ]


def test_decode_bytes_and_token_bytes(tok):
    ids = tok.encode("naïve 👍")
    assert tok.decode_bytes(ids) == "naïve 👍".encode()
    assert b"".join(tok.token_bytes(i) for i in ids) == "naïve 👍".encode()
    # A cut-off character decodes to U+FFFD rather than failing.
    assert tok.decode(ids[:-1]).endswith("\ufffd")


def test_decode_takes_arrays_and_tensors(tok):
    import numpy as np
    import torch

    ids = tok.encode("Hello world")
    assert tok.decode(np.array(ids, dtype=np.int64)) == "Hello world"
    assert tok.decode(torch.tensor(ids)) == "Hello world"
    assert tok.decode((i for i in ids)) == "Hello world"


@pytest.mark.parametrize("bad", [[50257], [-1], [2**40], [15496, 99999]])
def test_decode_rejects_unknown_ids(tok, bad):
    # A ValueError (as for any bad argument) naming the id and the vocabulary's size.
    message = rf"token id {bad[-1]} is not in the vocabulary of gpt2 \(50257 ids: 0..50256\)"
    with pytest.raises(ValueError, match=message) as info:
        tok.decode(bad)
    assert isinstance(info.value, TokenizerError) and type(info.value) is TokenIdError
    with pytest.raises(ValueError, match=message):
        tok.stream_decoder().add(bad[-1])


@pytest.mark.parametrize("bad", [["x"], [1.0], [None]])
def test_decode_rejects_non_integers(tok, bad):
    with pytest.raises(ValueError, match=r"token id .* is not an integer"):
        tok.decode(bad)


# --------------------------------------------------------------------------------- streaming


def test_stream_decoder_holds_back_split_characters(tok):
    ids = tok.encode("👍")  # one character, two tokens
    assert len(ids) == 2
    with pytest.raises(UnicodeDecodeError):
        tok.token_bytes(ids[0]).decode("utf-8")
    stream = tok.stream_decoder()
    assert stream.add(ids[0]) == ""
    assert stream.add(ids[1]) == "👍"
    assert stream.flush() == ""


def test_stream_decoder_flushes_an_unfinished_character(tok):
    stream = tok.stream_decoder()
    assert stream.add(tok.encode("👍")[0]) == ""
    assert stream.flush() == "\ufffd"
    assert stream.add(15496) == "Hello"  # starts afresh after a flush


@pytest.mark.parametrize("text", TEXTS)
def test_stream_decoder_pieces_join_to_the_text(tok, text):
    stream = tok.stream_decoder()
    pieces = [stream.add(i) for i in tok.encode(text)] + [stream.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(0, 50256), max_size=30))
def test_stream_decoder_equals_decode_on_any_ids(tok, ids):
    stream = tok.stream_decoder()
    assert "".join(stream.add(i) for i in ids) + stream.flush() == tok.decode(ids)


# --------------------------------------------------------------------------------- files


def test_saved_directory_loads_in_transformers_with_the_same_ids(tok, hf_auto):
    text = mixed_document()
    assert hf_auto(text, split_special_tokens=True)["input_ids"] == tok.encode(text)
    assert hf_auto.eos_token == hf_auto.bos_token == hf_auto.unk_token == EOT
    assert hf_auto.eos_token_id == 50256
    assert hf_auto.model_max_length == 1024


@pytest.mark.parametrize("fmt", ["hf", "openai", "tiktoken"])
def test_saved_then_loaded_gives_identical_ids(tok, hf_dir, openai_dir, tmp_path, fmt):
    if fmt == "hf":
        directory = hf_dir
    elif fmt == "openai":
        directory = openai_dir
    else:
        directory = tmp_path
        shutil.copy(BUNDLED_PATH, directory)
    loaded = Tokenizer.from_pretrained(directory)
    assert loaded.fingerprint == tok.fingerprint
    assert loaded.eot_token == 50256 and loaded.vocab_size == 50257
    text = mixed_document()
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.encode(TEXTS[17], allowed_special="all") == tok.encode(TEXTS[17], allowed_special="all")


def test_a_tiktoken_file_path_loads(tok):
    assert Tokenizer.from_pretrained(BUNDLED_PATH).fingerprint == tok.fingerprint


def test_save_leaves_other_files_alone_and_writes_no_config_json(tok, tmp_path):
    model_config = tmp_path / "config.json"
    model_config.write_text('{"model_type": "gpt2"}')
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    written = tok.save_pretrained(tmp_path)
    assert sorted(p.name for p in written) == [
        "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    assert model_config.read_text() == '{"model_type": "gpt2"}'
    assert (tmp_path / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["config.json", "model.safetensors", *(p.name for p in written)])  # no temp files left
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "GPT2Tokenizer" and config["eos_token"] == EOT
    # Saving again over existing files works and gives the same bytes.
    before = (tmp_path / "vocab.json").read_bytes()
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "vocab.json").read_bytes() == before


def test_save_is_all_or_nothing(tok, tmp_path, monkeypatch):
    # A failure while writing the third file leaves neither files, temporary files nor the
    # directories the save created; an earlier tokenizer in an existing directory stays whole.
    import os

    real_fsync, calls = os.fsync, []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(TokenizerError, match="No space left on device"):
        tok.save_pretrained(tmp_path / "new" / "dir")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    small = Tokenizer({bytes([b]): b for b in range(256)}, name="bytes")
    small.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls.clear()
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(TokenizerError):
        tok.save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_file_is_not_a_tokenizer_directory(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hi")
    with pytest.raises(TokenizerError, match="notes.txt: a file, not a tokenizer directory"):
        Tokenizer.from_pretrained(path)


def test_pickle_round_trip(tok):
    data = pickle.dumps(tok)
    assert len(data) < 200  # GPT-2's tokenizer travels by name
    assert pickle.loads(data).encode("Hello world") == [15496, 995]
    small = Tokenizer({bytes([b]): b for b in range(256)}, name="bytes")
    again = pickle.loads(pickle.dumps(small))
    assert again.fingerprint == small.fingerprint and again.encode("hi") == [104, 105]


# --------------------------------------------------------------------------------- bad input


def test_unknown_name_or_missing_directory(tmp_path):
    with pytest.raises(TokenizerError, match="gpt3"):
        Tokenizer.from_pretrained("gpt3")
    with pytest.raises(TokenizerError, match="nowhere"):
        Tokenizer.from_pretrained(tmp_path / "nowhere")


def test_directory_without_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TokenizerError, match=f"{tmp_path}: no tokenizer files"):
        Tokenizer.from_pretrained(tmp_path)


def test_half_a_pair_of_files(hf_dir, tmp_path):
    shutil.copy(hf_dir / "vocab.json", tmp_path)
    with pytest.raises(TokenizerError, match="merges.txt: missing"):
        Tokenizer.from_pretrained(tmp_path)


def _copy(hf_dir: Path, tmp_path: Path) -> Path:
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(hf_dir / name, tmp_path)
    return tmp_path


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": -1}', '{"a": 0, "b": 0}'])
def test_malformed_vocab_json(hf_dir, tmp_path, content):
    _copy(hf_dir, tmp_path)
    (tmp_path / "vocab.json").write_text(content)
    with pytest.raises(TokenizerError, match="vocab.json"):
        Tokenizer.from_pretrained(tmp_path)


def test_vocab_json_that_is_not_byte_level(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, EOT: 2}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(TokenizerError, match="vocab.json.*byte token"):
        Tokenizer.from_pretrained(tmp_path)


def test_malformed_merges(hf_dir, tmp_path):
    _copy(hf_dir, tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nthree parts here\n")
    with pytest.raises(TokenizerError, match="merges.txt: line 3"):
        Tokenizer.from_pretrained(tmp_path)


def test_non_utf8_file(hf_dir, tmp_path):
    _copy(hf_dir, tmp_path)
    (tmp_path / "merges.txt").write_bytes(b"#version: 0.2\n\xff\xfe\n")
    with pytest.raises(TokenizerError, match="merges.txt: not UTF-8"):
        Tokenizer.from_pretrained(tmp_path)


def test_malformed_tiktoken_file(tmp_path):
    (tmp_path / "bad.tiktoken").write_text("IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(TokenizerError, match="bad.tiktoken: line 2"):
        Tokenizer.from_pretrained(tmp_path)


def _byte_vocab() -> dict[str, int]:
    return {char: i for i, char in enumerate(bytes_to_unicode().values())}


def test_ids_out_of_merge_order_are_refused(tmp_path):
    # tiktoken merges by token id, merges.txt by line: they must agree.
    vocab = _byte_vocab() | {"ab": 257, "cd": 256, EOT: 258}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nc d\n")
    with pytest.raises(TokenizerError, match="merge order"):
        Tokenizer.from_pretrained(tmp_path)


def test_a_second_merge_making_the_same_token_is_dropped(tmp_path):
    vocab = _byte_vocab() | {"ab": 256, "bc": 257, "abc": 258, EOT: 259}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nb c\nab c\na bc\n")
    t = Tokenizer.from_pretrained(tmp_path)
    assert t.merges == [(b"a", b"b"), (b"b", b"c"), (b"ab", b"c")]
    assert t.encode("abc abcd") == [258, vocab["Ġ"], 258, vocab["d"]]


def test_vocabulary_without_endoftext(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(_byte_vocab()))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(TokenizerError, match="vocab.json: has no <\\|endoftext\\|>"):
        Tokenizer.from_pretrained(tmp_path)


# --------------------------------------------------------------------------------- CLI


def test_cli_encode_and_decode(capsys):
    assert main(["tokenizer", "encode", "Hello world"]) == 0
    assert capsys.readouterr().out == "15496 995\n"
    assert main(["tokenizer", "encode", "Hello<|endoftext|>", "--json", "--allow-special"]) == 0
    assert json.loads(capsys.readouterr().out) == [15496, 50256]
    assert main(["tokenizer", "decode", "15496", "995"]) == 0
    assert capsys.readouterr().out == "Hello world\n"
    assert main(["tokenizer", "decode", "[15496, 995]"]) == 0
    assert capsys.readouterr().out == "Hello world\n"


def test_cli_reads_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Hello world"))
    assert main(["tokenizer", "encode", "-"]) == 0
    assert capsys.readouterr().out == "15496 995\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("15496 995\n"))
    assert main(["tokenizer", "decode"]) == 0
    assert capsys.readouterr().out == "Hello world\n"


@pytest.mark.parametrize("argv, message", [
    (["tokenizer", "decode", "99999"], "token id 99999 is not in the vocabulary of gpt2 (50257 ids"),
    (["tokenizer", "decode", "12x"], "IDS: '12x' is not a token id"),
    (["tokenizer", "encode", "hi", "--tokenizer", "no-such-tokenizer"], "no-such-tokenizer"),
])
def test_cli_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1

