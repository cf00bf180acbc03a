"""OpenAI's GPT-2 byte-level BPE tokenizer, exact and offline, and training new vocabularies.

Design
------
Encoding and decoding run in tiktoken (Rust): a `Tokenizer` is a thin wrapper around one
`tiktoken.Encoding` built from *mergeable ranks* (token bytes -> id) and GPT-2's split regex,
so it is as fast as tiktoken itself and never reaches for the network
(`tiktoken.get_encoding("gpt2")` would download its files; we never call it).

GPT-2's 50,256 ranks ship with the package (assets/gpt2.tiktoken, sha256 below); the file is
parsed once per process (lru_cache) and `<|endoftext|>` = 50256 is added as the one special token.

Files on disk use the formats others read:
  * HF's `vocab.json` + `merges.txt` (what `save_pretrained` writes, with `tokenizer_config.json`
    and `special_tokens_map.json`, so `transformers.AutoTokenizer` loads the directory);
  * OpenAI's `encoder.json` + `vocab.bpe` (the same two formats under other names);
  * a tiktoken `*.tiktoken` ranks file.
Vocabulary strings in the JSON/merges files are bytes spelled with OpenAI's byte-to-unicode
table (`bytes_to_unicode`, from GPT-2's encoder.py). For GPT-2 the files we write equal OpenAI's
encoder.json / vocab.bpe byte for byte.

tiktoken and merges-based BPE (HF, OpenAI's encoder.py) agree only when the rank of every
merged token is its merge's position in the merge list: tiktoken merges the adjacent pair whose
*concatenation* has the lowest rank, the others the pair that comes first in merges.txt. The
loader checks that ids follow merge order, and `train` produces vocabularies that do
(256 byte tokens, then one token per merge in order, then `<|endoftext|>`).
"""

from __future__ import annotations

import base64
import codecs
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, AbstractSet, Callable, Literal, Union

import tiktoken

from .errors import TokenIdError, TokenizerError
from .fsutil import atomic_write_files
from .validate import is_int

if TYPE_CHECKING:
    from .data.sources import SourceStats

__all__ = ["Tokenizer", "StreamDecoder", "TokenIdError", "GPT2_PATTERN", "EOT", "bytes_to_unicode",
           "MIN_VOCAB_SIZE", "MAX_VOCAB_SIZE", "MAX_MIN_FREQUENCY", "check_training_numbers"]

# GPT-2's pre-tokenizer regex in tiktoken's syntax (= tiktoken_ext.openai_public.r50k_pat_str).
GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
EOT = "<|endoftext|>"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
_BUNDLED = "gpt2.tiktoken"
_MERGES_HEADER = "#version: 0.2"

# Training limits. The least vocabulary is the 256 byte tokens + <|endoftext|>. The most is far
# above any published BPE (GPT-4o's has ~200k ids) yet small enough for HF's trainer, which
# allocates per id up front and aborts the process on absurd sizes; datasets store ids as uint16
# up to 65,536 ids, uint32 above.
MIN_VOCAB_SIZE = 257
MAX_VOCAB_SIZE = 1 << 20
MAX_MIN_FREQUENCY = 1_000_000_000


class _NoText(TokenizerError):
    """Training got no text at all."""


def check_training_numbers(vocab_size: int, min_frequency: int) -> None:
    """TokenizerError unless vocab_size and min_frequency are integers in their ranges."""
    for what, value, low, high in (("vocab_size", vocab_size, MIN_VOCAB_SIZE, MAX_VOCAB_SIZE),
                                   ("min_frequency", min_frequency, 1, MAX_MIN_FREQUENCY)):
        if not is_int(value) or not low <= value <= high:
            extra = f" (256 bytes + {EOT})" if what == "vocab_size" else ""
            raise TokenizerError(f"{what} must be an integer in [{low:,}, {high:,}]{extra}, got {value!r}")

AllowedSpecial = Union[Literal["all"], AbstractSet[str]]
PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------------------------
# Byte-level spelling of tokens (OpenAI's encoder.py)


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI's byte -> printable character table: printable Latin-1 bytes stand for
    themselves, the other 68 bytes get the characters from U+0100 on (space -> 'Ġ').
    Its order is that of the 256 byte tokens' ids in GPT-2."""
    return dict(_byte_to_char())


