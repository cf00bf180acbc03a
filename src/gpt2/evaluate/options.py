"""A task's settings (stride, shots, ...): each task module declares the ones it takes, with
their defaults and ranges, from the constructors here (one rule per setting name). Light
(no torch): the CLI builds its --stride/--shots/--seed options from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..errors import UsageError
from ..settings import Range
from ..validate import is_int

Value = Union[bool, int, None]

# Upper bounds of settings that the model does not bound (documented in the CLI's help).
MAX_STRIDE = 1_000_000  # until the model is loaded; then n_ctx
MAX_NEW_TOKENS = 1_000_000  # likewise; then n_ctx - 1
MAX_SHOTS = 10_000
MAX_TOP_K = 1_000_000  # any k >= the vocabulary keeps every token
MAX_SENTENCES = 1_000
MAX_SEED = 2**32 - 1  # generation seeds each batch with seed + index: headroom below 2**63

OWN_FLAGS = ("stride", "shots", "seed")  # settings with their own CLI option (--stride, ...)


@dataclass(frozen=True)
class Setting:
    """One setting of a task: its default and the values it takes. An integer in `range` (whose
    upper bound becomes n_ctx - ctx_margin once the model is known, when ctx_margin is set), or
    a boolean when range is None. A None default means "unset" and is itself allowed."""

    default: Value
    range: Range | None = None
    ctx_margin: int | None = None
    note: str = ""  # said after the range in the error message

    def bounds(self, n_ctx: int | None) -> Range:
        assert self.range is not None
        if self.ctx_margin is None or n_ctx is None:
            return self.range
        return Range(self.range.low, n_ctx - self.ctx_margin)

    def valid(self, value: object, n_ctx: int | None) -> bool:
        # `--set shots=x` arrives as the string "x" (settings.parse_override): refused, not run.
        if value is None:
            return self.default is None
        if self.range is None:
            return isinstance(value, bool)
        return is_int(value) and value in self.bounds(n_ctx)

    def describe(self, n_ctx: int | None) -> str:
        if self.range is None:
            return "true or false"
        if self.ctx_margin is not None and n_ctx is None:
            high = "n_ctx" + (f" - {self.ctx_margin}" if self.ctx_margin else "")
            text = f"[{int(self.range.low)}, {high}]"
        else:
            text = str(self.bounds(n_ctx))
        return f"an integer in {text}" + (f" ({self.note})" if self.note else "")

    def check(self, name: str, value: object, n_ctx: int | None) -> None:
        """Refuse a value of the wrong type or range, in one line naming the CLI's option."""
        if not self.valid(value, n_ctx):
            flag = f"--{name}" if name in OWN_FLAGS else f"--set {name}"
            raise UsageError(f"{flag} must be {self.describe(n_ctx)}, got {value!r}")


# The settings tasks share: each task module picks the ones it takes and their defaults.

def stride() -> Setting:
    return Setting(None, Range(1, MAX_STRIDE), ctx_margin=0, note="unset: n_ctx // 2")


def max_new_tokens(default: int) -> Setting:
    return Setting(default, Range(1, MAX_NEW_TOKENS), ctx_margin=1,
                   note="the prompt needs room in the context")


def shots(default: int) -> Setting:
    return Setting(default, Range(0, MAX_SHOTS))


def top_k(default: int) -> Setting:
    return Setting(default, Range(0, MAX_TOP_K), note="0: no top-k")


def sentences(default: int) -> Setting:
    return Setting(default, Range(1, MAX_SENTENCES))


def seed(default: int) -> Setting:
    return Setting(default, Range(0, MAX_SEED))


def flag(default: bool) -> Setting:
    return Setting(default)
