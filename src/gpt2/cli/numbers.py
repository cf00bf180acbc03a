"""argparse types for numeric options with a documented range: NaN, infinities, overflowing
and out-of-range values are refused with one line naming the option and the range."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _fmt(x: float) -> str:
    """Integers in full (1048576, not 1.04858e+06); other numbers short."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _describe(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{_fmt(low)}, {_fmt(high)}]"
    if low is not None:
        return f"at least {_fmt(low)}"
    return f"at most {_fmt(high)}"


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (either bound may be None). '1e3' is refused: ints only."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {_describe(low, high)}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(low: float | None = None, high: float | None = None, *,
             low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """A finite float in the range; `low_open`/`high_open` exclude the bound itself."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        bad = (low is not None and (value < low or (low_open and value == low))) or \
              (high is not None and (value > high or (high_open and value == high)))
        if bad:
            lo = "" if low is None else ("(" if low_open else "[") + _fmt(low)
            hi = "" if high is None else _fmt(high) + (")" if high_open else "]")
            where = f"in {lo}, {hi}" if low is not None and high is not None else _describe(low, high)
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {where}")
        return value

    parse.__name__ = "number"
    return parse
