"""The one config dialect: typed dataclass trees, read from TOML or built from dicts, changed by
`section.key=value` overrides, every numeric field declared with its range.

    @dataclass
    class Tree:
        lr: float = num(3e-4, 0, 1, low_open=True)   # a float in (0, 1]
        name: str = "x"

    tree = build(Tree, apply_overrides({}, ["lr=1e-3"]), prefix="", source="overrides")

An unknown key, a value of the wrong type or out of its range is a ConfigError naming the key,
the source and what is allowed. An optional setting (`X | None`, X not bool) is switched off with
`false`, the one spelling TOML and overrides share (TOML has no null); an optional section takes a
table, `true` (its defaults) or `false`. Training recipes (train/config.py), `gpt2 prepare`'s
settings (data/prepare.py) and `gpt2 eval`'s `--set` all go through here.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from .errors import ConfigError
from .validate import is_int

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
    (tests/test_train_config.py checks), and `build` refuses a value outside it. For a list of
    numbers the range is each item's, and `default` a function making the default list."""
    if callable(default):
        return field(default_factory=default, metadata={"range": Range(low, high, low_open, high_open)})
    return field(default=default, metadata={"range": Range(low, high, low_open, high_open)})


def numeric_ranges(tree: type) -> dict[str, Range | None]:
    """Every int/float field of a dataclass tree (optional sections included), by dotted key, and
    the range it declares with `num` (None: undeclared, a defect)."""
    out: dict[str, Range | None] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            section = _section(hint)
            if section is not None:
                walk(section, f"{prefix}{f.name}.")
            elif {int, float} & (set(typing.get_args(hint)) | {hint}):
                out[prefix + f.name] = f.metadata.get("range")

    walk(tree, "")
    return out


def _section(hint: Any) -> type | None:
    """The dataclass a field's type names, alone or as `Tree | None` (an optional section)."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        trees = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        if len(trees) == 1 and type(None) in typing.get_args(hint):
            return trees[0]
    return None


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
    """`data` with each `section.key=value` (a leading `--` allowed) set in it, in order (a later
    value of a key wins): train's positional overrides."""
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    return data


def parse_overrides(items: Iterable[str], option: str) -> dict[str, Any]:
    """The values of a repeatable `option KEY=VALUE` (`--set`) as {dotted key: value}, each read
    as parse_override reads it; a malformed item or a key given twice is a ConfigError naming
    `option`."""
    out: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item, option)
        if key in out:
            raise ConfigError(f"{option} {key} given twice; give each setting once")
        out[key] = value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"optim.lr": 1} -> {"optim": {"lr": 1}} (the inverse of flatten)."""
    data: dict[str, Any] = {}
    for key, value in flat.items():
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


def parse_override(item: str, option: str | None = None) -> tuple[str, Any]:
    """`optim.lr=3e-4` -> ("optim.lr", 0.0003). Values are TOML values; bare words are strings.
    A malformed item is a ConfigError: train's wording, or naming `option` (e.g. "--set")."""
    item = item.removeprefix("--")
    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        if option is None:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        raise ConfigError(f"{option} {item!r}: expected KEY=VALUE")
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


def merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s values put over it key by key (sections merged, not replaced; a section
    given over a value such as `false` replaces it). Neither argument changes."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping):
            out[key] = merge(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = value
    return out


def build_layered(cls: type, layers: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """`cls` built from settings trees given as (source, data), later ones over earlier ones (a
    TOML file, then options, then overrides). Each layer is checked alone first, so that an
    unknown key or a bad value is named with the source it came from."""
    merged: dict[str, Any] = {}
    for source, data in layers:
        build(cls, data, "", source)
        merged = merge(merged, data)
    return build(cls, merged, "", " + ".join(s for s, d in layers if d) or "defaults")


def build(cls: type, data: Any, prefix: str, source: str) -> Any:
    """An instance of the dataclass tree `cls` from a nested dict, every key, type and range
    (declared with `num`) checked."""
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
        hint, value, key = hints[f.name], data[f.name], prefix + f.name
        section = _section(hint)
        if section is not None and section is not hint and not isinstance(value, dict):
            # An optional section: false (or None, from Python) switches it off, true takes its defaults.
            if not isinstance(value, bool) and value is not None:
                raise ConfigError(f"{source}: {key} must be a table, true or false, got {value!r}")
            kwargs[f.name] = section() if value is True else None
        elif section is not None:
            kwargs[f.name] = build(section, value, key + ".", source)
        else:
            value = _check_type(value, hint, key, source)
            allowed = f.metadata.get("range")
            items = value if isinstance(value, (list, tuple)) else [value]  # a list: each item
            for item in items:
                if allowed is not None and item is not None and item not in allowed:
                    raise ConfigError(f"{source}: {key} must be in {allowed}, got {value!r}")
            kwargs[f.name] = value
    return cls(**kwargs)


def _choices(values: tuple) -> str:
    """A Literal's values as an error names them: "drop or report", "one of 'a', 'b', 'c'"."""
    if len(values) == 2:
        return " or ".join(map(str, values))
    return f"one of {', '.join(map(repr, values))}"


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if type(None) in args and (value is None or (value is False and bool not in args)):
            return None  # false: TOML's way of saying "unset" (see the module's docstring)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key, source)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin in (tuple, list):  # tuple[str, ...] or list[str]: a TOML array
        item = args[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list of {item.__name__}, got {value!r}")
        items = [_check_type(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return origin(items)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} must be {_choices(args)}, got {value!r}")
        return value
    if hint is float and is_int(value):
        return float(value)
    if hint in (int, float, str, bool) and not (is_int(value) if hint is int else isinstance(value, hint)):
        raise ConfigError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


