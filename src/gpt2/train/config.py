"""The training configuration: a tree of dataclasses, read from TOML and validated on load.

    [model]      what to train: a preset (optionally resized) or `init_from` a checkpoint
    [data]       the prepared dataset (`gpt2 prepare` output) and the sequence length
    [optim]      AdamW and the learning-rate schedule (linear warmup, cosine decay)
    [train]      steps, batch sizes, precision, compilation, seed, fault tolerance
    [eval]       periodic validation loss and sample generations
    [checkpoint] how often to save and how many to keep
    [log]        progress line, metrics file, TensorBoard

Every key of a TOML file or of a `--section.key=value` override must name a field here; an
unknown key or a value of the wrong type or range is a ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..settings import Range, apply_overrides, build, num, read_toml
from ..settings import numeric_ranges as settings_numeric_ranges


BIG = 10**9  # the upper bound of counts of steps and batches: far beyond any real run


@dataclass
class ModelConfig:
    preset: str = "gpt2"  # gpt2, gpt2-medium, gpt2-large, gpt2-xl, gpt2-mini, ...
    init_from: str | None = None  # continued training: a hub name ("gpt2") or a checkpoint dir
    n_layer: int | None = num(None, 1, 1000)  # overrides of the preset's shape (new models only)
    n_head: int | None = num(None, 1, 1000)
    n_embd: int | None = num(None, 1, 100_000)
    n_ctx: int | None = num(None, 1, 1_000_000)
    dropout: float = num(0.0, 0, 1, high_open=True)
    bias: bool = True


@dataclass
class DataConfig:
    dir: str = ""  # a directory written by `gpt2 prepare`
    seq_len: int | None = num(None, 1, 1_000_000)  # tokens per training window; default: the model's n_ctx


@dataclass
class OptimConfig:
    lr: float = num(6e-4, 0, 10, low_open=True)  # peak learning rate
    min_lr_ratio: float = num(0.1, 0, 1)  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = num(700, 0, BIG)
    decay_steps: int | None = num(None, 1, BIG)  # default: train.max_steps
    weight_decay: float = num(0.1, 0, 100)  # applied to 2-D weights only (not biases, LayerNorm)
    beta1: float = num(0.9, 0, 1, high_open=True)
    beta2: float = num(0.95, 0, 1, high_open=True)
    eps: float = num(1e-8, 0, 1, low_open=True)
    grad_clip: float = num(1.0, 0, 1e9)  # max global gradient norm; 0 disables clipping
    fused: bool | None = None  # fused AdamW kernel; default: on (CUDA and CPU)


@dataclass
class TrainConfig:
    max_steps: int = num(19073, 1, BIG)  # optimizer steps (19,073 x 0.5M tokens = 10B tokens)
    batch_size: int = num(480, 1, 10**7)  # sequences per optimizer step, over all ranks
    micro_batch_size: int = num(16, 1, 10**6)  # sequences per forward/backward on one rank
    seed: int = num(1337, 0, 2**32 - 1)
    device: str = "auto"  # auto: cuda when available, else cpu; or cpu, cuda, cuda:N, mps
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model
    activation_checkpointing: bool = False  # recompute activations in backward to save memory
    distributed: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: DDP, or FSDP2 for big models
    max_nonfinite_steps: int = num(5, 1, 10**6)  # abort after this many non-finite losses in a row
    # Resuming with a changed optimizer, schedule, batch, seed, precision or dropout setting does
    # not continue the same run, so it is refused unless this is true (RESUME_SENSITIVE below).
    allow_config_change: bool = False


@dataclass
class EvalConfig:
    interval: int = num(250, 0, BIG)  # steps between validation runs; 0 disables
    batches: int = num(20, 1, 10**6)  # the first batches x micro_batch_size validation windows, whatever the ranks
    samples: int = num(1, 0, 100)  # sample generations printed and logged at each evaluation
    sample_prompt: str = ""  # empty: start from <|endoftext|> (unconditional)
    sample_tokens: int = num(64, 1, 100_000)
    at_end: bool = True  # evaluate after the last step too


@dataclass
class CheckpointConfig:
    interval: int = num(1000, 0, BIG)  # steps between checkpoints; 0: only at the end
    keep_last: int = num(3, 1, 10**6)  # older checkpoints are deleted


@dataclass
class LogConfig:
    interval: int = num(10, 1, BIG)  # steps between progress lines / metric records
    tensorboard: bool = False  # also write TensorBoard events (needs `tensorboard`)


@dataclass
class RunConfig:
    run_dir: str = "runs/gpt2"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Settings whose change between a checkpoint and its resumption means the resumed run is not the
# run that was saved (other losses than an uninterrupted run would give). train.max_steps joins
# them when optim.decay_steps is unset, since the schedule then follows it.
RESUME_SENSITIVE = (
    "optim.lr", "optim.min_lr_ratio", "optim.warmup_steps", "optim.decay_steps", "optim.weight_decay",
    "optim.beta1", "optim.beta2", "optim.eps", "optim.grad_clip", "train.batch_size",
    "train.micro_batch_size", "train.seed", "train.dtype", "model.dropout", "data.seq_len",
)


def numeric_ranges() -> dict[str, Range | None]:
    """Every int/float setting of the training tree and its range (None: undeclared, a defect)."""
    return settings_numeric_ranges(RunConfig)


# ---------------------------------------------------------------------------------- loading


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML recipe (or start from the defaults), apply `section.key=value` overrides,
    and validate the result."""
    data: dict[str, Any] = {} if path is None else read_toml(path)
    source = "defaults" if path is None else str(path)
    config = build(RunConfig, apply_overrides(data, overrides or []), prefix="", source=source)
    validate(config, source)
    return config


def validate(c: RunConfig, source: str = "config") -> None:
    """Checks across fields (types and ranges were checked while building)."""

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key} {what}")

    need(bool(c.data.dir), "data.dir", "is required: a directory written by `gpt2 prepare`")
    need(bool(c.run_dir), "run_dir", "is required: the directory for checkpoints and logs")
    need(c.optim.decay_steps is None or c.optim.decay_steps >= c.optim.warmup_steps, "optim.decay_steps",
         f"({c.optim.decay_steps}) must be >= optim.warmup_steps ({c.optim.warmup_steps})")
