"""Extra special tokens and the chat template: what fine-tuning adds to a vocabulary.

The reference is transformers itself: a directory we save must load in AutoTokenizer (and
GPT2TokenizerFast, GPT2Tokenizer) with the same size, the same ids and the same template as
transformers gets by adding the tokens itself (`add_special_tokens` + `chat_template`).
"""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2 import Tokenizer, TokenizerError
from gpt2.cli.main import main
from gpt2.tokenizer import EOT

EXTRA = ["<|im_start|>", "<|im_end|>", "<|pad|>"]
TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
            "{{ message['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TEXTS = [
    "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n",
    "no special tokens at all",
    "hello <|im_start|> world  <|im_end|>  ",
    "<|im_end|><|im_start|><|pad|><|endoftext|><|pad|>",
    "almost <|im_start| and <|im_end and <|pad",
    "数学<|im_start|>👍🏽<|im_end|>é",
    "",
]


def small() -> Tokenizer:
    return Tokenizer({bytes([b]): b for b in range(256)}, name="bytes")


@pytest.fixture(scope="module")
def chat() -> Tokenizer:
    return Tokenizer.gpt2().add_special_tokens(EXTRA).with_chat_template(TEMPLATE)


@pytest.fixture(scope="module")
def chat_dir(chat, tmp_path_factory):
    directory = tmp_path_factory.mktemp("chat-tokenizer")
    chat.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2-tokenizer")
    Tokenizer.gpt2().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def hf_auto(chat_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_dir)


@pytest.fixture(scope="module", params=["AutoTokenizer", "GPT2TokenizerFast", "GPT2Tokenizer"])
def hf_chat(request, chat_dir):
    import transformers

    return getattr(transformers, request.param).from_pretrained(chat_dir)


# --------------------------------------------------------------------------------- ids


def test_new_tokens_get_the_next_free_ids_in_order():
    gpt2 = Tokenizer.gpt2()
    tok = gpt2.add_special_tokens(EXTRA)
    assert tok.special_tokens == {EOT: 50256, "<|im_start|>": 50257, "<|im_end|>": 50258, "<|pad|>": 50259}
    assert tok.vocab_size == len(tok) == 50260 and tok.eot_token == 50256
    assert gpt2.special_tokens == {EOT: 50256} and len(gpt2) == 50257  # a new tokenizer
    assert dict(tok.mergeable_ranks) == dict(gpt2.mergeable_ranks)


def test_tokens_already_special_keep_their_id():
    tok = Tokenizer.gpt2().add_special_tokens(["<|a|>"])
    again = tok.add_special_tokens([EOT, "<|b|>", "<|a|>", "<|b|>"])
    assert again.special_tokens == {EOT: 50256, "<|a|>": 50257, "<|b|>": 50258}
    same = tok.add_special_tokens([])
    assert same is not tok and same.special_tokens == tok.special_tokens
    assert same.fingerprint == tok.fingerprint


def test_ids_follow_the_highest_id_of_any_vocabulary():
    tok = small().add_special_tokens(["<|user|>"])
    assert tok.special_tokens == {EOT: 256, "<|user|>": 257}
    assert tok.encode("a<|user|>", allowed_special="all") == [97, 257]


def test_encode_treats_them_like_endoftext(chat):
    text = "hi<|im_start|>x<|endoftext|>"
    assert chat.encode(text) == Tokenizer.gpt2().encode(text)  # text unless allowed
    assert chat.encode(text, allowed_special="all") == [5303, 50257, 87, 50256]
    assert chat.encode(text, allowed_special={"<|im_start|>"}) == [5303, 50257, 87, *chat.encode(EOT)]
    assert chat.encode_batch([text, text], allowed_special="all") == [chat.encode(text, allowed_special="all")] * 2
    assert chat.decode([5303, 50257, 87, 50259]) == "hi<|im_start|>x<|pad|>"
    assert chat.token_bytes(50258) == b"<|im_end|>"
    with pytest.raises(TokenizerError, match="<|nope|>"):
        chat.encode(text, allowed_special={"<|nope|>"})


@pytest.mark.parametrize("tokens, message", [
    ([""], "must be a non-empty string"),
    ([None], "must be a non-empty string"),
    ([b"<|x|>"], "must be a non-empty string"),
    ("<|x|>", "a list of tokens"),
    (["hello"], r"already an ordinary token of gpt2 \(id 31373\)"),
    ([" the"], "already an ordinary token"),
    (["!"], "already an ordinary token"),
    (["<|endoftext|>x"], "begin alike"),
    (["<|endof"], "begin alike"),
    (["<|a|>", "<|a|>b"], "begin alike"),
    (["\ud800"], "lone surrogate"),
])
def test_bad_tokens_are_refused(tokens, message):
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.gpt2().add_special_tokens(tokens)