@functools.lru_cache(maxsize=None)
def _byte_to_char() -> dict[int, str]:
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=None)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in _byte_to_char().items()}


def _spell(token: bytes) -> str:
    table = _byte_to_char()
    return "".join(table[b] for b in token)


def _unspell(token: str) -> bytes | None:
    """The bytes a byte-level token string stands for; None if it is not byte-level text."""
    table = _unicode_to_bytes()
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return None


# --------------------------------------------------------------------------------------------
# Reading vocabulary files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenizerError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: not UTF-8 text; expected a tokenizer vocabulary file") from None
    except OSError as e:
        raise TokenizerError(f"{path}: cannot read: {e.strerror}") from None


def _parse_tiktoken(path: Path) -> dict[bytes, int]:
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


@functools.lru_cache(maxsize=None)
def _bundled_ranks() -> dict[bytes, int]:
    """GPT-2's ranks, parsed once per process. Callers must not modify the dict."""
    with resources.as_file(resources.files("gpt2") / "assets" / _BUNDLED) as path:
        return _parse_tiktoken(Path(path))


@functools.lru_cache(maxsize=None)
def _bundled_encoding() -> tiktoken.Encoding:
    return tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=_bundled_ranks(), special_tokens={EOT: 50256}
    )


def _parse_vocab(path: Path) -> dict[str, int]:
    try:
        vocab = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise TokenizerError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{path}: expected a JSON object mapping tokens to ids")
    if not all(is_int(i) and i >= 0 for i in vocab.values()):
        raise TokenizerError(f"{path}: token ids must be non-negative integers")
    if len(set(vocab.values())) != len(vocab):
        raise TokenizerError(f"{path}: two tokens share an id; the file is corrupt")
    return vocab


def _parse_merges(path: Path) -> list[tuple[str, str]]:
    merges = []
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        pair = line.split(" ")
        if len(pair) != 2 or not all(pair):
            raise TokenizerError(f"{path}: line {lineno} is not a merge `left right`")
        merges.append((pair[0], pair[1]))
    return merges


def _ranks_from_merges(
    vocab: Mapping[str, int], merges: Iterable[tuple[str, str]], source: str
) -> tuple[dict[bytes, int], dict[str, int]]:
    """Mergeable ranks + special tokens from a byte-level vocab and its merges (as in tiktoken's
    data_gym conversion), checking that tiktoken will reproduce the merges-based BPE.

    Returns (ranks, special tokens). A merge that makes a token an earlier merge already made
    is skipped: tiktoken ranks tokens, not pairs, so only the first can count.
    Vocab entries that no merge makes and that are not single bytes are special tokens.
    """
    ranks: dict[bytes, int] = {}
    for char, byte in _unicode_to_bytes().items():
        if char not in vocab:
            raise TokenizerError(
                f"{source}: lacks the byte token {char!r} (byte {byte}); "
                "not a GPT-2-style byte-level BPE vocabulary"
            )
        ranks[bytes([byte])] = vocab[char]
    last = -1
    for n, (left, right) in enumerate(merges, 1):
        left_b, right_b = _unspell(left), _unspell(right)
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


def _merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
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


def _gpt2_names() -> frozenset[str]:
    """Names that mean GPT-2's vocabulary: the model presets and their hub aliases."""
    from .config import HUB_ALIASES, preset_names

    return frozenset([*preset_names(), *HUB_ALIASES, "distilgpt2", "distilbert/distilgpt2"])


TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


