"""OpenAI's byte <-> character table (GPT-2's encoder.py): how byte-level tokens are spelled as
text in vocab.json / merges.txt (and encoder.json / vocab.bpe)."""

from __future__ import annotations

import functools


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
def char_to_byte() -> dict[str, int]:
    """The inverse table (callers must not modify it)."""
    return {c: b for b, c in _byte_to_char().items()}


def spell(token: bytes) -> str:
    """A token's bytes as the text vocabulary files use."""
    table = _byte_to_char()
    return "".join(table[b] for b in token)


def unspell(token: str) -> bytes | None:
    """The bytes a byte-level token string stands for; None if it is not byte-level text."""
    table = char_to_byte()
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return None
