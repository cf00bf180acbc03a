"""Decontamination: find training documents that share word n-grams with evaluation files.

The evaluation side is small, so its n-gram hashes are kept exactly, as one sorted numpy array;
a document is contaminated when any of its n-grams (8 by default, GPT-2 §4's length) is in it.
Both sides are hashed from the same Unicode form (ngrams.hash_form): the evaluation files as they
are read, the training documents after cleaning, whatever normalization that applied.
`prepare` drops such documents or, with action "report", keeps them and counts them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..settings import num
from .dedup import MAX_NGRAM
from .ngrams import ngram_hashes
from .sources import ReadOptions, expand_inputs, iter_documents


@dataclass(frozen=True)
class DecontamConfig:
    eval_files: tuple[str, ...] = ()
    ngram: int = num(8, 1, MAX_NGRAM)
    action: Literal["drop", "report"] = "drop"  # report: keep contaminated documents, only count them


class EvalNgrams:
    """The set of n-gram hashes of some evaluation files, with membership tests over arrays."""

    def __init__(self, hashes: np.ndarray, n: int, files: tuple[str, ...] = ()) -> None:
        self.hashes = np.unique(hashes.astype(np.uint64))
        self.n = n
        self.files = files

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike], n: int = 8,
                   options: ReadOptions = ReadOptions()) -> EvalNgrams:
        files = tuple(expand_inputs(paths))
        parts = [ngram_hashes(doc.text, n) for doc in iter_documents(files, options)]
        return cls(np.concatenate(parts) if parts else np.zeros(0, np.uint64), n, files)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `hashes` are evaluation n-grams."""
        if self.hashes.size == 0 or hashes.size == 0:
            return np.zeros(hashes.shape, dtype=bool)
        pos = np.searchsorted(self.hashes, hashes)
        pos[pos == self.hashes.size] = 0
        return self.hashes[pos] == hashes

    def matches(self, text: str) -> int:
        """How many of the document's n-grams occur in the evaluation files."""
        return int(self.contains(ngram_hashes(text, self.n)).sum())
