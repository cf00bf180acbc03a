"""The fine-tuning losses: a head's task loss, and distillation's soft-target losses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .batching import IGNORE

if TYPE_CHECKING:
    from .model import TaskInfo


def task_loss_of(info: TaskInfo, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over classes or choices; mean squared error for regression."""
    if info.regression:
        return F.mse_loss(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def distill_loss(student_logits: torch.Tensor, soft: torch.Tensor, *, temperature: float,
                 regression: bool) -> torch.Tensor:
    """The soft-target part of the loss (already scaled by T^2 for classes and choices)."""
    if regression:
        return F.mse_loss(student_logits.float(), soft.float())
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return F.kl_div(log_q, soft.float(), reduction="batchmean") * temperature**2


def lm_distill_loss(student_lm: torch.Tensor, teacher_probs: torch.Tensor, targets: torch.Tensor, *,
                    temperature: float) -> torch.Tensor:
    """KL on the next-token distributions of the positions that have a target (N, T, V)."""
    keep = targets != IGNORE
    log_q = F.log_softmax(student_lm.float()[keep] / temperature, dim=-1)
    return F.kl_div(log_q, teacher_probs.float()[keep], reduction="batchmean") * temperature**2
