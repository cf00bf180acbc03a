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


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take (NaN and infinities never)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if value != value or value in (float("inf"), float("-inf")):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}{')' if self.high_open else ']'}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def num(default: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Any:
    """A numeric field and its documented range: every int and float setting is declared with one
    (tests/test_train_config.py checks), and load_config refuses a value outside it."""
    return field(default=default, metadata={"range": Range(low, high, low_open, high_open)})


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


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def numeric_ranges() -> dict[str, Range | None]:
    """Every int/float setting of the tree and its range (None: undeclared, a defect)."""
    out: dict[str, Range | None] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{f.name}.")
            elif {int, float} & (set(typing.get_args(hint)) | {hint}):
                out[prefix + f.name] = f.metadata.get("range")

    walk(RunConfig, "")
    return out


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
            value = _check_type(data[f.name], hint, prefix + f.name, source)
            allowed = f.metadata.get("range")
            if allowed is not None and value is not None and value not in allowed:
                raise ConfigError(f"{source}: {prefix + f.name} must be in {allowed}, got {value!r}")
            kwargs[f.name] = value
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
    """Checks across fields (types and ranges were checked while building)."""

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key} {what}")

    need(bool(c.data.dir), "data.dir", "is required: a directory written by `gpt2 prepare`")
    need(bool(c.run_dir), "run_dir", "is required: the directory for checkpoints and logs")
    need(c.optim.decay_steps is None or c.optim.decay_steps >= c.optim.warmup_steps, "optim.decay_steps",
         f"({c.optim.decay_steps}) must be >= optim.warmup_steps ({c.optim.warmup_steps})")
