"""Type checks for values read from JSON, TOML and the command line, where bool is not a number.

Python's bool subclasses int, so `isinstance(True, int)` holds; a config or file that says
`true` where a count belongs is an error, not the number 1.
"""

from __future__ import annotations

import math


def is_int(x: object) -> bool:
    """An int, not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_real(x: object) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
