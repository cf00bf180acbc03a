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
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class ModelConfig:
    preset: str = "gpt2"  # gpt2, gpt2-medium, gpt2-large, gpt2-xl, gpt2-mini, ...
    init_from: str | None = None  # continued training: a hub name ("gpt2") or a checkpoint dir
    n_layer: int | None = None  # overrides of the preset's shape (new models only)
    n_head: int | None = None
    n_embd: int | None = None
    n_ctx: int | None = None
    dropout: float = 0.0
    bias: bool = True


@dataclass
class DataConfig:
    dir: str = ""  # a directory written by `gpt2 prepare`
    seq_len: int | None = None  # tokens per training window; default: the model's n_ctx


@dataclass
class OptimConfig:
    lr: float = 6e-4  # peak learning rate
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 700
    decay_steps: int | None = None  # default: train.max_steps
    weight_decay: float = 0.1  # applied to 2-D weights only (not biases, LayerNorm)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    fused: bool | None = None  # fused AdamW kernel; default: on (CUDA and CPU)


@dataclass
class TrainConfig:
    max_steps: int = 19073  # optimizer steps (19,073 x 0.5M tokens = 10B tokens)
    batch_size: int = 480  # sequences per optimizer step, over all ranks
    micro_batch_size: int = 16  # sequences per forward/backward on one rank
    seed: int = 1337
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model
    activation_checkpointing: bool = False  # recompute activations in backward to save memory
    distributed: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: DDP, or FSDP2 for big models
    max_nonfinite_steps: int = 5  # abort after this many non-finite losses in a row


@dataclass
class EvalConfig:
    interval: int = 250  # steps between validation runs; 0 disables
    batches: int = 20  # validation batches per run
    samples: int = 1  # sample generations printed and logged at each evaluation
    sample_prompt: str = ""  # empty: start from <|endoftext|> (unconditional)
    sample_tokens: int = 64
    at_end: bool = True  # evaluate after the last step too


@dataclass
class CheckpointConfig:
    interval: int = 1000  # steps between checkpoints; 0: only at the end
    keep_last: int = 3  # older checkpoints are deleted


@dataclass
class LogConfig:
    interval: int = 10  # steps between progress lines / metric records
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


# ---------------------------------------------------------------------------------- loading


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML recipe (or start from the defaults), apply `section.key=value` overrides,
    and validate the result."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read ({e})") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML ({e})") from None
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    config = _build(RunConfig, data, prefix="", source=source)
    validate(config, source)
    return config


def parse_override(item: str) -> tuple[str, Any]:
    """`optim.lr=3e-4` -> ("optim.lr", 0.0003). Values are TOML values; bare words are strings."""
    item = item.removeprefix("--")
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string such as run_dir=runs/x
    return key.strip(), value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, last = key.split(".")
    node = data
    for s in sections:
        node = node.setdefault(s, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {s} is not a section")
    node[last] = value


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {prefix + key!r} (known in this section: {', '.join(sorted(known))})"
            )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, data[f.name], prefix + f.name + ".", source)
        else:
            kwargs[f.name] = _check_type(data[f.name], hint, prefix + f.name, source)
    return cls(**kwargs)


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key, source)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


def validate(c: RunConfig, source: str = "config") -> None:
    """Range checks across fields (types were checked while building)."""

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key} {what}")

    need(c.optim.lr > 0, "optim.lr", f"must be positive, got {c.optim.lr}")
    need(0 <= c.optim.min_lr_ratio <= 1, "optim.min_lr_ratio", "must be in [0, 1]")
    need(c.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0")
    need(c.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    need(0 <= c.optim.beta1 < 1 and 0 <= c.optim.beta2 < 1, "optim.beta1/beta2", "must be in [0, 1)")
    need(c.optim.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0 disables clipping)")
    need(c.train.max_steps > 0, "train.max_steps", "must be positive")
    need(c.train.batch_size > 0, "train.batch_size", "must be positive")
    need(c.train.micro_batch_size > 0, "train.micro_batch_size", "must be positive")
    need(c.train.max_nonfinite_steps > 0, "train.max_nonfinite_steps", "must be positive")
    need(c.eval.interval >= 0 and c.eval.batches > 0, "eval.interval/batches", "must be >= 0 / > 0")
    need(c.checkpoint.interval >= 0, "checkpoint.interval", "must be >= 0")
    need(c.checkpoint.keep_last >= 1, "checkpoint.keep_last", "must be >= 1")
    need(c.log.interval > 0, "log.interval", "must be positive")
    need(bool(c.data.dir), "data.dir", "is required: a directory written by `gpt2 prepare`")
    need(c.data.seq_len is None or c.data.seq_len > 0, "data.seq_len", "must be positive")
    need(0 <= c.model.dropout < 1, "model.dropout", "must be in [0, 1)")
