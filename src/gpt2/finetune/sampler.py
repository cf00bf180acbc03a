"""Which task, and which examples, each optimizer step trains on (MT-DNN's multi-task schedule).

Each step draws one task: in proportion to its size (MT-DNN's default), uniformly, or with
temperature T (probability ~ size^(1/T), between the two). The step's batch_size examples come
from that task's current epoch, a fresh permutation each epoch; every rank and every
micro-batch of the step takes its own slice. Everything is a function of the seed and the
state (per-task epoch and position, the step count), so a resumed run draws what an
uninterrupted one would, on any rank.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .batching import Batch, collate
from .tasks import Example


def task_probabilities(sizes: Sequence[int], mode: str, temperature: float = 2.0) -> list[float]:
    if mode == "uniform":
        weights = [1.0] * len(sizes)
    elif mode == "temperature":
        weights = [n ** (1.0 / temperature) for n in sizes]
    else:  # proportional
        weights = [float(n) for n in sizes]
    total = sum(weights)
    return [w / total for w in weights]


class TaskSampler:
    def __init__(
        self,
        tasks: dict[str, list[Example]],
        *,
        batch_size: int,
        micro_batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        pad_id: int,
        mode: str = "proportional",
        temperature: float = 2.0,
        left_pad: bool = False,
    ) -> None:
        assert batch_size % (micro_batch_size * world_size) == 0
        self.names = list(tasks)
        self.tasks = tasks
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size
        self.rank, self.world_size, self.seed, self.pad_id = rank, world_size, seed, pad_id
        self.left_pad = left_pad
        self.probabilities = torch.tensor(task_probabilities([len(tasks[n]) for n in self.names], mode, temperature),
                                          dtype=torch.float64)
        self.micro_per_step = batch_size // (micro_batch_size * world_size)
        self.step = 0  # optimizer steps drawn so far
        self.micro = 0  # micro-batches of the current step already handed out
        self.epoch = {n: 0 for n in self.names}
        self.position = {n: 0 for n in self.names}
        self._current: tuple[str, list[int]] | None = None

    def steps_per_epoch(self) -> float:
        """Optimizer steps that see every example once (over all tasks), as a float."""
        return sum(len(v) for v in self.tasks.values()) / self.batch_size

    def _order(self, name: str, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.names.index(name) * 7919 + epoch)
        return torch.randperm(len(self.tasks[name]), generator=g).tolist()

    def _draw_step(self) -> tuple[str, list[int]]:
        """The step's task and the indices of its batch_size examples (wrapping into the next epoch)."""
        g = torch.Generator().manual_seed(self.seed * 31 + self.step)
        name = self.names[int(torch.multinomial(self.probabilities, 1, generator=g))] if len(self.names) > 1 \
            else self.names[0]
        picked: list[int] = []
        while len(picked) < self.batch_size:
            order = self._order(name, self.epoch[name])
            take = order[self.position[name] : self.position[name] + self.batch_size - len(picked)]
            picked += take
            self.position[name] += len(take)
            if self.position[name] >= len(order):
                self.epoch[name] += 1
                self.position[name] = 0
        return name, picked

    def next_batch(self) -> tuple[str, Batch]:
        """This rank's next micro-batch: (task name, batch)."""
        if self.micro == 0:
            self._current = self._draw_step()
        name, picked = self._current
        start = (self.micro * self.world_size + self.rank) * self.micro_batch_size
        examples = [self.tasks[name][i] for i in picked[start : start + self.micro_batch_size]]
        self.micro += 1
        if self.micro == self.micro_per_step:
            self.micro = 0
            self.step += 1
        return name, collate(examples, self.pad_id, left_pad=self.left_pad)

    def state_dict(self) -> dict[str, Any]:
        assert self.micro == 0, "saved between steps only"
        return {"step": self.step, "epoch": dict(self.epoch), "position": dict(self.position)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["epoch"]) != set(self.names):
            raise ValueError(f"the checkpoint's tasks {sorted(state['epoch'])} are not this recipe's "
                             f"{sorted(self.names)}")
        self.step, self.micro = state["step"], 0
        self.epoch, self.position = dict(state["epoch"]), dict(state["position"])


def total_steps(n_examples: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * n_examples / batch_size))
