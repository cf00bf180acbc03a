"""The data package's error: bad input files, lines, settings or output directories."""

from __future__ import annotations

from ..errors import GPT2Error


class DataError(GPT2Error):
    """An input or output of the data pipeline is unusable (the message names it and the fix)."""