def _write_files(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write `files` (name -> text) into `directory` all or nothing (fsutil.atomic_write_files:
    a reader never sees half a file and a failure leaves the old files). Directories it had to
    create are removed on failure; nothing else in `directory` is touched."""
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


# --------------------------------------------------------------------------------------------


class StreamDecoder:
    """Decodes tokens one at a time for streaming output; never emits half a UTF-8 character
    (a character split across tokens comes out with the token that completes it)."""

    def __init__(self, tokenizer: "Tokenizer") -> None:
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        """The text that `token_id` completes (possibly '')."""
        return self._decoder.decode(self._tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        """Whatever is still held (an unfinished character becomes U+FFFD); then starts afresh."""
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text


class Tokenizer:
    """A byte-level BPE tokenizer (GPT-2's, or one trained with `Tokenizer.train`).

        >>> tok = Tokenizer.from_pretrained("gpt2")
        >>> tok.encode("Hello world")
        [15496, 995]
        >>> tok.decode([15496, 995])
        'Hello world'
    """

    def __init__(
        self,
        mergeable_ranks: Mapping[bytes, int],
        special_tokens: Mapping[str, int] | None = None,
        *,
        name: str = "custom",
    ) -> None:
        """`mergeable_ranks`: token bytes -> id, ids in merge order; `special_tokens`: text -> id,
        must hold `<|endoftext|>` (default: just that, right after the last rank)."""
        ranks = dict(mergeable_ranks)
        if special_tokens is None:
            special_tokens = {EOT: max(ranks.values(), default=-1) + 1}
        try:
            encoding = tiktoken.Encoding(
                name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=dict(special_tokens)
            )
        except (ValueError, AssertionError) as e:
            raise TokenizerError(f"{name}: not a valid vocabulary: {e}") from None
        if len(set(ranks.values()) | set(special_tokens.values())) != len(ranks) + len(special_tokens):
            raise TokenizerError(f"{name}: a special token shares its id with a mergeable token")
        self._init(encoding, ranks, dict(special_tokens), name)

    def _init(self, encoding: tiktoken.Encoding, ranks: dict[bytes, int],
              specials: dict[str, int], name: str) -> None:
        if EOT not in specials:
            raise TokenizerError(f"{name}: the vocabulary has no {EOT} token")
        self._enc = encoding
        self._ranks = ranks
        self._specials = specials
        self._name = name
        self._eot = specials[EOT]
        self._special_set = frozenset(specials)

    @classmethod
    def _from_encoding(cls, encoding: tiktoken.Encoding, ranks: dict[bytes, int],
                       specials: dict[str, int], name: str) -> "Tokenizer":
        self = cls.__new__(cls)
        self._init(encoding, ranks, specials, name)
        return self

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_pretrained(cls, name_or_dir: PathLike = "gpt2") -> "Tokenizer":
        """GPT-2's tokenizer by name ("gpt2", "openai-community/gpt2", any GPT-2 size: they share
        one vocabulary; bundled, offline), or one read from a directory holding `vocab.json` +
        `merges.txt`, `encoder.json` + `vocab.bpe`, or a `*.tiktoken` file (or that file itself).
        A directory with tokenizer files wins over a name. A *.tiktoken file holds no special
        tokens: `<|endoftext|>` gets the id after the last rank, as in GPT-2."""
        path = Path(name_or_dir).expanduser()
        if path.is_dir() and _tokenizer_files(path):
            return cls._from_dir(path)
        if str(name_or_dir) in _gpt2_names():
            return cls.gpt2()
        if path.is_dir():
            raise TokenizerError(
                f"{path}: no tokenizer files (vocab.json + merges.txt, encoder.json + vocab.bpe, "
                "or *.tiktoken)"
            )
        if path.is_file() and path.suffix == ".tiktoken":
            return cls(_parse_tiktoken(path), name=path.stem)
        if path.is_file():
            raise TokenizerError(f"{path}: a file, not a tokenizer directory (give the directory holding "
                                 "vocab.json + merges.txt, or a *.tiktoken file)")
        raise TokenizerError(
            f"{name_or_dir}: not a tokenizer directory nor a GPT-2 name (e.g. gpt2, "
            "openai-community/gpt2); nothing is downloaded"
        )

    @classmethod
    def gpt2(cls) -> "Tokenizer":
        """GPT-2's tokenizer from the bundled ranks (instant after the first call)."""
        return cls._from_encoding(_bundled_encoding(), _bundled_ranks(), {EOT: 50256}, "gpt2")

    @classmethod
    def _from_dir(cls, path: Path) -> "Tokenizer":
        found = _tokenizer_files(path)
        if found[0].suffix == ".tiktoken":
            if len(found) > 1:
                raise TokenizerError(f"{path}: several *.tiktoken files; pass one of them")
            return cls(_parse_tiktoken(found[0]), name=path.resolve().name)
        vocab_path, merges_path = found
        vocab = _parse_vocab(vocab_path)
        merges = _parse_merges(merges_path)
        source = f"{vocab_path} + {merges_path.name}"
        ranks, specials = _ranks_from_merges(vocab, merges, source)
        if EOT not in specials:
            raise TokenizerError(f"{vocab_path}: has no {EOT} token")
        return cls(ranks, specials, name=path.resolve().name)

    def save_pretrained(self, directory: PathLike, *, model_max_length: int = 1024) -> list[Path]:
        """Write `vocab.json`, `merges.txt`, `tokenizer_config.json` and `special_tokens_map.json`
        into `directory` (created if need be; other files there are left alone), all or nothing.
        `transformers.AutoTokenizer.from_pretrained(directory)` loads them. Returns the paths."""
        directory = Path(directory).expanduser()
        spelled = {i: _spell(token) for token, i in self._ranks.items()}
        spelled.update({i: token for token, i in self._specials.items()})
        vocab = {spelled[i]: i for i in sorted(spelled)}
        merges = "".join(f"{_spell(a)} {_spell(b)}\n" for a, b in self.merges)
        special = {
            str(i): {"content": t, "lstrip": False, "normalized": True, "rstrip": False,
                     "single_word": False, "special": True}
            for t, i in sorted(self._specials.items(), key=lambda item: item[1])
        }
        roles = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
        config = {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": special,
            **roles,
            "clean_up_tokenization_spaces": False,
            "errors": "replace",
            "model_max_length": model_max_length,
            "pad_token": None,
            "tokenizer_class": "GPT2Tokenizer",
        }
        texts = [
            # json.dumps' defaults: this reproduces OpenAI's encoder.json exactly.
            json.dumps(vocab),
            f"{_MERGES_HEADER}\n{merges}",
            json.dumps(config, indent=2) + "\n",
            json.dumps(roles, indent=2) + "\n",
        ]
        try:
            return _write_files(directory, dict(zip(TOKENIZER_FILES, texts)))
        except OSError as e:
            raise TokenizerError(f"{e.filename or directory}: cannot write: {e.strerror}") from None

    # ---------------------------------------------------------------- training

    @classmethod
    def train(
        cls,
        inputs: Iterable[PathLike] | PathLike,
        vocab_size: int,
        *,
        min_frequency: int = 2,
        text_field: str = "text",
        name: str = "trained",
        show_progress: bool = False,
        stats: "SourceStats | None" = None,
        progress: "Callable[[SourceStats, int, bool], None] | None" = None,
    ) -> "Tokenizer":
        """Train a byte-level BPE vocabulary of at most `vocab_size` ids (256 bytes + merges +
        `<|endoftext|>` as the last id) with HF `tokenizers`' BpeTrainer and GPT-2's pre-tokenizer.

        `inputs` are read as `gpt2 prepare` reads them (gpt2.data.sources): text files,
        directories (recursively), `.jsonl` (plain, .gz, .xz, .zst; the text in `text_field`),
        Parquet, `hf:NAME`. Undecodable bytes become U+FFFD and unusable lines are skipped; both
        are counted in `stats` (a SourceStats, if given). `progress(stats, characters, finished)` is
        called after each piece of text the trainer takes (about 16K characters; `characters` so
        far) and once with `finished=True` when all are read (the merges come next). Fewer ids result when the text runs out of pairs seen `min_frequency` times.
        Raises TokenizerError or DataError (both GPT2Error). Save it with `save_pretrained`."""
        from .data.sources import ReadOptions, SourceStats, iter_documents

        check_training_numbers(vocab_size, min_frequency)
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        inputs = [_expand_user(i) for i in inputs]
        if not inputs:
            raise TokenizerError("train: no inputs given (text files, directories, .jsonl, Parquet)")
        stats = stats if stats is not None else SourceStats()
        documents = iter_documents(inputs, ReadOptions(text_field=text_field), stats)

        def texts() -> Iterator[str]:
            characters = 0
            for doc in documents:
                for piece in _pieces(doc.text):
                    yield piece
                    characters += len(piece)
                    if progress is not None:
                        progress(stats, characters, False)
            if progress is not None:
                progress(stats, characters, True)

        try:
            return cls.train_from_texts(texts(), vocab_size, min_frequency=min_frequency, name=name,
                                        show_progress=show_progress)
        except _NoText:
            raise TokenizerError(f"no text to train on in {', '.join(inputs[:3])}"
                                 f"{' ...' if len(inputs) > 3 else ''}{_why_no_text(stats)}") from None

    @classmethod
    def train_from_texts(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        name: str = "trained",
        show_progress: bool = False,
    ) -> "Tokenizer":
        """`train` on strings (each one a separate sequence: no token spans two of them)."""
        try:
            from tokenizers import Tokenizer as HFTokenizer
            from tokenizers import models, pre_tokenizers, trainers
        except ImportError:
            raise TokenizerError(
                "training a vocabulary needs the `tokenizers` package: pip install tokenizers"
            ) from None
        check_training_numbers(vocab_size, min_frequency)
        seen = [False]

        def counted() -> Iterator[str]:
            for text in texts:
                if text:
                    seen[0] = True
                    yield text

        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - 1,  # the last id is <|endoftext|>
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=show_progress,
        )
        hf.train_from_iterator(counted(), trainer)
        if not seen[0]:  # HF would return the 256 bytes alone: a useless vocabulary
            raise _NoText("no text to train on")
        model = json.loads(hf.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        ranks, specials = _ranks_from_merges(model["vocab"], merges, "trained vocabulary")
        if specials:  # cannot happen with an empty special_tokens list; guard the invariant
            raise TokenizerError(f"trained vocabulary: unexpected tokens {sorted(specials)[:3]}")
        # HF gives a new token the next free id, so ids are dense and in merge order already.
        return cls(ranks, {EOT: len(ranks)}, name=name)

    # ---------------------------------------------------------------- encoding and decoding

    def encode(self, text: str, *, allowed_special: AllowedSpecial = frozenset()) -> list[int]:
        """Token ids of `text`. Special-token text such as "<|endoftext|>" is ordinary text
        unless listed in `allowed_special` (or "all"), in which case it becomes its one id."""
        if not allowed_special:
            return self._enc.encode_ordinary(text)
        return self._enc.encode(
            text, allowed_special=self._allowed(allowed_special), disallowed_special=()
        )

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        allowed_special: AllowedSpecial = frozenset(),
        num_threads: int | None = None,
    ) -> list[list[int]]:
        """`encode` of each text, in parallel threads (tiktoken releases the GIL)."""
        threads = num_threads or os.cpu_count() or 1
        if not allowed_special:
            return self._enc.encode_ordinary_batch(list(texts), num_threads=threads)
        return self._enc.encode_batch(
            list(texts), num_threads=threads,
            allowed_special=self._allowed(allowed_special), disallowed_special=(),
        )

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of the tokens `ids` (any iterable of ints: a list, an array, a tensor)."""
        if not isinstance(ids, (list, tuple)):
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        try:
            return self._enc.decode_bytes(ids)
        except (KeyError, OverflowError, TypeError, ValueError):
            raise self._bad_ids(ids) from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; bytes that are not valid UTF-8 (e.g. a cut-off character) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token."""
        try:
            return self._enc.decode_single_token_bytes(token_id)
        except (KeyError, OverflowError, TypeError, ValueError):
            raise self._bad_ids([token_id]) from None

    def stream_decoder(self) -> StreamDecoder:
        """A decoder that takes tokens one by one and returns only complete characters."""
        return StreamDecoder(self)

    # ---------------------------------------------------------------- properties

    @property
    def name(self) -> str:
        return self._name

    @property
    def eot_token(self) -> int:
        """The id of <|endoftext|> (50256 for GPT-2)."""
        return self._eot

    @property
    def vocab_size(self) -> int:
        """Number of ids (highest id + 1): 50257 for GPT-2."""
        return self._enc.n_vocab

    def __len__(self) -> int:
        return self._enc.n_vocab

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._specials)

    @property
    def mergeable_ranks(self) -> Mapping[bytes, int]:
        """Token bytes -> id for every non-special token (read-only view)."""
        return MappingProxyType(self._ranks)

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The underlying tiktoken Encoding."""
        return self._enc

    @functools.cached_property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """The merges in priority order (the content of merges.txt, as bytes)."""
        return _merges_from_ranks(self._ranks)

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 (hex) identifying the vocabulary: the ranks in tiktoken's file format, then
        one `special <base64 text> <id>` line per special token, by id. Equal for equal
        vocabularies whatever their file format or name."""
        if self._ranks is _bundled_ranks() and self._specials == {EOT: 50256}:
            return _bundled_fingerprint()
        return _fingerprint(self._ranks, self._specials)

    def __repr__(self) -> str:
        return f"Tokenizer(name={self._name!r}, vocab_size={self.vocab_size})"

    def __reduce__(self):
        # GPT-2's tokenizer pickles as its name (cheap to send to worker processes).
        if self._ranks is _bundled_ranks() and self._name == "gpt2":
            return (Tokenizer.gpt2, ())
        return (_rebuild, (self._ranks, self._specials, self._name))

    # ---------------------------------------------------------------- helpers

    def _allowed(self, allowed_special: AllowedSpecial) -> AbstractSet[str] | Literal["all"]:
        if allowed_special == "all":
            return "all"
        if isinstance(allowed_special, str):
            raise TokenizerError(
                f"allowed_special must be 'all' or a set of special tokens, not {allowed_special!r}"
            )
        allowed = frozenset(allowed_special)
        unknown = allowed - self._special_set
        if unknown:
            raise TokenizerError(
                f"allowed_special: {sorted(unknown)[0]!r} is not a special token of {self._name} "
                f"({', '.join(sorted(self._special_set))})"
            )
        return allowed

    def _bad_ids(self, ids: object) -> TokenIdError:
        """The error for ids that tiktoken rejected, naming the first bad one and the vocabulary size."""
        try:
            items = list(ids)  # type: ignore[call-overload]
        except TypeError:
            return TokenIdError(f"token ids must be a sequence of integers, got {type(ids).__name__}")
        valid = set(self._ranks.values()) | set(self._specials.values())
        for x in items:
            if not is_int(x):
                return TokenIdError(f"token id {x!r} is not an integer")
            if x not in valid:
                return TokenIdError(
                    f"token id {x} is not in the vocabulary of {self._name} "
                    f"({self.vocab_size} ids: 0..{self.vocab_size - 1})"
                )
        return TokenIdError(f"token ids {items[:8]!r}...: cannot decode")


