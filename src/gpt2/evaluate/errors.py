"""The evaluation package's error, in a module of its own so that every module can import it
(the scorer included) without importing the registry."""

from __future__ import annotations

from ..errors import GPT2Error


class EvalDataError(GPT2Error, ValueError):
    """An evaluation data file is missing, unreadable or malformed (the message names it)."""
