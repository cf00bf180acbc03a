"""The fine-tuning recipe: a tree of dataclasses in the project's one config dialect (TOML,
`section.key=value` overrides, typed and ranged; gpt2.settings), with GPT-1's defaults.

    run_dir = "runs/authorship"
    [model]       init_from (a checkpoint, preset, hub id or "demo"), dropout, new task tokens
    [[tasks]]     name, type, train, valid, fields, ... (one table per task: several = MT-DNN)
    [train]       epochs or max_steps, batch sizes, auxiliary LM weight, task sampling, seed
    [optim]       AdamW, linear warm-up over warmup_fraction of training then linear decay
    [eval] [checkpoint] [log]   as in `gpt2 train`
    [lora]        r > 0 trains low-rank adapters (PEFT's format) instead of the whole body
    [distill]     teachers: soft targets from an ensemble of fine-tuned models
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..settings import Range, apply_overrides, build, num, read_toml
from ..settings import numeric_ranges as settings_numeric_ranges
from .tasks import DEFAULT_FIELDS, TASK_TYPES

BIG = 10**9


@dataclass
class TaskConfig:
    name: str = ""  # letters, digits, _; names the head and the metrics
    type: str = ""  # classification, entailment, similarity, multiple_choice, lm, instruct
    train: str = ""  # a JSONL or TSV file (relative paths: from the recipe's directory)
    valid: str | None = None  # validation file: metrics at each evaluation
    regression: bool | None = None  # similarity: default true when the labels are numbers
    max_length: int | None = num(None, 4, 1_000_000)  # tokens per sequence; default: the model's n_ctx
    fields: dict[str, str] = field(default_factory=dict)  # the task's field -> the file's name


@dataclass
class ModelConfig:
    init_from: str = "demo"  # a checkpoint directory, a preset/hub name, or demo
    dropout: float = num(0.1, 0, 1, high_open=True)  # GPT-1's residual/attention/embedding dropout
    head_dropout: float = num(0.1, 0, 1, high_open=True)  # GPT-1's classifier dropout
    # Add start/delim/extract tokens (new embedding rows, trained); false: <|endoftext|> plays all
    # three. Default: true, but false with LoRA (the base's vocabulary stays the adapter's).
    new_tokens: bool | None = None
    # A smaller student (distillation): keep only these blocks of the pre-trained model, e.g.
    # [0, 2, 4] of 6 as DistilBERT keeps one block in two. Empty: every block.
    layers: list[int] = num(list, 0, 10_000)


@dataclass
class TrainConfig:
    epochs: float = num(3.0, 0, 1000, low_open=True)  # GPT-1: 3
    max_steps: int | None = num(None, 1, BIG)  # overrides epochs
    batch_size: int = num(32, 1, 10**6)  # examples per optimizer step, over all ranks (GPT-1: 32)
    micro_batch_size: int = num(8, 1, 10**6)  # examples per forward/backward on one rank
    lm_weight: float = num(0.5, 0, 100)  # GPT-1's auxiliary LM loss weight; 0 switches it off
    task_sampling: Literal["proportional", "uniform", "temperature"] = "proportional"
    sampling_temperature: float = num(2.0, 0, 100, low_open=True)  # temperature: p ~ size^(1/T)
    left_pad: bool = False  # pad batches on the left (outputs are the same; for tests and servers)
    seed: int = num(1337, 0, 2**32 - 1)
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    distributed: Literal["ddp", "fsdp"] = "ddp"
    max_nonfinite_steps: int = num(5, 1, 10**6)
    allow_config_change: bool = False


@dataclass
class OptimConfig:
    lr: float = num(6.25e-5, 0, 10, low_open=True)  # GPT-1
    warmup_fraction: float = num(0.002, 0, 1)  # linear warm-up over this fraction of the steps (GPT-1: 0.2%)
    weight_decay: float = num(0.01, 0, 100)  # GPT-1's w = 0.01 (on 2-D weights only)
    beta1: float = num(0.9, 0, 1, high_open=True)
    beta2: float = num(0.999, 0, 1, high_open=True)
    eps: float = num(1e-8, 0, 1, low_open=True)
    grad_clip: float = num(1.0, 0, 1e9)
    fused: bool | None = None  # fused AdamW kernel; default: on (CUDA and CPU)


@dataclass
class EvalConfig:
    interval: int = num(0, 0, BIG)  # steps between validations; 0: once per epoch
    at_end: bool = True


@dataclass
class CheckpointConfig:
    interval: int = num(0, 0, BIG)  # steps between checkpoints; 0: only at the end
    keep_last: int = num(2, 1, 10**6)


@dataclass
class LogConfig:
    interval: int = num(10, 1, BIG)
    tensorboard: bool = False


@dataclass
class LoRASection:
    r: int = num(0, 0, 4096)  # 0: no adapters, the whole model is trained
    alpha: float = num(16.0, 0, 1e6, low_open=True)
    dropout: float = num(0.0, 0, 1, high_open=True)
    targets: list[str] = field(default_factory=lambda: ["c_attn"])


@dataclass
class DistillSection:
    teachers: list[str] = field(default_factory=list)  # fine-tuned checkpoints; empty: no distillation
    temperature: float = num(2.0, 0, 100, low_open=True)
    alpha: float = num(0.5, 0, 1)  # weight of the soft-target loss; 1 - alpha on the hard labels


@dataclass
class FinetuneConfig:
    run_dir: str = "runs/finetune"
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: list[TaskConfig] = field(default_factory=list)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lora: LoRASection = field(default_factory=LoRASection)
    distill: DistillSection = field(default_factory=DistillSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RESUME_SENSITIVE = (
    "optim.lr", "optim.warmup_fraction", "optim.weight_decay", "optim.beta1", "optim.beta2", "optim.eps",
    "optim.grad_clip", "train.batch_size", "train.micro_batch_size", "train.seed", "train.dtype",
    "train.lm_weight", "train.task_sampling", "train.epochs", "train.max_steps", "model.dropout",
    "model.head_dropout", "lora.r", "lora.alpha", "lora.dropout", "lora.targets", "distill.temperature",
    "distill.alpha",
)


def numeric_ranges() -> dict[str, Range | None]:
    return settings_numeric_ranges(FinetuneConfig) | {
        f"tasks.{k}": v for k, v in settings_numeric_ranges(TaskConfig).items()}


def _build_task(raw: Any, i: int, source: str, base: Path) -> TaskConfig:
    where = f"tasks[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a table ([[tasks]])")
    raw = dict(raw)
    fields = raw.pop("fields", {})
    task = build(TaskConfig, raw, prefix=f"{where}.", source=source)
    if not task.name:
        raise ConfigError(f"{source}: {where}.name is required")
    if not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", task.name):
        raise ConfigError(f"{source}: {where}.name {task.name!r}: use letters, digits and _ (starting with a letter)")
    if task.type not in TASK_TYPES:
        raise ConfigError(f"{source}: {where}.type {task.type!r} does not exist; choose one of: "
                          f"{', '.join(TASK_TYPES)}")
    if not task.train:
        raise ConfigError(f"{source}: {where}.train is required: the task's training file")
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigError(f"{source}: {where}.fields must be a table of names, e.g. {{text = \"sentence\"}}")
    unknown = sorted(set(fields) - set(DEFAULT_FIELDS[task.type]))
    if unknown:
        raise ConfigError(f"{source}: {where}.fields.{unknown[0]} is not a field of a {task.type} task "
                          f"({', '.join(DEFAULT_FIELDS[task.type])})")
    if task.regression and task.type != "similarity":
        raise ConfigError(f"{source}: {where}.regression applies to similarity tasks only")
    task.fields = dict(fields)
    task.train = task_file(task.train, base)
    if task.valid:
        task.valid = task_file(task.valid, base)
    return task


DEMO_TASKS_DIR = Path(__file__).resolve().parent.parent / "assets" / "tasks"


def task_file(name: str, base: Path) -> str:
    """A task file's path: `demo:NAME` is a bundled demo task file (assets/tasks/NAME),
    `hf:PATH[:CONFIG]:SPLIT` a Hugging Face dataset, any other relative path is from the
    recipe's directory, wherever the command runs."""
    if name.startswith("demo:"):
        return str(DEMO_TASKS_DIR / name.removeprefix("demo:"))
    if name.startswith("hf:"):  # a Hugging Face dataset (finetune.data.read_records)
        return name
    return str(base / Path(name).expanduser())


