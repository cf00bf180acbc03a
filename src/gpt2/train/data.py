"""The trainer's view of a prepared dataset (the output of `gpt2 prepare`): its tokenizer, its
vocabulary size, a resumable training loader and a fixed-order validation loader."""

from __future__ import annotations

from pathlib import Path

from ..data.loader import ShardLoader, ValLoader
from ..data.shards import Dataset, load_tokenizer


class TrainingData:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dataset = Dataset(self.dir)  # DataError (one line) when it is not a prepared dataset
        for split in self.dataset.splits:  # shards whole and as the manifest says, before any model
            self.dataset.open_split(split)
        self.tokenizer = load_tokenizer(self.dataset.tokenizer_name)
        self.vocab_size = self.dataset.vocab_size

    def train_loader(self, batch_size: int, seq_len: int, seed: int, rank: int, world_size: int) -> ShardLoader:
        return ShardLoader(self.dir, "train", batch_size=batch_size, n_ctx=seq_len, seed=seed,
                           rank=rank, world_size=world_size)

    def val_loader(self, batch_size: int, seq_len: int, rank: int, world_size: int,
                   max_windows: int | None = None) -> ValLoader | None:
        """The first max_windows validation windows (all when None), dealt to the ranks. None when
        the validation split holds no window of seq_len + 1 tokens (a window never spans two
        shards), so training goes on without validation."""
        if not any(shard["tokens"] > seq_len for shard in self.dataset.splits.get("val", [])):
            return None
        return ValLoader(self.dir, "val", batch_size=batch_size, n_ctx=seq_len, rank=rank, world_size=world_size,
                         max_windows=max_windows)
