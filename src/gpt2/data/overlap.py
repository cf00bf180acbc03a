"""GPT-2's memorization analysis (§4, Table 6): what share of an evaluation file's 8-grams occur
in the training data, with the training 8-grams held in a Bloom filter.

The filter is rbloom's (Rust; ~15M insertions/s here, far beyond a numpy filter's ~1M/s, whose
scattered bit updates need ufunc.at). Its size is chosen for a capacity at least the number of
n-grams inserted, so the false-positive rate stays at or below the target (1e-4 by default); the
report states the bound computed from the n-grams actually inserted,
(1 - exp(-k n / m))**k, and an estimate from the bits actually set. A false positive can only
raise a percentage, by at most the rate: the report's figures are upper bounds, tight to within it.

Both sides are normalized as in the paper: lower-cased alphanumeric words separated by single
spaces, after the same Unicode normalization (NFKC; ngrams.hash_form), so an evaluation file in
NFD matches its copy in training text that `prepare` cleaned to NFC. N-grams never span two documents. The training side is either raw text (any input
`prepare` reads) or a prepared dataset, whose documents are decoded back to text with its
tokenizer. Two passes over raw text: one counts the n-grams so the filter can be sized exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .ngrams import ngram_hashes
from .sources import ReadOptions, SourceStats, expand_inputs, iter_documents


class NgramBloom:
    """A Bloom filter of 64-bit n-gram hashes with a stated false-positive rate."""

    def __init__(self, capacity: int, false_positive_rate: float = 1e-4) -> None:
        try:
            import rbloom
        except ImportError:
            raise DataError("the overlap analysis needs rbloom (pip install rbloom)") from None
        if not 0 < false_positive_rate < 1:
            raise DataError(f"false-positive rate must lie between 0 and 1, got {false_positive_rate}")
        self.capacity = max(int(capacity), 1)
        self.target_rate = false_positive_rate
        # rbloom truncates its hash count, which can leave the rate at capacity a little above
        # the one asked for; ask for a stricter one until the rate at capacity meets the target.
        asked = false_positive_rate
        while True:
            self._bloom = rbloom.Bloom(self.capacity, asked)  # zeroed lazily: a retry costs little
            bits_f = -self.capacity * math.log(asked) / math.log(2) ** 2
            self.k = int(bits_f / self.capacity * math.log(2))  # rbloom's own choice
            if self.k >= 1 and self._rate(self.capacity) <= false_positive_rate:
                break
            asked *= 0.95
        self.inserted = 0

    def _rate(self, items: int) -> float:
        return (1 - math.exp(-self.k * items / self.bits)) ** self.k

    @property
    def bits(self) -> int:
        return int(self._bloom.size_in_bits)

    def add(self, hashes: np.ndarray) -> None:
        # Python's hash() of an int below 2**61 - 1 is the int itself; rbloom spreads it over k bits.
        self._bloom.update(hashes.tolist())
        self.inserted += int(hashes.size)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        bloom = self._bloom
        return np.fromiter((h in bloom for h in hashes.tolist()), dtype=bool, count=hashes.size)

    def false_positive_bound(self) -> float:
        """The rate for `inserted` distinct items (duplicates only lower the true rate)."""
        return self._rate(self.inserted)

    def estimated_false_positive_rate(self) -> float:
        """From the share of bits set, through rbloom's estimate of the distinct items held."""
        fill = 1 - math.exp(-self.k * self._bloom.approx_items / self.bits)
        return fill**self.k


@dataclass
class EvalOverlap:
    path: str
    ngrams: int  # every n-gram occurrence in the file
    present: int  # of those, how many the training data (probably) contains
    distinct_ngrams: int
    distinct_present: int

    @property
    def percent(self) -> float:
        return 100.0 * self.present / self.ngrams if self.ngrams else 0.0

    @property
    def distinct_percent(self) -> float:
        return 100.0 * self.distinct_present / self.distinct_ngrams if self.distinct_ngrams else 0.0


