"""Exact and near-duplicate removal, streamed: the first document of each group is kept.

Exact: a document whose cleaned text has the same 128-bit BLAKE2b digest as an earlier one.

Near: MinHash signatures over word 5-grams with locality-sensitive hashing (Broder 1997; the
banding of Leskovec et al., "Mining of Massive Datasets" ch. 3), the method of datasketch's
MinHashLSH and datatrove's MinhashDedup. The signature is datasketch's `affine32` scheme bit for bit
(tests compare with datasketch.MinHash), computed with numpy over the whole shingle matrix at once:
about 7x faster than feeding datasketch one document at a time (benchmarks/bench_prepare.py).
The index keeps one 64-bit key per band per kept document in a Python set, instead of
MinHashLSH's dict of byte strings and lists, which needs several times the memory per document.
The bands and rows are datasketch's optimum for the threshold (equal weights on false positives
and negatives). Signatures are made in the worker processes; only the band keys travel back.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from .ngrams import _mix, ngram_hashes, ngrams_of_words, word_hashes

_MERSENNE_32_MAX = (1 << 32) - 1


def content_key(text: str) -> bytes:
    """128-bit BLAKE2b digest of the text: the exact-duplicate key and the split hash."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class NearDupConfig:
    threshold: float = 0.8  # estimated Jaccard similarity of 5-gram sets at which a document is dropped
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1  # datasketch's default seed, so that signatures equal datasketch.MinHash()'s

    def to_dict(self) -> dict:
        return asdict(self) | {"bands": self.bands_rows()[0], "rows": self.bands_rows()[1]}

    def bands_rows(self) -> tuple[int, int]:
        return optimal_bands(self.threshold, self.num_perm)


@lru_cache(maxsize=None)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # datasketch.MinHash._init_permutations for scheme "affine32": odd a, any b, modulo 2**32.
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's 32-bit finalizer, as datasketch applies to each input hash.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """32-bit hashes of the document's word n-grams (the top half of the 64-bit n-gram hashes)."""
    return (ngram_hashes(text, ngram) >> np.uint64(32)).astype(np.uint32)


def minhash(shingles: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """The MinHash signature of a set of 32-bit shingle hashes (uint32[num_perm]).

    Equals `datasketch.MinHash(num_perm, seed, hashfunc=int, scheme="affine32")` updated with
    the same values. An empty set gives the all-ones signature, as datasketch's does.
    """
    if shingles.size == 0:
        return np.full(num_perm, _MERSENNE_32_MAX, dtype=np.uint32)
    a, b = _permutations(num_perm, seed)
    with np.errstate(over="ignore"):
        hv = _fmix32(np.unique(shingles))[:, None]
        return (hv * a + b).min(axis=0)


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band; two documents collide in a band when its rows are all equal."""
    sig = signature[: bands * rows].astype(np.uint64).reshape(bands, rows)
    with np.errstate(over="ignore"):
        acc = np.zeros(bands, dtype=np.uint64)
        for j in range(rows):
            acc = acc * np.uint64(0x100000001B3) + sig[:, j]
        # The band's index joins the key so that one set can hold every band.
        return _mix(acc + np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)).tolist()


def document_band_keys(text: str, config: NearDupConfig, words: np.ndarray | None = None) -> list[int]:
    """Band keys of a document's MinHash; empty for a document with fewer words than one shingle.
    `words`: the document's word hashes, when the caller has them already."""
    if words is None:
        words = word_hashes(text)
    shingles = (ngrams_of_words(words, config.ngram) >> np.uint64(32)).astype(np.uint32)
    if shingles.size == 0:
        return []  # too short to compare by shingles; exact de-duplication still covers it
    bands, rows = config.bands_rows()
    return band_keys(minhash(shingles, config.num_perm, config.seed), bands, rows)


@lru_cache(maxsize=None)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the false-positive plus false-negative area, as datasketch's
    MinHashLSH chooses them (its `_optimal_param` with weights 0.5 and 0.5)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the near-duplicate threshold must lie strictly between 0 and 1, got {threshold}")
    # Gauss-Legendre quadrature: exact enough that the argmin equals scipy.quad's.
    nodes, weights = np.polynomial.legendre.leggauss(200)

    def integral(lo: float, hi: float, f) -> float:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        return float((hi - lo) / 2 * np.sum(weights * f(s)))

    best, best_error = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = integral(0.0, threshold, lambda s: 1 - (1 - s**r) ** b)
            fn = integral(threshold, 1.0, lambda s: (1 - s**r) ** b)
            error = 0.5 * fp + 0.5 * fn
            if error < best_error:
                best, best_error = (b, r), error
    return best


class Deduplicator:
    """The sequential half of de-duplication: sets of keys of the documents kept so far."""

    def __init__(self, exact: bool = True, near: bool = True) -> None:
        self.exact, self.near = exact, near
        self._digests: set[bytes] = set()
        self._bands: set[int] = set()

    def check(self, digest: bytes, bands: list[int]) -> str | None:
        """'exact_duplicate', 'near_duplicate' or None (kept: its keys are remembered)."""
        if self.exact:
            if digest in self._digests:
                return "exact_duplicate"
        if self.near and bands:
            if not self._bands.isdisjoint(bands):
                return "near_duplicate"
            self._bands.update(bands)
        if self.exact:
            self._digests.add(digest)
        return None
