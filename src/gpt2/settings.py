"""The one config dialect: typed dataclass trees, read from TOML or built from dicts, changed by
`section.key=value` overrides, every numeric field declared with its range.

    @dataclass
    class Tree:
        lr: float = num(3e-4, 0, 1, low_open=True)   # a float in (0, 1]
        name: str = "x"

    tree = build(Tree, apply_overrides({}, ["lr=1e-3"]), prefix="", source="overrides")

An unknown key, a value of the wrong type or out of its range is a ConfigError naming the key,
the source and what is allowed. Training recipes (train/config.py), `gpt2 prepare` and `gpt2 eval`
settings all go through here.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from .errors import ConfigError

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


def numeric_ranges(tree: type) -> dict[str, Range | None]:
    """Every int/float field of a dataclass tree and its range (None: undeclared, a defect)."""
    out: dict[str, Range | None] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{f.name}.")
            elif {int, float} & (set(typing.get_args(hint)) | {hint}):
                out[prefix + f.name] = f.metadata.get("range")

    walk(tree, "")
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or invalid file is one ConfigError line."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`data` with each `section.key=value` (a leading `--` allowed) set in it, in order."""
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    return data


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


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


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, last = key.split(".")
    node = data
    for s in sections:
        node = node.setdefault(s, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {s} is not a section")
    node[last] = value


def build(cls: type, data: Any, prefix: str, source: str) -> Any:
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
            kwargs[f.name] = build(hint, data[f.name], prefix + f.name + ".", source)
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


