"""The Tokenizer: a thin wrapper around one `tiktoken.Encoding` built from mergeable ranks
(token bytes -> id), special tokens and GPT-2's split regex, so encoding and decoding run at
tiktoken's speed and never reach for the network. Also the streaming decoder and the
vocabulary's fingerprint."""

from __future__ import annotations

import base64
import codecs
import functools
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, AbstractSet, Callable, Literal, Union

import tiktoken

from ..errors import TokenIdError, TokenizerError
from ..validate import is_int
from .files import (PathLike, find_tokenizer_files, hf_files, merges_from_ranks, parse_merges,
                    parse_tiktoken, parse_vocab, ranks_from_merges, read_tokenizer_config, write_files)
from .gpt2_vocab import EOT, GPT2_PATTERN, GPT2_SPECIALS, bundled_encoding, bundled_ranks, gpt2_names
from .training import ranks_from_inputs, ranks_from_texts

if TYPE_CHECKING:
    from ..data.sources import SourceStats

AllowedSpecial = Union[Literal["all"], AbstractSet[str]]


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
        chat_template: str | None = None,
    ) -> None:
        """`mergeable_ranks`: token bytes -> id, ids in merge order; `special_tokens`: text -> id,
        must hold `<|endoftext|>` (default: just that, right after the last rank);
        `chat_template`: the Jinja template that fine-tuning and transformers render chats with."""
        ranks = dict(mergeable_ranks)
        if special_tokens is None:
            special_tokens = {EOT: max(ranks.values(), default=-1) + 1}
        encoding = _encoding(name, ranks, dict(special_tokens))
        self._init(encoding, ranks, dict(special_tokens), name, chat_template)

    def _init(self, encoding: tiktoken.Encoding, ranks: dict[bytes, int],
              specials: dict[str, int], name: str, chat_template: str | None) -> None:
        if EOT not in specials:
            raise TokenizerError(f"{name}: the vocabulary has no {EOT} token")
        if chat_template is not None and not isinstance(chat_template, str):
            raise TokenizerError(f"chat_template must be a string (a Jinja template) or None, "
                                 f"not {type(chat_template).__name__}")
        self._enc = encoding
        self._ranks = ranks
        self._specials = specials
        self._name = name
        self._chat_template = chat_template
        self._eot = specials[EOT]
        self._special_set = frozenset(specials)

    @classmethod
    def _from_encoding(cls, encoding: tiktoken.Encoding, ranks: dict[bytes, int],
                       specials: dict[str, int], name: str, chat_template: str | None = None) -> "Tokenizer":
        self = cls.__new__(cls)
        self._init(encoding, ranks, specials, name, chat_template)
        return self

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_pretrained(cls, name_or_dir: PathLike = "gpt2") -> "Tokenizer":
        """GPT-2's tokenizer by name ("gpt2", "openai-community/gpt2", any GPT-2 size: they share
        one vocabulary; bundled, offline), or one read from a directory holding `vocab.json` +
        `merges.txt`, `encoder.json` + `vocab.bpe`, or a `*.tiktoken` file (or that file itself).
        A directory's `tokenizer_config.json`, if any, adds the special tokens of its
        `added_tokens_decoder` and its `chat_template`.
        A directory with tokenizer files wins over a name. A *.tiktoken file holds no special
        tokens: `<|endoftext|>` gets the id after the last rank, as in GPT-2."""
        path = Path(name_or_dir).expanduser()
        if path.is_dir() and find_tokenizer_files(path):
            return cls._from_dir(path)
        if str(name_or_dir) in gpt2_names():
            return cls.gpt2()
        if path.is_dir():
            raise TokenizerError(
                f"{path}: no tokenizer files (vocab.json + merges.txt, encoder.json + vocab.bpe, "
                "or *.tiktoken)"
            )
        if path.is_file() and path.suffix == ".tiktoken":
            return cls(parse_tiktoken(path), name=path.stem)
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
        return cls._from_encoding(bundled_encoding(), bundled_ranks(), dict(GPT2_SPECIALS), "gpt2")

    @classmethod
    def _from_dir(cls, path: Path) -> "Tokenizer":
        found = find_tokenizer_files(path)
        if found[0].suffix == ".tiktoken":
            if len(found) > 1:
                raise TokenizerError(f"{path}: several *.tiktoken files; pass one of them")
            ranks = parse_tiktoken(found[0])
            specials = {EOT: max(ranks.values()) + 1}
            source = found[0].name
        else:
            vocab_path, merges_path = found
            vocab = parse_vocab(vocab_path)
            merges = parse_merges(merges_path)
            ranks, specials = ranks_from_merges(vocab, merges, f"{vocab_path} + {merges_path.name}")
            if EOT not in specials:
                raise TokenizerError(f"{vocab_path}: has no {EOT} token")
            source = vocab_path.name
        added, chat_template = read_tokenizer_config(path)
        for text, i in added.items():
            if specials.get(text, i) != i:
                raise TokenizerError(f"{path / 'tokenizer_config.json'}: {text!r} has id {i} there "
                                     f"but {specials[text]} in {source}")
            if ranks.get(text.encode("utf-8", "surrogatepass")) != i:  # not an ordinary token listed again
                specials[text] = i
        return cls(ranks, specials, name=path.resolve().name, chat_template=chat_template)

    def save_pretrained(self, directory: PathLike, *, model_max_length: int = 1024) -> list[Path]:
        """Write `vocab.json`, `merges.txt`, `tokenizer_config.json` and `special_tokens_map.json`
        into `directory` (created if need be; other files there are left alone), all or nothing.
        `transformers.AutoTokenizer.from_pretrained(directory)` loads them, with the same special
        tokens and chat template. Returns the paths."""
        directory = Path(directory).expanduser()
        files = hf_files(self._ranks, self._specials, self.merges, eot=EOT,
                         model_max_length=model_max_length, chat_template=self._chat_template)
        return write_files(directory, files)

    # ---------------------------------------------------------------- deriving

    def add_special_tokens(self, tokens: Sequence[str]) -> "Tokenizer":
        """A new tokenizer with `tokens` as special tokens too (encoded as their one id where
        `allowed_special` allows, like <|endoftext|>): new ones get the next free ids in order
        (len(self), len(self) + 1, ...); tokens already special keep their id. A TokenizerError
        refuses a token that is empty, is the text of an ordinary token, or begins like another
        special token (one the start of the other: "<|a|>" and "<|a|>b")."""
        if isinstance(tokens, str) or not isinstance(tokens, Iterable):
            raise TokenizerError(f"add_special_tokens takes a list of tokens, not {tokens!r}")
        specials = dict(self._specials)
        next_id = len(self)
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise TokenizerError(f"special token {token!r}: must be a non-empty string")
            if token in specials:
                continue
            try:
                ordinary = self._ranks.get(token.encode("utf-8"))
            except UnicodeEncodeError:
                raise TokenizerError(f"special token {token!r}: not valid text (a lone surrogate)") from None
            if ordinary is not None:
                raise TokenizerError(f"special token {token!r} is already an ordinary token of "
                                     f"{self._name} (id {ordinary}); a special token must be new text")
            # Where two special tokens start at the same place, tiktoken's choice differs from
            # transformers' (the longest), so ids would differ.
            prefix = next((s for s in specials if s.startswith(token) or token.startswith(s)), None)
            if prefix is not None:
                raise TokenizerError(f"special token {token!r} and the special token {prefix!r} begin "
                                     "alike (one is the start of the other); choose text that is not")
            specials[token] = next_id
            next_id += 1
        # Nothing new: the same vocabulary, so the same tiktoken Encoding.
        encoding = self._enc if len(specials) == len(self._specials) else _encoding(self._name, self._ranks, specials)
        return self._from_encoding(encoding, self._ranks, specials, self._name, self._chat_template)

    def with_chat_template(self, template: str | None) -> "Tokenizer":
        """A new tokenizer with this chat template (None: without one); the vocabulary is shared."""
        return self._from_encoding(self._enc, self._ranks, self._specials, self._name, template)

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
        ranks = ranks_from_inputs(inputs, vocab_size, min_frequency=min_frequency, text_field=text_field,
                                  show_progress=show_progress, stats=stats, progress=progress)
        return cls(ranks, {EOT: len(ranks)}, name=name)

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
        ranks = ranks_from_texts(texts, vocab_size, min_frequency=min_frequency, show_progress=show_progress)
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
    def chat_template(self) -> str | None:
        """The Jinja chat template saved with the tokenizer (rendered by fine-tuning), or None."""
        return self._chat_template

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
        return merges_from_ranks(self._ranks)

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 (hex) identifying the vocabulary: the ranks in tiktoken's file format, then
        one `special <base64 text> <id>` line per special token, by id. Equal for equal
        vocabularies whatever their file format or name; the chat template changes no id, so
        it is not part of it."""
        if self._ranks is bundled_ranks() and self._specials == GPT2_SPECIALS:
            return _bundled_fingerprint()
        return _fingerprint(self._ranks, self._specials)

    def __repr__(self) -> str:
        return f"Tokenizer(name={self._name!r}, vocab_size={self.vocab_size})"

    def __reduce__(self):
        # GPT-2's ranks travel as a reference to the bundled file (cheap to send to worker
        # processes); GPT-2's tokenizer itself as its name.
        if self._ranks is bundled_ranks():
            if self._specials == GPT2_SPECIALS and self._name == "gpt2" and self._chat_template is None:
                return (Tokenizer.gpt2, ())
            return (_rebuild_on_gpt2, (self._specials, self._name, self._chat_template))
        return (_rebuild, (self._ranks, self._specials, self._name, self._chat_template))

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


def _encoding(name: str, ranks: dict[bytes, int], specials: dict[str, int]) -> tiktoken.Encoding:
    """tiktoken's Encoding of a vocabulary, checking what tiktoken leaves unchecked."""
    try:
        encoding = tiktoken.Encoding(name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    except (ValueError, AssertionError) as e:
        raise TokenizerError(f"{name}: not a valid vocabulary: {e}") from None
    if len(set(ranks.values()) | set(specials.values())) != len(ranks) + len(specials):
        raise TokenizerError(f"{name}: a special token shares its id with a mergeable token")
    return encoding


def _fingerprint(ranks: Mapping[bytes, int], specials: Mapping[str, int]) -> str:
    lines = [base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda x: x[1])]
    lines += [b"special " + base64.b64encode(t.encode()) + b" %d\n" % i
              for t, i in sorted(specials.items(), key=lambda x: x[1])]
    return hashlib.sha256(b"".join(lines)).hexdigest()


@functools.lru_cache(maxsize=None)
def _bundled_fingerprint() -> str:
    return _fingerprint(bundled_ranks(), GPT2_SPECIALS)


def _rebuild(ranks: dict[bytes, int], specials: dict[str, int], name: str,
             chat_template: str | None = None) -> Tokenizer:
    return Tokenizer(ranks, specials, name=name, chat_template=chat_template)


def _rebuild_on_gpt2(specials: dict[str, int], name: str, chat_template: str | None) -> Tokenizer:
    """A tokenizer on GPT-2's bundled ranks, sharing them (and GPT-2's encoding if it can)."""
    ranks = bundled_ranks()
    encoding = bundled_encoding() if specials == GPT2_SPECIALS else _encoding(name, ranks, specials)
    return Tokenizer._from_encoding(encoding, ranks, specials, name, chat_template)
