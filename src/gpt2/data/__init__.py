"""Data: a WebText-style corpus pipeline, GPT-2's 8-gram overlap analysis, and resumable loaders.

    prepare(inputs, out_dir, ...)       raw text -> cleaned, de-duplicated token shards + manifest
    build_config(layers)                a PrepareConfig from TOML / option / `key=value` trees, checked
    overlap(train, evals, ...)          % of each evaluation file's 8-grams in the training data
    ShardLoader / ValLoader             (x, y) batches over the shards, with state_dict()
    Dataset                             a prepared directory: manifest, shards as memory maps

Modules: sources (readers), clean (normalization, quality rules), dedup (exact, MinHash LSH),
decontam (n-gram decontamination), ngrams (word n-gram hashing), overlap (Bloom filter analysis),
shards (format, writer, reader), prepare (the streaming pipeline), loader, corpus (demo corpus).
"""

from __future__ import annotations

from .clean import CleanConfig, QualityConfig
from .corpus import corpus_path
from .decontam import DecontamConfig, EvalNgrams
from .dedup import NearDupConfig
from ..errors import DataError
from .overlap import OverlapReport, overlap
from .prepare import PrepareConfig, build_config, prepare
from .shards import Dataset
from .sources import ReadOptions

__all__ = [
    "CleanConfig", "QualityConfig", "DecontamConfig", "EvalNgrams", "NearDupConfig", "DataError",
    "OverlapReport", "overlap", "PrepareConfig", "build_config", "prepare", "Dataset", "ReadOptions", "corpus_path",
    "ShardLoader", "ValLoader",
]


def __getattr__(name: str):
    # The loaders import torch; the pipeline does not need it, so they load on first use.
    if name in ("ShardLoader", "ValLoader"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
