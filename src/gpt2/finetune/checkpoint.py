"""Fine-tuned models in the Hugging Face layout.

    one classification / entailment task  -> GPT2ForSequenceClassification (score.weight,
                                             num_labels, id2label, label2id, pad_token_id)
    one similarity task                   -> the same layout; transformers reads one ordering
                                             only, our loader adds both (GPT-1's transformation)
    one multiple-choice task              -> GPT2DoubleHeadsModel (multiple_choice_head.summary)
    lm / instruct                         -> GPT2LMHeadModel
    several tasks (multi-task)            -> GPT2LMHeadModel + heads.<task>.* tensors, which
                                             transformers ignores

`gpt2_tasks` in config.json lists each task (type, labels, ...), so our loader rebuilds the
model exactly; a GPT2ForSequenceClassification that transformers saved loads too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import CONFIG_FILE, HEAD_PREFIXES, resolve_checkpoint, weights_files, write_checkpoint
from ..errors import CheckpointError, FinetuneError
from ..loading import load
from .model import TaskInfo, TaskModel

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

TASKS_KEY = "gpt2_tasks"


def task_state_parts(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A TaskModel state dict split into the body's (GPT2 names) and the heads' (`<task>.<name>`)."""
    lm = {k.removeprefix("lm."): v for k, v in state.items() if k.startswith("lm.")}
    heads = {k.removeprefix("heads."): v for k, v in state.items() if k.startswith("heads.")}
    return lm, heads