@dataclass
class OverlapReport:
    n: int
    train: list[str]
    train_documents: int
    train_ngrams: int
    bloom_bits: int
    bloom_hashes: int
    false_positive_target: float
    false_positive_bound: float
    false_positive_estimate: float
    evals: list[EvalOverlap] = field(default_factory=list)
    # "train" / "eval": files unreadable or empty, lines skipped, characters replaced (see _problems)
    input_problems: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for e, row in zip(self.evals, d["evals"]):
            row["percent"] = e.percent
            row["distinct_percent"] = e.distinct_percent
        return d

    def format(self) -> str:
        lines = [
            f"{self.n}-gram overlap with {', '.join(self.train)} "
            f"({self.train_documents:,} documents, {self.train_ngrams:,} {self.n}-grams)",
            f"Bloom filter: {self.bloom_bits / 8 / 2**20:,.1f} MiB, {self.bloom_hashes} hashes; "
            f"false-positive rate <= {self.false_positive_bound:.2e} (target {self.false_positive_target:.0e}, "
            f"estimated {self.false_positive_estimate:.2e})",
            "",
            f"{'evaluation file':<40} {self.n}-grams   in train   percent   (distinct)",
        ]
        for e in self.evals:
            lines.append(f"{e.path:<40} {e.ngrams:>9,} {e.present:>10,} {e.percent:>8.2f}%   "
                         f"({e.distinct_percent:.2f}%)")
        for side, problems in self.input_problems.items():
            counts = [f"{problems['unreadable_files']} unreadable file(s)" if problems["unreadable_files"] else "",
                      f"{problems['empty_files']} empty file(s)" if problems["empty_files"] else "",
                      f"{sum(problems['skipped_lines'].values())} line(s) skipped" if problems["skipped_lines"] else "",
                      f"{problems['replaced_bytes']} undecodable byte(s) replaced" if problems["replaced_bytes"] else ""]
            if any(counts):
                lines.append(f"note: {side} inputs: {', '.join(c for c in counts if c)} "
                             f"(e.g. {problems['examples'][0] if problems['examples'] else '-'})")
        return "\n".join(lines)


def _is_dataset(path: str | os.PathLike) -> bool:
    return (Path(path) / "manifest.json").is_file()


def _training_texts(train: list[str], options: ReadOptions, splits: tuple[str, ...],
                    stats: SourceStats | None = None) -> Iterator[str]:
    for item in train:
        if _is_dataset(item):
            from .shards import iter_dataset_texts

            yield from iter_dataset_texts(item, splits)
        else:
            yield from (doc.text for doc in iter_documents([item], options, stats))


def _capacity(train: list[str], options: ReadOptions, n: int, splits: tuple[str, ...]) -> int:
    total = 0
    for item in train:
        if _is_dataset(item):
            from .shards import Dataset

            # Every normalized word holds at least one token for GPT-2-style pre-tokenizers, so
            # the token count bounds the n-gram count; `build_bloom` checks it afterwards.
            ds = Dataset(item)
            total += sum(ds.split_tokens(s) for s in splits if s in ds.splits)
        else:
            total += sum(max(ngram_hashes(doc.text, n).size, 0) for doc in iter_documents([item], options))
    return total


