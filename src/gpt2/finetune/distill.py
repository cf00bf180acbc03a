"""Knowledge distillation: a student learns from the softened outputs of teachers (Hinton et
al. 2015), averaged over an ensemble as MT-DNN-2 (Liu et al. 2019) does, mixed with the hard
labels:

    loss = alpha * T^2 * KL(mean_t softmax(teacher_t / T) || softmax(student / T))
           + (1 - alpha) * task loss on the labels

For regression the soft target is the teachers' mean prediction (mean squared error); for an
`lm` task the same KL on every next-token distribution (DistilGPT2), teachers run alongside.
The classes' and choices' soft targets are computed once, before training, and cached in
RUN_DIR (they are a few numbers per example); next-token distributions are too big to cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from ..errors import FinetuneError
from ..fsutil import atomic_path
from .model import TaskInfo, TaskModel
from .predict import predict
from .tasks import Example

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

CACHE_FILE = "teacher-targets.safetensors"


def check_teacher(source: str, teacher: TaskModel, teacher_tok: Tokenizer, student: TaskInfo,
                  student_tok: Tokenizer) -> None:
    """A teacher must speak the student's vocabulary and know its task (type and labels)."""
    if teacher_tok.fingerprint != student_tok.fingerprint:
        raise FinetuneError(f"teacher {source}: its vocabulary ({teacher_tok.vocab_size:,} tokens) differs from "
                            f"the student's ({student_tok.vocab_size:,}); distillation needs the same tokenizer")
    if student.type == "lm":
        return
    info = teacher.tasks.get(student.name) or (next(iter(teacher.tasks.values())) if len(teacher.tasks) == 1 else None)
    if info is None or info.type != student.type or info.regression != student.regression:
        raise FinetuneError(f"teacher {source}: it has no {student.type} task {student.name!r} "
                            f"(its tasks: {', '.join(f'{t.name} ({t.type})' for t in teacher.tasks.values())})")
    if info.labels != student.labels:
        raise FinetuneError(f"teacher {source}: its labels {info.labels} are not the student's {student.labels}")


def _teacher_task(teacher: TaskModel, student: TaskInfo) -> str:
    return student.name if student.name in teacher.tasks else next(iter(teacher.tasks))


def soft_targets(teachers: Sequence[TaskModel], student: TaskInfo, examples: Sequence[Example], *,
                 temperature: float, batch_size: int, pad_id: int) -> torch.Tensor:
    """(N, classes) mean softened probabilities, or (N,) mean predictions for regression."""
    per_teacher = []
    for teacher in teachers:
        task = _teacher_task(teacher, student)
        preds = predict(teacher, task, examples, batch_size=batch_size, pad_id=pad_id, raw_logits=True)
        logits = torch.tensor([p.logits for p in preds], dtype=torch.float32)
        per_teacher.append(logits if student.regression else torch.softmax(logits / temperature, dim=-1))
    return torch.stack(per_teacher).mean(dim=0)


def cached_soft_targets(run_dir: Path, sources: Sequence[str], teachers: Sequence[TaskModel], student: TaskInfo,
                        examples: Sequence[Example], *, temperature: float, batch_size: int, pad_id: int
                        ) -> torch.Tensor:
    """soft_targets, read from RUN_DIR when computed before for the same teachers, data and T."""
    from safetensors.torch import load_file, save_file

    key = hashlib.sha256(json.dumps({
        "teachers": [str(Path(s).resolve()) for s in sources], "temperature": temperature,
        "examples": [e.sequences for e in examples]}).encode()).hexdigest()
    path = run_dir / CACHE_FILE
    if path.is_file():
        try:
            cached = load_file(str(path))
        except Exception:  # a damaged cache is recomputed, never trusted
            cached = {}
        if key in {k.removeprefix("targets-") for k in cached}:
            return cached[f"targets-{key}"]
    targets = soft_targets(teachers, student, examples, temperature=temperature, batch_size=batch_size,
                           pad_id=pad_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({f"targets-{key}": targets.contiguous()}, str(tmp))
    return targets


@torch.no_grad()
def teacher_lm_probs(teachers: Sequence[TaskModel], input_ids: torch.Tensor, *, temperature: float
                     ) -> torch.Tensor:
    """The teachers' mean softened next-token distributions (N, T, V) for an lm batch."""
    total = None
    for teacher in teachers:
        probs = torch.softmax(teacher.lm(input_ids).float() / temperature, dim=-1)
        total = probs if total is None else total + probs
    return total / len(teachers)