def _fingerprint(ranks: Mapping[bytes, int], specials: Mapping[str, int]) -> str:
    lines = [base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda x: x[1])]
    lines += [b"special " + base64.b64encode(t.encode()) + b" %d\n" % i
              for t, i in sorted(specials.items(), key=lambda x: x[1])]
    return hashlib.sha256(b"".join(lines)).hexdigest()


@functools.lru_cache(maxsize=None)
def _bundled_fingerprint() -> str:
    return _fingerprint(_bundled_ranks(), {EOT: 50256})


def _rebuild(ranks: dict[bytes, int], specials: dict[str, int], name: str) -> Tokenizer:
    return Tokenizer(ranks, specials, name=name)


def _tokenizer_files(directory: Path) -> list[Path]:
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


# Training feeds HF long documents in pieces cut only where a cut cannot change how GPT-2's regex
# splits the text: (a) before the last character of a run of 2+ whitespace characters followed by
# a non-space (the whole text splits there too: `\s+(?!\S)` leaves the last one to the next
# piece), and (b) after a lone newline between non-spaces ("x\nY" -> "x", "\n", "Y").
# Only ASCII characters are looked at, on which Python's and tiktoken's `\s` agree.
_CUT = re.compile(r"(?<=[ \t\r\n])(?=[ \t\r\n][!-~])|(?<=[!-~]\n)(?=[!-~])")
# HF pulls 256 pieces at a time, so small pieces keep what it has taken (the progress callback's
# count) within a few MB of what it has counted.
_CHUNK_CHARS = 1 << 14


def _pieces(text: str, chunk_chars: int = _CHUNK_CHARS) -> Iterator[str]:
    """`text`, exactly, in pieces of about `chunk_chars` characters or more (none if empty)."""
    start = 0
    while len(text) - start > chunk_chars:
        cut = _CUT.search(text, start + chunk_chars)
        if cut is None:
            break
        yield text[start:cut.end()]
        start = cut.end()
    if start < len(text):
        yield text[start:]


def _expand_user(item: PathLike) -> str:
    s = os.fspath(item)
    return s if s.startswith("hf:") else os.fspath(Path(s).expanduser())


def _why_no_text(stats: "SourceStats") -> str:
    """What the readers met, for the error when nothing could be trained on."""
    if stats.examples:
        return f": {stats.examples[0]}"
    return f" ({stats.files} files, {stats.documents} documents)"