def test_the_fingerprint_changes_with_the_tokens_and_their_ids():
    gpt2 = Tokenizer.gpt2()
    a = gpt2.add_special_tokens(["<|a|>", "<|b|>"])
    b = gpt2.add_special_tokens(["<|b|>", "<|a|>"])
    assert len({gpt2.fingerprint, a.fingerprint, b.fingerprint}) == 3
    assert a.fingerprint == gpt2.add_special_tokens(["<|a|>", "<|b|>"]).fingerprint
    assert a.with_chat_template(TEMPLATE).fingerprint == a.fingerprint  # the template changes no id


# --------------------------------------------------------------------------------- chat template


def test_chat_template_is_set_on_a_new_tokenizer():
    gpt2 = Tokenizer.gpt2()
    assert gpt2.chat_template is None
    tok = gpt2.with_chat_template(TEMPLATE)
    assert tok.chat_template == TEMPLATE and gpt2.chat_template is None
    assert tok.with_chat_template(None).chat_template is None
    assert Tokenizer({bytes([b]): b for b in range(256)}, chat_template="x").chat_template == "x"
    with pytest.raises(TokenizerError, match="chat_template must be a string"):
        gpt2.with_chat_template(["not", "a", "string"])


def test_tokens_added_after_the_template_keep_it():
    tok = Tokenizer.gpt2().with_chat_template(TEMPLATE).add_special_tokens(["<|a|>"])
    assert tok.chat_template == TEMPLATE


# --------------------------------------------------------------------------------- files


def test_saved_files_follow_transformers_conventions(chat_dir):
    config = json.loads((chat_dir / "tokenizer_config.json").read_text())
    assert config["chat_template"] == TEMPLATE
    assert config["additional_special_tokens"] == EXTRA
    assert {i: t["content"] for i, t in config["added_tokens_decoder"].items()} == {
        "50256": EOT, "50257": "<|im_start|>", "50258": "<|im_end|>", "50259": "<|pad|>"}
    assert all(t["special"] for t in config["added_tokens_decoder"].values())
    special_map = json.loads((chat_dir / "special_tokens_map.json").read_text())
    assert special_map["additional_special_tokens"] == EXTRA and special_map["eos_token"] == EOT


def test_gpt2s_configs_gain_no_keys(gpt2_dir):
    config = json.loads((gpt2_dir / "tokenizer_config.json").read_text())
    assert "chat_template" not in config and "additional_special_tokens" not in config
    assert json.loads((gpt2_dir / "special_tokens_map.json").read_text()) == {
        "bos_token": EOT, "eos_token": EOT, "unk_token": EOT}


def test_saved_then_loaded(chat, chat_dir):
    loaded = Tokenizer.from_pretrained(chat_dir)
    assert loaded.special_tokens == chat.special_tokens
    assert loaded.chat_template == TEMPLATE
    assert loaded.fingerprint == chat.fingerprint
    for text in TEXTS:
        assert loaded.encode(text, allowed_special="all") == chat.encode(text, allowed_special="all")


def test_a_small_vocabulary_round_trips(tmp_path):
    tok = small().add_special_tokens(["<|user|>", "<|bot|>"]).with_chat_template("é\n{{ x }}")
    tok.save_pretrained(tmp_path)
    loaded = Tokenizer.from_pretrained(tmp_path)
    assert loaded.special_tokens == tok.special_tokens and loaded.chat_template == "é\n{{ x }}"
    assert loaded.fingerprint == tok.fingerprint


def test_tokens_listed_only_in_added_tokens_decoder_load(chat, chat_dir, tmp_path):
    # transformers' slow tokenizers write added tokens to tokenizer_config.json, not vocab.json.
    for name in ("merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / name).write_bytes((chat_dir / name).read_bytes())
    vocab = json.loads((chat_dir / "vocab.json").read_text())
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for t, i in vocab.items() if t not in EXTRA}))
    loaded = Tokenizer.from_pretrained(tmp_path)
    assert loaded.special_tokens == chat.special_tokens and loaded.fingerprint == chat.fingerprint


