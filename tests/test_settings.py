"""The config dialect (gpt2.settings): overrides, layers, optional sections and fields, ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from gpt2 import ConfigError
from gpt2.settings import (build, build_layered, merge, nest, num, numeric_ranges, parse_override,
                           parse_overrides, Range)


@dataclass(frozen=True)
class Section:
    size: int = num(3, 1, 10)
    name: str = "x"


@dataclass(frozen=True)
class Tree:
    rate: float = num(0.5, 0, 1, high_open=True)
    limit: int | None = num(None, 1, 100)
    files: tuple[str, ...] = ()
    flag: bool | None = None
    part: Section = field(default_factory=Section)
    extra: Section | None = None
    action: Literal["drop", "report"] = "drop"
    dtype: Literal["auto", "float32", "float16"] = "auto"
    loose: int = 4  # no declared range: a defect numeric_ranges shows


def make(data: dict, source: str = "src") -> Tree:
    return build(Tree, data, "", source)


def test_parse_overrides_is_the_one_key_value_parser():
    assert parse_overrides(["a.b=1", "c='x y'", "d=[1, 2]", "e=true", "f=runs/x"], "--set") == {
        "a.b": 1, "c": "x y", "d": [1, 2], "e": True, "f": "runs/x"}
    with pytest.raises(ConfigError, match=r"^--set 'oops': expected KEY=VALUE$"):
        parse_overrides(["oops"], "--set")
    with pytest.raises(ConfigError, match=r"--set '=1': expected KEY=VALUE"):
        parse_overrides(["=1"], "--set")
    with pytest.raises(ConfigError, match=r"--set a given twice"):
        parse_overrides(["a=1", "a=2"], "--set")
    # train's positional overrides keep their own wording
    with pytest.raises(ConfigError, match=r"override 'lr' must look like section\.key=value"):
        parse_override("lr")


def test_nest_and_merge():
    assert nest({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    base = {"a": {"b": 1, "c": 2}, "s": False}
    assert merge(base, {"a": {"b": 5}, "s": {"x": 1}}) == {"a": {"b": 5, "c": 2}, "s": {"x": 1}}
    assert base == {"a": {"b": 1, "c": 2}, "s": False}  # unchanged


def test_optional_sections_and_fields():
    assert make({}).extra is None
    assert make({"extra": True}).extra == Section()
    assert make({"extra": {"size": 5}}).extra == Section(size=5)
    assert make({"extra": False}).extra is None
    with pytest.raises(ConfigError, match=r"src: extra must be a table, true or false, got 3"):
        make({"extra": 3})
    with pytest.raises(ConfigError, match=r"src: extra\.size must be in \[1, 10\], got 0"):
        make({"extra": {"size": 0}})
    assert make({"limit": False}).limit is None  # false: unset, for an optional non-bool field
    assert make({"flag": False}).flag is False  # a bool keeps its false
    with pytest.raises(ConfigError, match=r"src: limit must be int, got True"):
        make({"limit": True})


def test_arrays_ranges_and_types():
    assert make({"files": ["a", "b"]}).files == ("a", "b")
    with pytest.raises(ConfigError, match=r"files must be a list of str, got 'a'"):
        make({"files": "a"})
    with pytest.raises(ConfigError, match=r"files\[1\] must be str, got 2"):
        make({"files": ["a", 2]})
    with pytest.raises(ConfigError, match=r"limit must be in \[1, 100\], got 101"):
        make({"limit": 101})
    with pytest.raises(ConfigError, match=r"rate must be in \[0, 1\), got nan"):
        make({"rate": float("nan")})
    assert make({"rate": 0}).rate == 0.0 and isinstance(make({"rate": 0}).rate, float)
    assert numeric_ranges(Tree) == {"rate": Range(0, 1, high_open=True), "limit": Range(1, 100),
                                    "part.size": Range(1, 10), "extra.size": Range(1, 10),
                                    "loose": None}  # undeclared: a defect a test can find


def test_choices_name_what_is_allowed():
    assert make({"action": "report"}).action == "report"
    with pytest.raises(ConfigError, match=r"^src: action must be drop or report, got 'delete'$"):
        make({"action": "delete"})
    with pytest.raises(ConfigError, match=r"^src: dtype must be one of 'auto', 'float32', 'float16', got 'fp8'$"):
        make({"dtype": "fp8"})


def test_layers_name_the_source_of_a_mistake():
    tree = build_layered(Tree, [("a.toml", {"part": {"size": 2}, "rate": 0.1}), ("--set", {"part": {"name": "y"}})])
    assert tree.part == Section(size=2, name="y") and tree.rate == 0.1
    with pytest.raises(ConfigError, match=r"^--set: part\.size must be in"):
        build_layered(Tree, [("a.toml", {"rate": 0.1}), ("--set", {"part": {"size": 99}})])
    with pytest.raises(ConfigError, match=r"^a\.toml: unknown key 'bogus'"):
        build_layered(Tree, [("a.toml", {"bogus": 1}), ("--set", {})])