def load_finetune_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> FinetuneConfig:
    """Read a fine-tuning recipe, apply `section.key=value` overrides, validate."""
    data: dict[str, Any] = {} if path is None else read_toml(path)
    source = "defaults" if path is None else str(path)
    base = Path(".") if path is None else Path(path).parent
    data = apply_overrides(data, overrides or [])
    raw_tasks = data.pop("tasks", [])
    if not isinstance(raw_tasks, list):
        raise ConfigError(f"{source}: tasks must be a list of tables ([[tasks]])")
    config = build(FinetuneConfig, data, prefix="", source=source)
    config.tasks = [_build_task(t, i, source, base) for i, t in enumerate(raw_tasks)]
    if not config.tasks:
        raise ConfigError(f"{source}: no [[tasks]]: a recipe names at least one task (name, type, train)")
    names = [t.name for t in config.tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: two tasks are called {next(n for n in names if names.count(n) > 1)!r}")
    if not config.run_dir:
        raise ConfigError(f"{source}: run_dir is required")
    if config.lora.r:
        if config.model.new_tokens:
            raise ConfigError(f"{source}: model.new_tokens=true adds embedding rows, which a LoRA adapter "
                              "cannot carry; set it to false (<|endoftext|> marks the tasks) or lora.r=0")
        if config.train.distributed == "fsdp":
            raise ConfigError(f"{source}: lora with train.distributed=fsdp is not supported; use ddp")
    if len(set(config.model.layers)) != len(config.model.layers):
        raise ConfigError(f"{source}: model.layers must list distinct block numbers (0, 1, ...)")
    if config.model.new_tokens is None:
        config.model.new_tokens = not config.lora.r
    if config.distill.teachers and len(config.tasks) != 1:
        raise ConfigError(f"{source}: distill.teachers works with one task per recipe")
    return config