def _edit_config(chat_dir, tmp_path, edit):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((chat_dir / name).read_bytes())
    config = json.loads((chat_dir / "tokenizer_config.json").read_text())
    edit(config)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["added_tokens_decoder"]["50257"].update(special=False), "not special"),
    (lambda c: c["added_tokens_decoder"].update({"50300": {"content": "<|pad|>", "special": True}}),
     "'<|pad|>' has id 50300 there but 50259 in vocab.json"),
    (lambda c: c["added_tokens_decoder"].update({"x": {"content": "<|q|>", "special": True}}), "not an id"),
    (lambda c: c["added_tokens_decoder"].update({"50400": {"special": True}}), "not an id"),
    (lambda c: c["added_tokens_decoder"].update({"1": {"content": "<|q|>", "special": True}}),
     "shares its id with a mergeable token"),
    (lambda c: c.update(chat_template=[{"name": "default", "template": "x"}]), "chat_template must be"),
    (lambda c: c.update(added_tokens_decoder=["<|q|>"]), "must map ids to tokens"),
])
def test_inconsistent_configs_are_refused(chat_dir, tmp_path, edit, message):
    _edit_config(chat_dir, tmp_path, edit)
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.from_pretrained(tmp_path)


def test_a_config_that_is_not_json_is_refused(chat_dir, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((chat_dir / name).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text("{")
    with pytest.raises(TokenizerError, match="tokenizer_config.json: not valid JSON"):
        Tokenizer.from_pretrained(tmp_path)


def test_cli_encode_uses_the_saved_tokens(chat_dir, capsys):
    assert main(["tokenizer", "encode", "<|im_start|>hi<|pad|>", "--tokenizer", str(chat_dir),
                 "--allow-special"]) == 0
    assert capsys.readouterr().out.split() == ["50257", "5303", "50259"]


# --------------------------------------------------------------------------------- pickling


def test_pickle_keeps_tokens_and_template_and_stays_small(chat):
    data = pickle.dumps(chat)
    assert len(data) < 2000  # GPT-2's ranks travel as a reference to the bundled file
    again = pickle.loads(data)
    assert again.special_tokens == chat.special_tokens and again.chat_template == TEMPLATE
    assert again.fingerprint == chat.fingerprint and again.name == "gpt2"
    assert again.mergeable_ranks == chat.mergeable_ranks
    plain = pickle.loads(pickle.dumps(Tokenizer.gpt2().with_chat_template(TEMPLATE)))
    assert plain.chat_template == TEMPLATE and plain.encoding is Tokenizer.gpt2().encoding
    custom = small().add_special_tokens(["<|x|>"]).with_chat_template("t")
    again = pickle.loads(pickle.dumps(custom))
    assert again.special_tokens == custom.special_tokens and again.chat_template == "t"


# --------------------------------------------------------------------------------- transformers


@pytest.mark.parametrize("text", TEXTS)
def test_transformers_gives_the_same_ids(chat, hf_chat, text):
    assert len(hf_chat) == len(chat) == 50260
    assert hf_chat.encode(text) == chat.encode(text, allowed_special="all")


def test_transformers_sees_the_chat_template(hf_chat):
    assert hf_chat.chat_template == TEMPLATE


def test_transformers_sees_what_it_makes_itself(chat_dir, gpt2_dir):
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(gpt2_dir)
    own.add_special_tokens({"additional_special_tokens": EXTRA})
    own.chat_template = TEMPLATE
    ours = AutoTokenizer.from_pretrained(chat_dir)
    assert len(ours) == len(own)
    assert {i: repr(t) for i, t in ours.added_tokens_decoder.items()} == {
        i: repr(t) for i, t in own.added_tokens_decoder.items()}
    assert ours.all_special_tokens == own.all_special_tokens
    assert ours.all_special_ids == own.all_special_ids
    assert ours.chat_template == own.chat_template
    for text in TEXTS:
        assert ours.encode(text) == own.encode(text)
        assert ours.decode(ours.encode(text), skip_special_tokens=True) == own.decode(
            own.encode(text), skip_special_tokens=True)


def test_transformers_loads_a_small_vocabulary_with_tokens(tmp_path):
    from transformers import AutoTokenizer

    tok = small().add_special_tokens(["<|user|>"]).with_chat_template("{{ 1 }}")
    tok.save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    text = "hi <|user|> there<|endoftext|>"
    assert len(hf) == len(tok) == 258 and hf.chat_template == "{{ 1 }}"
    assert hf.encode(text) == tok.encode(text, allowed_special="all")


_pieces = st.one_of(st.sampled_from([*EXTRA, EOT, " ", "\n", "<|", "|>"]), st.text(max_size=12))


@settings(max_examples=60, deadline=None)
@given(st.lists(_pieces, max_size=12).map("".join))
def test_transformers_agrees_on_any_mix_of_text_and_tokens(chat, hf_auto, text):
    assert hf_auto.encode(text) == chat.encode(text, allowed_special="all")
