"""The text side of decoding: prompts to ids, tokens to text as they come (never half a UTF-8
character), stop token ids and stop strings, and the finished Sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import UsageError
from ..validate import is_int


class StreamDecoder(Protocol):
    def add(self, token_id: int) -> str: ...
    def flush(self) -> str: ...


class TokenizerLike(Protocol):
    """What generation needs of a tokenizer (gpt2.Tokenizer provides it)."""

    eot_token: int

    def encode(self, text: str, *args, **kwargs) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def stream_decoder(self) -> StreamDecoder: ...


@dataclass
class Sample:
    """One generated continuation.

    tokens are the generated ids only (a stop token or the tokens of a stop string excluded);
    text is the generated text only, cut before the first stop string.
    finish_reason: "length" (max_new_tokens reached), "stop_token" or "stop_string".
    """

    prompt_tokens: list[int]
    tokens: list[int]
    text: str
    finish_reason: str
    prompt_index: int = 0
    sample_index: int = 0
    seed: int = 0


def encode_prompt(tokenizer: TokenizerLike, prompt: str | Sequence[int] | None) -> list[int]:
    """A prompt's token ids; None is unconditional: <|endoftext|> alone. A list of token ids
    (e.g. a chat template's rendering) is used as it is."""
    if prompt is None:
        return [tokenizer.eot_token]  # as OpenAI's generate_unconditional_samples
    if is_token_ids(prompt):
        if not prompt:
            raise UsageError("empty prompt; pass None for an unconditional sample")
        return list(prompt)
    if not isinstance(prompt, str):
        raise UsageError(f"a prompt must be a string (or None for unconditional), got {type(prompt).__name__}")
    if prompt == "":
        raise UsageError("empty prompt; pass None for an unconditional sample")
    try:
        return list(tokenizer.encode(prompt, allowed_special="all"))
    except TypeError:  # a tokenizer whose encode() takes no allowed_special
        return list(tokenizer.encode(prompt))


def is_token_ids(prompt: object) -> bool:
    """Whether a prompt is a list (or tuple) of token ids rather than text."""
    return isinstance(prompt, (list, tuple)) and all(is_int(t) for t in prompt)


class RowText:
    """The text of one row as its tokens come: incremental detokenization, the stops, and the
    end of the text held back while it could still begin a stop string."""

    def __init__(self, tokenizer: TokenizerLike, stop: tuple[str, ...], stop_ids: frozenset[int]) -> None:
        self.decoder = stream_decoder(tokenizer)
        self.stop = stop
        self.stop_ids = stop_ids
        self.tokens: list[int] = []
        self.ends: list[int] = []  # len(text) after each token
        self.text = ""
        self.emitted = 0  # characters of text already handed out
        self.finish_reason: str | None = None

    def add(self, token: int) -> str:
        """Take the next token; return the text that can be shown now."""
        if token in self.stop_ids:
            self.finish_reason = "stop_token"
            return self._append(self.decoder.flush(), final=True)
        self.tokens.append(token)
        piece = self.decoder.add(token)
        out = self._append(piece, final=False)
        self.ends.append(len(self.text))
        return out

    def close(self) -> str:
        """No more tokens (max_new_tokens reached): the rest of the text."""
        if self.finish_reason is None:
            self.finish_reason = "length"
            return self._append(self.decoder.flush(), final=True)
        return ""

    def _append(self, piece: str, final: bool) -> str:
        before = len(self.text)
        self.text += piece
        if self.stop:
            # A stop string may straddle earlier pieces: search from where one could begin.
            lookback = max(len(s) for s in self.stop) - 1
            hits = [i for s in self.stop if (i := self.text.find(s, max(0, before - lookback))) >= 0]
            if hits:
                cut = min(hits)
                self.text = self.text[:cut]
                self.tokens = self.tokens[: sum(1 for e in self.ends if e <= cut)]
                self.finish_reason = "stop_string"
                final = True
        safe = len(self.text) if final else len(self.text) - self._held()
        out = self.text[self.emitted : safe]
        self.emitted = max(self.emitted, safe)
        return out

    def _held(self) -> int:
        """Length of the longest end of the text that could begin a stop string."""
        held = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:n]):
                    held = n
                    break
        return held


class FallbackStreamDecoder:
    """Incremental decoding for a tokenizer without stream_decoder(): emit the decoded text once
    it no longer ends in a partial UTF-8 character (shown by decode() as U+FFFD)."""

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer
        self.pending: list[int] = []

    def add(self, token_id: int) -> str:
        self.pending.append(token_id)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd") and len(self.pending) < 4:
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text = self.tokenizer.decode(self.pending) if self.pending else ""
        self.pending = []
        return text


def stream_decoder(tokenizer: TokenizerLike) -> StreamDecoder:
    factory = getattr(tokenizer, "stream_decoder", None)
    return factory() if factory is not None else FallbackStreamDecoder(tokenizer)