def _head_layout(tasks: list[TaskInfo], heads: dict[str, torch.Tensor], dropout: float
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The head tensors (transformers' names where one class fits) and config keys."""
    config: dict[str, Any] = {TASKS_KEY: [t.to_dict() for t in tasks]}
    if not any(t.has_head for t in tasks):
        return {}, config
    if len(tasks) > 1:
        return {f"heads.{k}": v for k, v in heads.items()}, config
    (task,) = tasks
    if task.type == "multiple_choice":
        config |= {"architectures": ["GPT2DoubleHeadsModel"], "num_labels": 1, "summary_type": "cls_index",
                   "summary_use_proj": True, "summary_proj_to_labels": True, "summary_activation": None,
                   "summary_first_dropout": dropout}
        return {"multiple_choice_head.summary.weight": heads[f"{task.name}.summary.weight"],
                "multiple_choice_head.summary.bias": heads[f"{task.name}.summary.bias"]}, config
    labels = [0] if task.regression else task.labels
    config |= {
        "architectures": ["GPT2ForSequenceClassification"],
        "id2label": {str(i): str(label) for i, label in enumerate(labels)},
        "label2id": {str(label): i for i, label in enumerate(labels)},
        "problem_type": "regression" if task.regression else "single_label_classification",
    }
    return {"score.weight": heads[f"{task.name}.score.weight"]}, config


def save_task_model(model: TaskModel, directory: str | os.PathLike[str], tokenizer: Tokenizer | None = None,
                    *, pad_token_id: int | None = None, lm_state: dict[str, torch.Tensor] | None = None,
                    head_state: dict[str, torch.Tensor] | None = None) -> None:
    """Write the model (and its tokenizer) as a checkpoint directory; see the module docstring.
    pad_token_id (default: the tokenizer's <|endoftext|>) is for transformers' pooling;
    lm_state/head_state (task_state_parts of a gathered state dict) replace the model's own."""
    if lm_state is None or head_state is None:
        lm_state, head_state = task_state_parts(model.state_dict())
    dropout = next((h.dropout.p for h in model.heads.values()), 0.1)
    tensors, config = _head_layout(list(model.tasks.values()), head_state, dropout)
    if pad_token_id is None and tokenizer is not None:
        pad_token_id = tokenizer.eot_token
    if pad_token_id is not None:
        # transformers pools at the rightmost token that is not the pad id: our sequences end in
        # the extract token, so <|endoftext|> as the pad id is right unless extract *is* eot
        # (new_tokens = false), where it pools one token early; see the README.
        config["pad_token_id"] = pad_token_id
    write_checkpoint(model.lm.config, lm_state, directory, head_tensors=tensors, extra_config=config)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory, model_max_length=model.lm.config.n_ctx)


def _read_config_json(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory / CONFIG_FILE}: cannot read ({e})") from None


def _tasks_of(config: dict[str, Any], source: str) -> list[TaskInfo]:
    """The tasks a checkpoint holds: ours from `gpt2_tasks`, else from transformers' classes."""
    if TASKS_KEY in config:
        try:
            return [TaskInfo.from_dict(d) for d in config[TASKS_KEY]]
        except (KeyError, TypeError, AttributeError):
            raise CheckpointError(f"{source}: malformed {TASKS_KEY}") from None
    arch = (config.get("architectures") or ["GPT2LMHeadModel"])[0]
    if arch == "GPT2ForSequenceClassification":
        id2label = config.get("id2label") or {}
        # transformers leaves id2label (and num_labels) out of config.json when they are its
        # defaults: two labels, LABEL_0 and LABEL_1.
        n = len(id2label) or int(config.get("num_labels", 2))
        labels = [id2label.get(str(i), f"LABEL_{i}") for i in range(n)]
        regression = config.get("problem_type") == "regression" or len(labels) == 1
        return [TaskInfo("classification", "classification", None if regression else labels, regression)]
    if arch == "GPT2DoubleHeadsModel":
        return [TaskInfo("multiple_choice", "multiple_choice")]
    return [TaskInfo("lm", "lm")]


def _head_tensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for path in weights_files(directory):
        if path.suffix != ".safetensors":
            continue  # pytorch_model.bin heads are not read (never unpickled here)
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                if key.startswith(HEAD_PREFIXES):
                    found[key] = f.get_tensor(key)
    return found


def load_task_model(name_or_dir: str | os.PathLike[str], *, device: torch.device | str | None = None,
                    dtype: torch.dtype | str | None = None) -> TaskModel:
    """A fine-tuned checkpoint as a TaskModel in eval mode (heads included)."""
    directory = resolve_checkpoint(name_or_dir)
    config_json = _read_config_json(directory)
    tasks = _tasks_of(config_json, str(directory))
    lm, _ = load(directory, device=device, dtype=dtype)  # the one way in, for the body
    model = TaskModel(lm, tasks, head_dropout=0.0)
    tensors = _head_tensors(directory)
    state: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if key.startswith("heads."):
            state[key] = tensor
        elif key == "score.weight" and len(tasks) == 1:
            state[f"heads.{tasks[0].name}.score.weight"] = tensor
        elif key.startswith("multiple_choice_head.summary.") and len(tasks) == 1:
            state[f"heads.{tasks[0].name}.summary.{key.rsplit('.', 1)[1]}"] = tensor
    expected = {k for k in model.state_dict() if k.startswith("heads.")}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        what = f"missing head tensors {missing[:3]}" if missing else f"unexpected head tensors {unexpected[:3]}"
        raise CheckpointError(f"{directory}: {what} for tasks {[t.name for t in tasks]}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(model.state_dict()[key].shape):
            raise CheckpointError(f"{directory}: head tensor {key} has shape {tuple(tensor.shape)}, "
                                  f"expected {tuple(model.state_dict()[key].shape)}")
    weight = lm.lm_head.weight
    model.load_state_dict({k: v.to(device=weight.device, dtype=weight.dtype) for k, v in state.items()},
                          strict=False)
    return model.eval()


def require_head(model: TaskModel, task: str | None) -> TaskInfo:
    """The task `gpt2 predict` / `gpt2 eval` should use: the named one, or the only one."""
    if task is None:
        if len(model.tasks) != 1:
            raise FinetuneError(f"the model has {len(model.tasks)} tasks ({', '.join(model.tasks)}): name one "
                                "with --task")
        return next(iter(model.tasks.values()))
    if task not in model.tasks:
        raise FinetuneError(f"the model has no task {task!r}; it has: {', '.join(model.tasks)}")
    return model.tasks[task]
