"""Predictions of a fine-tuned model, batched, and their GLUE metrics against gold labels.

    model = load_task_model("runs/authorship/final")
    preds = predict(model, "authorship", examples)      # examples from data.read_task
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .batching import collate
from .metrics import classification_metrics, regression_metrics
from .model import TaskModel
from .tasks import Example


@dataclass
class Prediction:
    """One example's prediction: a class index (classes), a choice index (multiple choice) or a
    value (regression), with the class or choice probabilities."""

    index: int | None
    value: float | None
    probabilities: list[float] | None
    logits: list[float] | float | None = None  # the head's raw output (for distillation)

    def to_dict(self, labels: Sequence[Any] | None) -> dict[str, Any]:
        if self.value is not None:
            return {"value": self.value}
        out: dict[str, Any] = {}
        if labels is not None:
            out["label"] = labels[self.index]
            out["probabilities"] = {str(label): p for label, p in zip(labels, self.probabilities)}
        else:
            out["choice"] = self.index
            out["probabilities"] = self.probabilities
        return out


@torch.no_grad()
def predict(
    model: TaskModel,
    task: str,
    examples: Sequence[Example],
    *,
    batch_size: int = 16,
    pad_id: int = 0,
    on_batch: Callable[[int], None] | None = None,
    raw_logits: bool = False,
) -> list[Prediction]:
    """Predictions for `examples` (their labels are not read), in order. Sorting by length
    keeps batches tight; the results come back in the input order."""
    info = model.tasks[task]
    device = model.lm.lm_head.weight.device
    order = sorted(range(len(examples)), key=lambda i: max(map(len, examples[i].sequences)))
    out: list[Prediction | None] = [None] * len(examples)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate([Example(examples[i].sequences, None) for i in chunk], pad_id).to(device)
            logits, _ = model(task, batch)
            logits = logits.float().cpu()
            for row, i in enumerate(chunk):
                raw = logits[row].tolist() if raw_logits else None
                if info.regression:
                    out[i] = Prediction(None, float(logits[row]), None, raw)
                else:
                    probs = torch.softmax(logits[row], dim=-1)
                    out[i] = Prediction(int(probs.argmax()), None, probs.tolist(), raw)
            if on_batch is not None:
                on_batch(len(chunk))
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def score(model: TaskModel, task: str, predictions: Sequence[Prediction], examples: Sequence[Example]
          ) -> dict[str, float]:
    """The task's metrics: accuracy, macro F1, Matthews correlation; Pearson, Spearman, MSE."""
    if model.tasks[task].regression:
        return regression_metrics([p.value for p in predictions], [float(e.label) for e in examples])
    return classification_metrics([p.index for p in predictions], [int(e.label) for e in examples])
