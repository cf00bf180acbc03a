"""Word n-grams as 64-bit hashes, computed with numpy over whole documents.

The words are GPT-2's (§4): the text lower-cased, every run of characters that are not letters or
digits replaced by one space. Before that, the text is put in Unicode's NFKC form (`hash_form`),
so that text and its copy hash alike whatever normalization either went through: an evaluation
file in NFD (decomposed accents, Hangul jamo) matches training text that `prepare` cleaned to NFC,
and NFKC(x) is the same for x in any of the four forms, so any `--normalize` choice agrees too. An n-gram is n consecutive words of one document. Its hash is
deterministic across processes and machines (Python's `hash()` of a str is not), so hashes made
by tokenization workers, by `gpt2 overlap` and in tests agree.

Hashing is vectorized rather than one Python call per word: a polynomial hash over the code
points with prefix sums gives every word's hash at once, and n shifted adds give every n-gram's.
Arithmetic is modulo 2**64 (numpy's wrap-around), and every value passes through the
splitmix64 finalizer so that the low and high bits are well mixed.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

_NON_WORD = re.compile(r"[\W_]+")
_U64 = np.uint64
# Odd multipliers (so that they are invertible modulo 2**64) for the byte and word polynomials.
_P_BYTE = _U64(0x9E3779B97F4A7C15)
_P_WORD = _U64(0xC2B2AE3D27D4EB4F)
_P_BYTE_INV = _U64(pow(int(_P_BYTE), -1, 1 << 64))


def hash_form(text: str) -> str:
    """The one normalization every n-gram hash starts from, on every side (training documents,
    evaluation files, prepared datasets read back): NFKC, then lower case."""
    if not text.isascii():  # ASCII is in every normal form already
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def normalize_words(text: str) -> str:
    """GPT-2's normalization for overlap analysis: lower-case words joined by single spaces."""
    return _NON_WORD.sub(" ", hash_form(text)).strip()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise (a bijection on 64-bit values)."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2**64, cached and grown by doubling."""
    have = _POWERS.get(int(base))
    if have is None or have.size < n:
        size = max(n, 2 * (0 if have is None else have.size), 1 << 16)
        out = np.full(size, base, dtype=np.uint64)
        out[0] = 1
        have = _POWERS[int(base)] = np.cumprod(out, dtype=np.uint64)  # wraps modulo 2**64
    return have[:n]


# Which of the first 128 code points are word characters (letters and digits, not "_").
_ASCII_WORD = np.array([chr(c).isalnum() for c in range(128)], dtype=bool)


def word_hashes(text: str) -> np.ndarray:
    """The 64-bit hash of every normalized word of `text`, in order.

    Equal to hashing the words of `normalize_words(text)`: a word is a maximal run of
    characters for which str.isalnum() holds (what the regex `[^\\W_]` matches), hashed over
    its code points.
    """
    # surrogatepass: a lone surrogate (which sources.py replaces, but API callers may pass) is
    # a non-word character like any other rather than an encoding error.
    cps = np.frombuffer(hash_form(text).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    n = cps.size
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    is_word = _ASCII_WORD[np.minimum(cps, 127)]
    high = cps >= 128
    if high.any():  # few distinct non-ASCII characters per document: classify each once
        distinct = np.unique(cps[high])
        alnum = np.array([chr(c).isalnum() for c in distinct.tolist()], dtype=bool)
        is_word[high] = alnum[np.searchsorted(distinct, cps[high])]
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        # prefix[i] = sum_{j<i} cps[j] * P**j; a word [s, e) is (prefix[e] - prefix[s]) * P**-s.
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(cps * _powers(_P_BYTE, n), dtype=np.uint64, out=prefix[1:])
        poly = (prefix[ends] - prefix[starts]) * _powers(_P_BYTE_INV, n)[starts]
        # The length joins the hash so that words differing only by trailing zeros differ.
        return _mix(poly + (ends - starts).astype(np.uint64) * _U64(0xD6E8FEB86659FD93))


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The 64-bit hash of every n-gram of normalized words in `text` (empty if fewer than n words)."""
    return ngrams_of_words(word_hashes(text), n)


def ngrams_of_words(words: np.ndarray, n: int) -> np.ndarray:
    """Hashes of the n-grams of a sequence of word hashes."""
    if n < 1:
        raise ValueError(f"n-gram length must be at least 1, got {n}")
    count = words.size - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        power = _U64(1)
        for k in range(n):
            acc += words[k:k + count] * power
            power = power * _P_WORD
        return _mix(acc + _U64(n))


def reference_ngram_hashes(text: str, n: int) -> list[int]:
    """The same hashes computed one word at a time in pure Python (for tests; slow)."""
    mask = (1 << 64) - 1

    def mix(x: int) -> int:
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & mask
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    words = []
    for word in normalize_words(text).split(" ") if normalize_words(text) else []:
        poly = 0
        for j, char in enumerate(word):
            poly = (poly + ord(char) * pow(int(_P_BYTE), j, 1 << 64)) & mask
        b = len(word)
        words.append(mix((poly + b * 0xD6E8FEB86659FD93) & mask))
    out = []
    for i in range(len(words) - n + 1):
        acc = sum(words[i + k] * pow(int(_P_WORD), k, 1 << 64) for k in range(n)) & mask
        out.append(mix((acc + n) & mask))
    return out
