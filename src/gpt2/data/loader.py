"""Training and validation loaders over a prepared dataset's memory-mapped shards.

A window is n_ctx + 1 consecutive tokens of one shard, starting at a multiple of n_ctx, so
consecutive windows share one token and every token is predicted once per epoch; x is its first
n_ctx tokens and y its last n_ctx. Documents are concatenated, separated by <|endoftext|>, as in
GPT-2's training.

ShardLoader draws windows without replacement: each epoch is a permutation of all windows seeded by
(seed, epoch), dealt round-robin to the ranks of a torch.distributed job so that each reads disjoint
windows. Its state is two integers (epoch, batches taken in the epoch) plus the settings it must
match, so a resumed run sees exactly the batches the uninterrupted run would have seen.
ValLoader walks the first windows of the validation split in a fixed order, dealt to the ranks so
that the windows are the same whatever their number, and every rank takes the same number of batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from ..errors import DataError
from .shards import Dataset


class _Windows:
    """The windows of one split: which shard, and where in it, window i starts."""

    def __init__(self, data_dir: str | os.PathLike, split: str, n_ctx: int) -> None:
        if n_ctx < 1:
            raise DataError(f"n_ctx must be at least 1, got {n_ctx}")
        self.dataset = Dataset(data_dir)
        self.split, self.n_ctx = split, n_ctx
        self.shards = self.dataset.open_split(split)
        counts = np.array([max(s.size - 1, 0) // n_ctx for s in self.shards], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(counts)))
        self.total = int(self.starts[-1])

    def gather(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        shard_of = np.searchsorted(self.starts, indices, side="right") - 1
        out = np.empty((indices.size, self.n_ctx + 1), dtype=np.int64)
        for row, (i, s) in enumerate(zip(indices.tolist(), shard_of.tolist())):
            offset = (i - int(self.starts[s])) * self.n_ctx
            out[row] = self.shards[s][offset:offset + self.n_ctx + 1]
        t = torch.from_numpy(out)
        return t[:, :-1], t[:, 1:]


class ShardLoader:
    """Shuffled (x, y) batches of shape (batch_size, n_ctx), int64, forever, epoch after epoch."""

    def __init__(self, data_dir: str | os.PathLike, split: str = "train", *, batch_size: int, n_ctx: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}")
        self.windows = _Windows(data_dir, split, n_ctx)
        self.batch_size, self.n_ctx, self.seed = batch_size, n_ctx, seed
        self.rank, self.world_size = rank, world_size
        self.per_rank = self.windows.total // world_size  # equal on every rank; the rest sit out
        self.batches_per_epoch = self.per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise DataError(
                f"{data_dir}: the {split!r} split has {self.windows.total} windows of {n_ctx + 1} tokens, "
                f"fewer than one batch of {batch_size} per process x {world_size}; use more data, a "
                f"smaller batch or a shorter context"
            )
        self.epoch = 0
        self.batch = 0  # batches already taken in this epoch
        self._order: np.ndarray | None = None

    def _epoch_order(self) -> np.ndarray:
        if self._order is None:
            rng = np.random.default_rng([self.seed, self.epoch])
            perm = rng.permutation(self.windows.total)
            self._order = perm[self.rank::self.world_size][: self.per_rank]
        return self._order

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batch == self.batches_per_epoch:
            self.epoch, self.batch, self._order = self.epoch + 1, 0, None
        order = self._epoch_order()
        idx = order[self.batch * self.batch_size:(self.batch + 1) * self.batch_size]
        self.batch += 1
        return self.windows.gather(idx)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed, "batch_size": self.batch_size,
                "n_ctx": self.n_ctx, "rank": self.rank, "world_size": self.world_size,
                "split": self.windows.split, "dataset": self.windows.dataset.fingerprint}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "batch_size", "n_ctx", "rank", "world_size", "split", "dataset"):
            mine = self.state_dict()[key]
            if state.get(key) != mine:
                raise DataError(f"loader state was saved with {key}={state.get(key)!r} but this loader has "
                                f"{mine!r}; resume with the same data and settings")
        if not 0 <= state["batch"] <= self.batches_per_epoch:
            raise DataError(f"loader state batch {state['batch']} is outside the epoch's {self.batches_per_epoch}")
        self.epoch, self.batch, self._order = int(state["epoch"]), int(state["batch"]), None


class ValLoader:
    """The first `max_windows` windows of the validation split (all of them when None), in order,
    in batches (the last may be smaller). Iterable any number of times, always the same batches.

    The windows are the same whatever the number of ranks: rank r takes windows r, r + world_size,
    ... of them. Every rank yields the same number of batches of the same shapes (a rank that
    stopped early would leave the others waiting in a collective, and FSDP needs every rank in
    every forward pass): a rank whose share is one short gets a padding row, a copy of window 0
    whose targets are all IGNORE_INDEX, so it counts for nothing in a mean over target tokens.
    Hence the mean loss over all ranks' target tokens is the mean over exactly those windows.
    """

    IGNORE_INDEX = -100  # the model's loss skips these targets

    def __init__(self, data_dir: str | os.PathLike, split: str = "val", *, batch_size: int, n_ctx: int,
                 rank: int = 0, world_size: int = 1, max_windows: int | None = None) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}")
        if max_windows is not None and max_windows < 1:
            raise DataError(f"max_windows must be at least 1, got {max_windows}")
        self.windows = _Windows(data_dir, split, n_ctx)
        self.batch_size = batch_size
        total = self.windows.total
        if total == 0:
            raise DataError(f"{data_dir}: the {split!r} split has no window of {n_ctx + 1} tokens within "
                            f"one shard; use a shorter context, or prepare more validation data")
        self.used = total if max_windows is None else min(total, max_windows)
        per_rank = -(-self.used // world_size)
        wanted = np.arange(per_rank, dtype=np.int64) * world_size + rank
        self.real = wanted < self.used  # False: a padding row
        self.indices = np.where(self.real, wanted, 0)

    def __len__(self) -> int:
        return -(-self.indices.size // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.indices.size, self.batch_size):
            stop = start + self.batch_size
            x, y = self.windows.gather(self.indices[start:stop])
            padding = torch.from_numpy(~self.real[start:stop])
            if padding.any():
                y = y.clone()
                y[padding] = self.IGNORE_INDEX
            yield x, y
