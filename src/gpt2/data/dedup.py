"""Exact and near-duplicate removal, streamed: the first document of each group is kept.

Exact: a document whose cleaned text has the same 128-bit BLAKE2b digest as an earlier one.

Near: MinHash signatures over word 5-grams with locality-sensitive hashing (Broder 1997; the
banding of Leskovec et al., "Mining of Massive Datasets" ch. 3), the method of datasketch's
MinHashLSH and datatrove's MinhashDedup. The signature is datasketch's `affine32` scheme bit for bit
(tests compare with datasketch.MinHash), computed with numpy over the whole shingle matrix at once:
about 7x faster than feeding datasketch one document at a time (benchmarks/bench_prepare.py).
The index keeps one 64-bit key per band per kept document (a hash of the band's rows) instead of
MinHashLSH's dict of byte strings and lists. The bands and rows are datasketch's optimum for the
threshold (equal weights on false positives and negatives). Signatures are made in the worker
processes; only the band keys travel back.

Memory: the band keys (and the exact-duplicate digests) live mostly in sorted numpy arrays, 8 (16)
bytes each, the newest in a Python set merged into the array once it holds an eighth as many.
With the default 9 bands that is 110-150 bytes per kept document, up to ~250 while a merge copies
the array (tracemalloc, 0.2M-1M documents), where Python sets of the same keys took ~750 (~70
bytes per set entry and int object). The price is ~7 us per document in the main process instead
of ~2, far below the workers' cost of cleaning, hashing and tokenizing it.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..settings import num
from .ngrams import _mix, ngram_hashes, ngrams_of_words, word_hashes

_MERSENNE_32_MAX = (1 << 32) - 1
# Upper bounds of the settings' ranges (decontam.py's n-grams share MAX_NGRAM).
MAX_NUM_PERM = 1024  # choosing the LSH bands takes ~0.3 s at 1024
MAX_NGRAM = 100  # words in an n-gram


def content_key(text: str) -> bytes:
    """128-bit BLAKE2b digest of the text: the exact-duplicate key and the split hash."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class NearDupConfig:
    # estimated Jaccard similarity of 5-gram sets at which a document is dropped
    threshold: float = num(0.8, 0, 1, low_open=True, high_open=True)
    num_perm: int = num(128, 1, MAX_NUM_PERM)
    ngram: int = num(5, 1, MAX_NGRAM)
    # datasketch's default seed, so that signatures equal datasketch.MinHash()'s; the range is
    # numpy's RandomState seeds
    seed: int = num(1, 0, 2**32 - 1)

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


class _KeySet:
    """An insert-only set of fixed-size keys (uint64 band keys, 16-byte digests) in little memory:
    a sorted numpy array of most keys plus a Python set of the newest, merged into the array once
    it holds an eighth as many (so merging costs O(1) amortized per key)."""

    _MIN_MERGE = 1 << 16

    def __init__(self, dtype: str) -> None:
        self._sorted = np.zeros(0, dtype)
        self.recent: set = set()

    def in_sorted(self, keys: np.ndarray) -> np.ndarray:
        """Which of `keys` the array part holds (the caller checks `recent` itself)."""
        if self._sorted.size == 0 or keys.size == 0:
            return np.zeros(keys.size, dtype=bool)
        # Searching in increasing order is 3-6x faster: numpy starts each search where the last ended.
        order = np.argsort(keys, kind="stable")
        pos = np.empty(keys.size, dtype=np.intp)
        pos[order] = np.searchsorted(self._sorted, keys[order])
        pos[pos == self._sorted.size] = 0
        return self._sorted[pos] == keys

    def merge_if_due(self) -> None:
        if len(self.recent) >= max(self._MIN_MERGE, self._sorted.size // 8):
            merged = np.concatenate((self._sorted, np.array(list(self.recent), dtype=self._sorted.dtype)))
            merged.sort(kind="stable")  # timsort: a sorted run plus a short one, close to linear
            self._sorted, self.recent = merged, set()


class Deduplicator:
    """The sequential half of de-duplication: the keys of the documents kept so far."""

    def __init__(self, exact: bool = True, near: bool = True) -> None:
        self.exact, self.near = exact, near
        self._digests = _KeySet("S16")  # content_key's 16 bytes
        self._bands = _KeySet("uint64")

    def check(self, digest: bytes, bands: list[int]) -> str | None:
        """'exact_duplicate', 'near_duplicate' or None (kept: its keys are remembered)."""
        return self.check_batch([digest], [bands])[0]

    def check_batch(self, digests: list[bytes], bands: list[list[int]]) -> list[str | None]:
        """`check` for each document in turn: the same answers, with the arrays searched once per
        batch (the documents of the batch itself are found in the sets of recent keys)."""
        digest_seen = self._digests.in_sorted(np.array(digests, dtype="S16")) if self.exact else None
        band_seen = None
        if self.near:
            flat = np.fromiter(itertools.chain.from_iterable(bands), dtype=np.uint64)
            hits = np.concatenate(([0], np.cumsum(self._bands.in_sorted(flat))))  # hits before each key
            lengths = np.array([len(b) for b in bands], dtype=np.int64)
            ends = np.cumsum(lengths)
            band_seen = hits[ends] > hits[ends - lengths]  # any of the document's keys in the array
        recent_digests, recent_bands = self._digests.recent, self._bands.recent
        out: list[str | None] = []
        for i, (digest, keys) in enumerate(zip(digests, bands)):
            if self.exact and (digest_seen[i] or digest in recent_digests):
                out.append("exact_duplicate")
                continue
            if self.near and keys:
                if band_seen[i] or not recent_bands.isdisjoint(keys):
                    out.append("near_duplicate")
                    continue
                recent_bands.update(keys)
            if self.exact:
                recent_digests.add(digest)
            out.append(None)
        self._digests.merge_if_due()
        self._bands.merge_if_due()
        return out