def build_bloom(train: Iterable[str | os.PathLike], n: int = 8, false_positive_rate: float = 1e-4,
                options: ReadOptions = ReadOptions(), splits: tuple[str, ...] = ("train",),
                capacity: int | None = None, stats: SourceStats | None = None) -> tuple[NgramBloom, int]:
    """A Bloom filter of every n-gram of the training data; returns it and the document count.
    `stats` collects what the readers skipped or replaced in raw training inputs."""
    sources = [os.fspath(t) for t in train]
    _check_training_inputs(sources, splits)
    cap = capacity if capacity is not None else _capacity(sources, options, n, splits)
    bloom = NgramBloom(cap, false_positive_rate)
    documents = 0
    counted = SourceStats()
    for text in _training_texts(sources, options, splits, counted):
        bloom.add(ngram_hashes(text, n))
        documents += 1
    if bloom.inserted > bloom.capacity:  # the token bound failed (an unusual tokenizer): size exactly
        return build_bloom(sources, n, false_positive_rate, options, splits, capacity=bloom.inserted, stats=stats)
    if documents == 0:  # a report of 0% would read as "no overlap"
        raise DataError(f"{', '.join(sources)}: no training documents found (splits read from prepared "
                        f"datasets: {', '.join(splits)}); check the inputs and --splits")
    if stats is not None:  # this pass's counts (not a discarded pass's, above)
        vars(stats).update(vars(counted))
    return bloom, documents


def _check_training_inputs(sources: list[str], splits: tuple[str, ...]) -> None:
    """Every training input exists, and every prepared dataset among them has every split asked for."""
    if not splits:
        raise DataError("no dataset splits given; name them, e.g. train or train,val")
    for s in sources:
        if s.startswith("hf:"):
            continue
        if not Path(s).exists():
            raise DataError(f"{s}: no such file or directory")
        if _is_dataset(s):
            from .shards import Dataset

            have = Dataset(s).splits
            missing = [split for split in splits if split not in have]
            if missing:
                raise DataError(f"{s}: no {missing[0]!r} split (it has {', '.join(have) or 'none'}); "
                                f"choose from those with --splits")


def overlap(train: Iterable[str | os.PathLike], evals: Iterable[str | os.PathLike], n: int = 8,
            false_positive_rate: float = 1e-4, options: ReadOptions = ReadOptions(),
            splits: tuple[str, ...] = ("train",)) -> OverlapReport:
    """Percentage of each evaluation file's n-grams found in the training data (GPT-2's Table 6).

    `train`: prepared dataset directories (their `splits` are read) and/or raw text inputs.
    `evals`: text inputs; each file (or directory entry) gets its own row.
    """
    train = [os.fspath(t) for t in train]
    evals = [os.fspath(e) for e in evals]
    eval_files = expand_inputs(evals)
    if not eval_files:
        raise DataError(f"{', '.join(evals) or 'no evaluation files given'}: no text, .jsonl or .parquet "
                        f"files to evaluate; name evaluation files or directories holding them")
    train_stats, eval_stats = SourceStats(), SourceStats()
    bloom, documents = build_bloom(train, n, false_positive_rate, options, splits, stats=train_stats)
    report = OverlapReport(
        n=n, train=train, train_documents=documents, train_ngrams=bloom.inserted,
        bloom_bits=bloom.bits, bloom_hashes=bloom.k, false_positive_target=false_positive_rate,
        false_positive_bound=bloom.false_positive_bound(),
        false_positive_estimate=bloom.estimated_false_positive_rate(),
    )
    for path in eval_files:
        total = present = 0
        distinct: dict[int, bool] = {}
        for doc in iter_documents([path], options, eval_stats):
            hashes = ngram_hashes(doc.text, n)
            hits = bloom.contains(hashes)
            total += hashes.size
            present += int(hits.sum())
            distinct.update(zip(hashes.tolist(), hits.tolist()))
        report.evals.append(EvalOverlap(path, total, present, len(distinct), sum(distinct.values())))
    report.input_problems = {"train": _problems(train_stats), "eval": _problems(eval_stats)}
    return report


def _problems(stats: SourceStats) -> dict:
    """What the readers skipped or replaced (all zero for clean inputs), with a few examples."""
    return {"unreadable_files": stats.unreadable, "empty_files": stats.empty_files,
            "skipped_lines": dict(stats.skipped_lines), "replaced_bytes": stats.replaced_bytes,
            "replaced_surrogates": stats.replaced_surrogates, "examples": list(stats.examples)}
