"""A GPT-2 body shared by one head per task (MT-DNN), plus the language-model head that gives
GPT-1's auxiliary loss and the `lm` / `instruct` tasks.

    h = lm.hidden_states(ids)                     (N, T, C)  N = examples x sequences
    pooled = h[row, extract position]             (B, S, C)
    logits = heads[task](pooled)                  (B, labels) or (B, choices) or (B,) regression
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import FinetuneError
from ..model import GPT2
from .batching import IGNORE, Batch
from .heads import ClassificationHead, MultipleChoiceHead
from .losses import distill_loss, lm_distill_loss, task_loss_of
from .tasks import HEAD_TYPES, TASK_TYPES

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass
class TaskInfo:
    """What a saved model knows about one of its tasks (config.json's `gpt2_tasks`)."""

    name: str
    type: str
    labels: list[Any] | None = None  # class index -> label; None for regression, choices, lm
    regression: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. max_length, new_tokens

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise FinetuneError(f"task name {self.name!r}: use letters, digits and _ (starting with a letter)")
        if self.type not in TASK_TYPES:
            raise FinetuneError(f"task {self.name}: type {self.type!r} does not exist; choose one of: "
                                f"{', '.join(TASK_TYPES)}")
        needs_labels = self.type in ("classification", "entailment", "similarity") and not self.regression
        if needs_labels and (not self.labels or len(self.labels) < 2):
            raise FinetuneError(f"task {self.name}: a classifier needs at least two labels")

    @property
    def has_head(self) -> bool:
        return self.type in HEAD_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "labels": self.labels, "regression": self.regression,
                **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInfo:
        d = dict(d)
        return cls(d.pop("name"), d.pop("type"), d.pop("labels", None), bool(d.pop("regression", False)), d)


class TaskModel(nn.Module):
    def __init__(self, lm: GPT2, tasks: Sequence[TaskInfo], *, head_dropout: float = 0.1) -> None:
        super().__init__()
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise FinetuneError(f"two tasks are called {next(n for n in names if names.count(n) > 1)!r}")
        self.lm = lm
        self.tasks = {t.name: t for t in tasks}
        self.heads = nn.ModuleDict()
        n_embd = lm.config.n_embd
        for t in tasks:
            if t.type == "multiple_choice":
                self.heads[t.name] = MultipleChoiceHead(n_embd, head_dropout)
            elif t.has_head:
                self.heads[t.name] = ClassificationHead(n_embd, 1 if t.regression else len(t.labels), head_dropout)
        self.heads.to(device=lm.lm_head.weight.device, dtype=lm.lm_head.weight.dtype)

    @property
    def config(self):
        return self.lm.config

    def forward(self, task: str, batch: Batch, *, lm_logits: bool = False
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(head logits or None for lm/instruct tasks, LM logits (N, T, V) when asked)."""
        h = self.lm.hidden_states(batch.input_ids, attention_mask=batch.attention_mask,
                                  position_ids=batch.position_ids)
        logits = None
        if self.tasks[task].has_head:
            rows = torch.arange(h.shape[0], device=h.device)
            pooled = h[rows, batch.extract].view(batch.n_examples, batch.n_seq, h.shape[-1])
            logits = self.heads[task](pooled)
            if self.tasks[task].regression:
                logits = logits.squeeze(-1)
        return logits, (self.lm.lm_head(h) if lm_logits else None)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Distinct parameters (the tied head counts once); trainable ones only when asked (LoRA)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @property
    def transformer(self) -> nn.Module:
        """The body's modules (FSDP shards its blocks, as for GPT2)."""
        return self.lm.transformer

    def loss(self, task: str, batch: Batch, *, lm_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
        return compute_loss(self, self.tasks[task], batch, lm_weight=lm_weight)


def compute_loss(model: nn.Module, info: TaskInfo, batch: Batch, *, lm_weight: float = 0.0,
                 distill: tuple[float, float] | None = None, teacher_lm: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """The task loss (+ lm_weight x the language-model loss on the same sequences, GPT-1's
    auxiliary objective), and its parts for logging. `model` is a TaskModel or its DDP/FSDP
    wrapper (called, so that the wrapper's hooks run). `distill` = (alpha, temperature) mixes
    in the soft targets: batch.soft for a head, `teacher_lm` (N, T, V) for an lm task."""
    want_lm = not info.has_head or lm_weight > 0
    logits, lm = model(info.name, batch, lm_logits=want_lm)
    parts: dict[str, float] = {}
    total = torch.zeros((), device=batch.input_ids.device)
    if logits is not None:
        task_loss = task_loss_of(info, logits, batch.labels)
        parts["task_loss"] = float(task_loss.detach())
        if distill is not None and batch.soft is not None:
            alpha, temperature = distill
            soft_loss = distill_loss(logits, batch.soft, temperature=temperature, regression=info.regression)
            parts["distill_loss"] = float(soft_loss.detach())
            task_loss = alpha * soft_loss + (1 - alpha) * task_loss
        total = total + task_loss
    if lm is not None:
        lm_loss = F.cross_entropy(lm.float().flatten(0, 1), batch.lm_targets.flatten(), ignore_index=IGNORE)
        parts["lm_loss"] = float(lm_loss.detach())
        if not info.has_head and distill is not None and teacher_lm is not None:
            alpha, temperature = distill
            soft_loss = lm_distill_loss(lm, teacher_lm, batch.lm_targets, temperature=temperature)
            parts["distill_loss"] = float(soft_loss.detach())
            lm_loss = alpha * soft_loss + (1 - alpha) * lm_loss
        total = total + (lm_loss if not info.has_head else lm_weight * lm_loss)
    return total, parts
