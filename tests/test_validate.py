"""bool is not a number where a config or file gives a count."""

from __future__ import annotations

import math

from gpt2.validate import is_int, is_real


def test_is_int_refuses_bools_and_floats():
    assert is_int(0) and is_int(-3) and is_int(2**70)
    assert not any(is_int(x) for x in (True, False, 1.0, "1", None))


def test_is_real_is_finite_and_not_bool():
    assert is_real(0) and is_real(-1.5)
    assert not any(is_real(x) for x in (True, math.inf, math.nan, "1.0", None))
