"""Fine-tuning: GPT-1's task input transformations and heads, multi-task training (MT-DNN),
distillation, LoRA adapters in PEFT's format, instruction tuning.

    >>> from gpt2.finetune import finetune, load_finetune_recipe, load_task_model, predict
    >>> finetune(load_finetune_recipe("configs/finetune-authorship.toml", ["train.epochs=1"]))
    >>> model = load_task_model("runs/authorship/final")    # the body + a head per task
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .checkpoint import load_task_model, save_task_model
    from .config import FinetuneConfig, load_finetune_recipe
    from .model import TaskInfo, TaskModel
    from .predict import predict
    from .trainer import finetune

# The recipe reader is light; the rest imports torch, so every name loads on first use.
_LAZY = {"load_task_model": "checkpoint", "save_task_model": "checkpoint", "FinetuneConfig": "config",
         "load_finetune_recipe": "config", "TaskInfo": "model", "TaskModel": "model", "predict": "predict",
         "finetune": "trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
