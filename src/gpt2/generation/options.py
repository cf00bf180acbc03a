"""SamplingOptions: how to choose tokens and when to stop, validated on construction.

Every numeric option is declared once, with `option(...)`: its default, its range (a
settings.Range) and a few words for `gpt2 generate --help`. The check on construction, the
error message and the command-line flag (cli/generate.py) are all read from that declaration.
This module does not import torch: the CLI reads it to build its parser.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..settings import Range
from ..validate import is_int, is_real

INF = float("inf")
# Upper bounds keep an absurd value from running for ever or allocating in proportion to it.
MAX_NEW_TOKENS = 1_000_000
MAX_TOP_K = 1_000_000  # any k >= the vocabulary size keeps every token (off)
MAX_SAMPLES = 1_000
MAX_SEED = 2**63 - 1


def option(default: Any, low: float, high: float, *, help: str, metavar: str, note: str | None = None,
           low_open: bool = False, high_open: bool = False) -> Any:
    """A numeric SamplingOptions field: its range, what it is (`help`, a few words), the flag's
    metavar, and `note` on a special value ("0 = off"). high=INF: no upper bound."""
    return dataclasses.field(default=default, metadata={
        "range": Range(low, high, low_open, high_open), "help": help, "metavar": metavar, "note": note})


@dataclass(frozen=True)
class NumericOption:
    """What a numeric field declares, as the checks, messages and flags read it."""

    name: str
    default: Any
    range: Range
    integer: bool
    help: str
    metavar: str
    note: str | None

    def allows(self, value: object) -> bool:
        if value is None:
            return self.default is None  # an optional setting left unset
        return (is_int(value) if self.integer else is_real(value)) and value in self.range

    def bounds(self) -> str:
        """The range in a few words: "1 to 1000", "in (0, 1]", "a finite number >= 0"."""
        r = self.range
        if r.high == INF:
            return f"a finite number {'>' if r.low_open else '>='} {show_number(r.low)}"
        return f"{show_number(r.low)} to {show_number(r.high)}" if self.integer else f"in {r}"

    def describe(self) -> str:
        """The allowed values, as error messages give them."""
        r = self.range
        if r.high == INF:
            text = self.bounds()
        elif self.integer:
            text = f"an integer in [{show_number(r.low)}, {show_number(r.high)}]"
        else:
            text = f"a number in {r}"
        return f"{text} ({self.note})" if self.note else text


def show_number(x: float) -> str:
    """2**63 - 1 as such; other integers in full; floats short."""
    if isinstance(x, int) and x > 2**32 and (x + 1) & x == 0:
        return f"2**{x.bit_length()} - 1"
    return str(x) if isinstance(x, int) else f"{x:g}"


@functools.cache
def numeric_options(cls: type) -> tuple[NumericOption, ...]:
    """The numeric fields of an options class (SamplingOptions or a subclass), in field order."""
    hints = typing.get_type_hints(cls)
    return tuple(
        NumericOption(f.name, f.default, f.metadata["range"], int in _types(hints[f.name]),
                      f.metadata["help"], f.metadata["metavar"], f.metadata["note"])
        for f in dataclasses.fields(cls) if "range" in f.metadata)


def _types(hint: Any) -> set[Any]:
    return set(typing.get_args(hint)) | {hint}


@dataclass(frozen=True)
class SamplingOptions:
    """How to choose tokens and when to stop; validated on construction (UsageError).

    temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off; repetition_penalty
    1 is none. stop_token_ids None means the tokenizer's <|endoftext|>; () never stops early.
    seed None draws a fresh seed (recorded in each Sample); the same seed gives the same samples.
    The processors that read these options: generation/processors.py.
    """

    max_new_tokens: int = option(256, 1, MAX_NEW_TOKENS, help="tokens to generate per sample", metavar="N")
    temperature: float = option(1.0, 0, INF, help="softmax temperature", metavar="T", note="0 = greedy")
    top_k: int = option(0, 0, MAX_TOP_K, help="sample among the K most likely tokens", metavar="K",
                        note="0 = off")
    top_p: float = option(1.0, 0, 1, low_open=True, help="nucleus sampling mass", metavar="P", note="1 = off")
    repetition_penalty: float = option(1.0, 0, INF, low_open=True, metavar="R", note="1 = off",
                                       help="CTRL's penalty on tokens already present")
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] | None = None
    seed: int | None = option(None, 0, MAX_SEED, help="random seed", metavar="S")
    n_samples: int = option(1, 1, MAX_SAMPLES, help="samples per prompt", metavar="N")

    def __post_init__(self) -> None:
        for o in numeric_options(type(self)):
            if not o.allows(getattr(self, o.name)):
                raise UsageError(f"{o.name} must be {o.describe()}, got {getattr(self, o.name)!r}")
        if isinstance(self.stop, str):  # one stop string, not its characters
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not all(isinstance(s, str) and s for s in self.stop):
            raise UsageError(f"stop strings must be non-empty strings, got {self.stop!r}")
        if self.stop_token_ids is not None:
            object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
            if not all(is_int(t) and t >= 0 for t in self.stop_token_ids):
                raise UsageError(f"stop_token_ids must be token ids (integers >= 0), got {self.stop_token_ids!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def resolve(options: SamplingOptions | None, overrides: dict[str, Any], caller: str) -> SamplingOptions:
    """`options` (default: SamplingOptions()) with the fields named in `overrides` replaced;
    a name that is not a field is a TypeError naming it, as for any unknown keyword."""
    if options is None:
        options = SamplingOptions()
    elif not isinstance(options, SamplingOptions):
        raise TypeError(f"{caller}(): options must be a SamplingOptions, got {type(options).__name__}")
    if not overrides:
        return options
    known = {f.name for f in dataclasses.fields(options)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r} "
                        f"(the sampling options are: {', '.join(sorted(known))})")
    return dataclasses.replace(options, **overrides)
