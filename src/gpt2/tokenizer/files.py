"""Tokenizer files: reading each format, ranks <-> merges, and writing a directory that
`transformers.AutoTokenizer` loads.

Formats read: a tiktoken `*.tiktoken` ranks file; HF's `vocab.json` + `merges.txt` (OpenAI's
`encoder.json` + `vocab.bpe` are the same two formats under other names); and from
`tokenizer_config.json` the special tokens in `added_tokens_decoder` and the `chat_template`.
Formats written: `vocab.json`, `merges.txt`, `tokenizer_config.json`, `special_tokens_map.json`,
with transformers' own conventions (those of `add_special_tokens` + `save_pretrained`).

tiktoken and merges-based BPE (HF, OpenAI's encoder.py) agree only when the rank of every
merged token is its merge's position in the merge list: tiktoken merges the adjacent pair whose
*concatenation* has the lowest rank, the others the pair that comes first in merges.txt.
`ranks_from_merges` checks that ids follow merge order.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Union

from ..errors import TokenizerError
from ..fsutil import atomic_write_files
from ..validate import is_int
from .byte_table import char_to_byte, spell, unspell

PathLike = Union[str, os.PathLike]
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
_MERGES_HEADER = "#version: 0.2"
_ID = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------------------------
# Reading


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenizerError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: not UTF-8 text; expected a tokenizer vocabulary file") from None
    except OSError as e:
        raise TokenizerError(f"{path}: cannot read: {e.strerror}") from None


def _read_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise TokenizerError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def parse_tiktoken(path: Path) -> dict[bytes, int]:
    """A tiktoken ranks file: one `base64(token) rank` per line."""
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:  # wrong field count, bad base64 (binascii.Error) or rank
            raise TokenizerError(
                f"{path}: line {lineno} is not `base64-token rank`; not a tiktoken ranks file"
            ) from None
    if not ranks:
        raise TokenizerError(f"{path}: empty; expected tiktoken ranks (`base64-token rank` lines)")
    if len(set(ranks.values())) != len(ranks):
        raise TokenizerError(f"{path}: two tokens share a rank; the file is corrupt")
    return ranks


def parse_vocab(path: Path) -> dict[str, int]:
    vocab = _read_json(path)
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{path}: expected a JSON object mapping tokens to ids")
    if not all(is_int(i) and i >= 0 for i in vocab.values()):
        raise TokenizerError(f"{path}: token ids must be non-negative integers")
    if len(set(vocab.values())) != len(vocab):
        raise TokenizerError(f"{path}: two tokens share an id; the file is corrupt")
    return vocab


def parse_merges(path: Path) -> list[tuple[str, str]]:
    merges = []
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        pair = line.split(" ")
        if len(pair) != 2 or not all(pair):
            raise TokenizerError(f"{path}: line {lineno} is not a merge `left right`")
        merges.append((pair[0], pair[1]))
    return merges


def read_tokenizer_config(directory: Path) -> tuple[dict[str, int], str | None]:
    """(special tokens, chat template) from `directory`/tokenizer_config.json: the tokens of its
    `added_tokens_decoder` (text -> id) and its `chat_template`; ({}, None) without the file."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return {}, None
    config = _read_json(path)
    if not isinstance(config, dict):
        raise TokenizerError(f"{path}: expected a JSON object")
    template = config.get("chat_template")
    if template is not None and not isinstance(template, str):
        raise TokenizerError(f"{path}: chat_template must be one template (a string); "
                             "a list of named templates is not supported")
    decoder = config.get("added_tokens_decoder") or {}
    if not isinstance(decoder, dict):
        raise TokenizerError(f"{path}: added_tokens_decoder must map ids to tokens")
    added: dict[str, int] = {}
    for key, entry in decoder.items():
        content = entry.get("content") if isinstance(entry, dict) else None
        if not _ID.fullmatch(key) or not isinstance(content, str) or not content:
            raise TokenizerError(f"{path}: added_tokens_decoder entry {key!r} is not an id with a "
                                 "token's `content`")
        # tiktoken matches a special token only where the caller allows it; an added token that
        # is not special would be matched everywhere, which it cannot do.
        if entry.get("special") is not True:
            raise TokenizerError(f"{path}: added token {content!r} (id {key}) is not special; "
                                 "only special added tokens are supported")
        added[content] = int(key)
    return added, template


def find_tokenizer_files(directory: Path) -> list[Path]:
    """The tokenizer files in `directory`, in order of preference: HF's pair, OpenAI's pair,
    else the *.tiktoken files. A pair with one half missing is an error naming it."""
    for first, second in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
        a, b = directory / first, directory / second
        if a.is_file() and b.is_file():
            return [a, b]
        if a.is_file() != b.is_file():
            missing = b if a.is_file() else a
            raise TokenizerError(f"{missing}: missing (it goes with {(a if b == missing else b).name})")
    return sorted(directory.glob("*.tiktoken"))


# --------------------------------------------------------------------------------------------
# Ranks <-> merges


