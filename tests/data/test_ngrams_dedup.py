"""N-gram hashing against its pure-Python definition; MinHash and LSH parameters against datasketch."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2.data.dedup import Deduplicator, NearDupConfig, document_band_keys, minhash, optimal_bands, shingle_hashes
from gpt2.data.ngrams import ngram_hashes, normalize_words, reference_ngram_hashes, word_hashes


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80), st.integers(1, 4))
def test_vectorized_hashes_equal_the_reference(text, n):
    assert ngram_hashes(text, n).tolist() == reference_ngram_hashes(text, n)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_word_count_matches_gpt2_normalization(text):
    # The paper's normalization: lower-cased alphanumeric words joined by single spaces (of the
    # text in NFKC, the one Unicode form every side is hashed in).
    expected = [w for w in re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).lower()).split(" ") if w]
    assert word_hashes(text).size == len(expected)


def test_normalization_makes_case_and_punctuation_irrelevant():
    assert normalize_words("Hello, WORLD!!  it's   ok_now") == "hello world it s ok now"
    assert ngram_hashes("Hello, WORLD! again", 2).tolist() == ngram_hashes("hello world again", 2).tolist()
    assert ngram_hashes("hello world again", 2).tolist() != ngram_hashes("hello again world", 2).tolist()


def test_minhash_equals_datasketch():
    datasketch = pytest.importorskip("datasketch")
    shingles = shingle_hashes("the quick brown fox jumps over the lazy dog again and again today", 3)
    m = datasketch.MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32")
    m.update_batch(shingles.tolist())
    assert np.array_equal(m.hashvalues, minhash(shingles, 128, 1))


@pytest.mark.parametrize("threshold, num_perm", [(0.8, 128), (0.7, 128), (0.9, 64), (0.5, 200)])
def test_bands_equal_datasketch(threshold, num_perm):
    lsh = pytest.importorskip("datasketch.lsh")
    assert optimal_bands(threshold, num_perm) == lsh._optimal_param(threshold, num_perm, 0.5, 0.5)


def test_minhash_estimates_jaccard(prose):
    a, b = prose(1, 400), prose(2, 400)
    sa, sb = set(shingle_hashes(a, 5).tolist()), set(shingle_hashes(b, 5).tolist())
    c = a + "\n" + b[: len(b) // 4]
    sc = set(shingle_hashes(c, 5).tolist())
    true = len(sa & sc) / len(sa | sc)
    ma, mc = minhash(np.array(sorted(sa), np.uint32)), minhash(np.array(sorted(sc), np.uint32))
    assert abs(np.mean(ma == mc) - true) < 0.12
    assert len(sa & sb) / len(sa | sb) < 0.1


def test_deduplicator_planted(prose):
    config = NearDupConfig()
    dedup = Deduplicator()
    a = prose(1, 300)
    near = a.replace("river", "brook", 1)
    other = prose(2, 300)
    keys = lambda t: document_band_keys(t, config)  # noqa: E731
    assert dedup.check(b"a", keys(a)) is None
    assert dedup.check(b"a", keys(a)) == "exact_duplicate"
    assert dedup.check(b"n", keys(near)) == "near_duplicate"
    assert dedup.check(b"o", keys(other)) is None
    assert Deduplicator(exact=False, near=False).check(b"a", keys(a)) is None


def test_lone_surrogate_is_a_word_break_not_an_error():
    text = "one two\ud83dthree four"  # what json.loads gives for an unpaired "\ud83d" escape
    assert ngram_hashes(text, 2).tolist() == reference_ngram_hashes(text, 2)
    assert ngram_hashes(text, 2).tolist() == ngram_hashes("one two three four", 2).tolist()


def _reference_dedup(docs):
    """The definition, with plain Python sets."""
    digests, bands, out = set(), set(), []
    for digest, keys in docs:
        if digest in digests:
            out.append("exact_duplicate")
        elif keys and not bands.isdisjoint(keys):
            out.append("near_duplicate")
        else:
            bands.update(keys)
            digests.add(digest)
            out.append(None)
    return out


def test_compact_index_answers_as_sets_do(monkeypatch):
    import gpt2.data.dedup as dedup

    monkeypatch.setattr(dedup._KeySet, "_MIN_MERGE", 8)  # merge into the arrays all the time
    rng = np.random.default_rng(0)
    docs = []
    for i in range(3000):
        if i > 10 and rng.random() < 0.1:  # an earlier document again (an exact duplicate)
            docs.append(docs[int(rng.integers(i))])
        elif i > 10 and rng.random() < 0.1:  # shares one band with an earlier one (a near duplicate)
            keys = rng.integers(0, 2**64, 9, dtype=np.uint64).tolist()
            keys[int(rng.integers(9))] = int(rng.choice(docs[int(rng.integers(i))][1] or [0]))
            docs.append((rng.bytes(16), keys))
        else:
            keys = rng.integers(0, 2**64, 9, dtype=np.uint64).tolist() if rng.random() < 0.9 else []
            docs.append((rng.bytes(16), keys))
    expected = _reference_dedup(docs)
    assert expected.count("exact_duplicate") > 100 and expected.count("near_duplicate") > 20
    d = Deduplicator()
    got = []
    for start in range(0, len(docs), 97):  # batches, whose documents can duplicate each other
        batch = docs[start:start + 97]
        got += d.check_batch([g for g, _ in batch], [k for _, k in batch])
    assert got == expected
    assert d._bands._sorted.size > 1000 and d._digests._sorted.size > 1000  # the arrays were used