def ranks_from_merges(
    vocab: Mapping[str, int], merges: Iterable[tuple[str, str]], source: str
) -> tuple[dict[bytes, int], dict[str, int]]:
    """Mergeable ranks + special tokens from a byte-level vocab and its merges (as in tiktoken's
    data_gym conversion), checking that tiktoken will reproduce the merges-based BPE.

    Returns (ranks, special tokens). A merge that makes a token an earlier merge already made
    is skipped: tiktoken ranks tokens, not pairs, so only the first can count.
    Vocab entries that no merge makes and that are not single bytes are special tokens.
    """
    ranks: dict[bytes, int] = {}
    for char, byte in char_to_byte().items():
        if char not in vocab:
            raise TokenizerError(
                f"{source}: lacks the byte token {char!r} (byte {byte}); "
                "not a GPT-2-style byte-level BPE vocabulary"
            )
        ranks[bytes([byte])] = vocab[char]
    last = -1
    for n, (left, right) in enumerate(merges, 1):
        left_b, right_b = unspell(left), unspell(right)
        if left_b not in ranks or right_b not in ranks:
            raise TokenizerError(
                f"{source}: merge {n} `{left} {right}` uses a token that no earlier merge makes"
            )
        token = left_b + right_b
        if token in ranks:
            continue
        rank = vocab.get(left + right)
        if rank is None:
            raise TokenizerError(f"{source}: merge {n} `{left} {right}` makes a token the vocab lacks")
        if rank <= last:
            raise TokenizerError(
                f"{source}: token ids do not follow merge order (merge {n} `{left} {right}` has "
                f"id {rank}, after id {last}); tiktoken cannot reproduce this BPE"
            )
        last = rank
        ranks[token] = rank
    ids = set(ranks.values())
    specials = {token: i for token, i in vocab.items() if i not in ids}
    return ranks, specials


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Recover the merge list from ranks: a token's merge is the last step of BPE on its own
    bytes using only lower ranks (as in tiktoken's and HF's converters)."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_rank, best_i = rank, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1], rank)
                if r < best_rank:
                    best_rank, best_i = r, i
            if best_i < 0:
                break
            parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        if len(parts) != 2:
            raise TokenizerError(
                f"token {token!r} (rank {rank}) cannot be made by merging two lower-ranked "
                "tokens; these ranks are not a BPE vocabulary"
            )
        merges.append((parts[0], parts[1]))
    return merges


# --------------------------------------------------------------------------------------------
# Writing


def hf_files(
    ranks: Mapping[bytes, int],
    specials: Mapping[str, int],
    merges: Iterable[tuple[bytes, bytes]],
    *,
    eot: str,
    model_max_length: int,
    chat_template: str | None,
) -> dict[str, str]:
    """The texts of TOKENIZER_FILES (name -> text). `eot` is the bos/eos/unk token; the other
    special tokens are listed as transformers lists tokens added by `add_special_tokens`."""
    spelled = {i: spell(token) for token, i in ranks.items()}
    spelled.update({i: token for token, i in specials.items()})
    vocab = {spelled[i]: i for i in sorted(spelled)}
    merges_text = "".join(f"{spell(a)} {spell(b)}\n" for a, b in merges)
    by_id = sorted(specials.items(), key=lambda item: item[1])
    decoder = {
        # GPT-2's own file marks <|endoftext|> normalized, add_special_tokens the others not
        # (no effect: GPT-2 has no normalizer); both as transformers writes them.
        str(i): {"content": t, "lstrip": False, "normalized": t == eot, "rstrip": False,
                 "single_word": False, "special": True}
        for t, i in by_id
    }
    extra = {"additional_special_tokens": [t for t, _ in by_id if t != eot]}
    if not extra["additional_special_tokens"]:
        extra = {}  # GPT-2's files stay as they have always been
    roles = {"bos_token": eot, "eos_token": eot, "unk_token": eot}
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        **extra,
        **roles,
        **({} if chat_template is None else {"chat_template": chat_template}),
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": None,
        "tokenizer_class": "GPT2Tokenizer",
    }
    texts = [
        # json.dumps' defaults: this reproduces OpenAI's encoder.json exactly.
        json.dumps(vocab),
        f"{_MERGES_HEADER}\n{merges_text}",
        json.dumps(config, indent=2) + "\n",
        json.dumps({**extra, **roles}, indent=2) + "\n",
    ]
    return dict(zip(TOKENIZER_FILES, texts))


def write_files(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write `files` (name -> text) into `directory` all or nothing (fsutil.atomic_write_files:
    a reader never sees half a file and a failure leaves the old files). Directories it had to
    create are removed on failure; nothing else in `directory` is touched. Returns the paths."""
    try:
        created = _make_dirs(directory)
        try:
            return atomic_write_files(directory, {name: text.encode("utf-8") for name, text in files.items()})
        except BaseException:
            for d in reversed(created):
                try:
                    d.rmdir()
                except OSError:
                    pass
            raise
    except OSError as e:
        raise TokenizerError(f"{e.filename or directory}: cannot write: {e.strerror}") from None


def _make_dirs(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created, outermost first."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    created = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
    except BaseException:
        for d in reversed(created):
            d.rmdir()
        raise
    return created
