"""The exceptions this package raises at its boundaries (files, names, the network, user input).

Each carries one line that names the thing at fault and, where there is one, the fix. The CLI
prints that line and exits with code 2; it never shows a traceback for these.
"""

from __future__ import annotations


class GPT2Error(Exception):
    """Base class of every error this package raises on bad input."""


class ConfigError(GPT2Error, ValueError):
    """A model configuration value is invalid (the message names the field)."""


class CheckpointError(GPT2Error):
    """A checkpoint cannot be found, read or matched to its config (the message names the file)."""


class TokenizerError(GPT2Error, ValueError):
    """A tokenizer cannot be found or read, or was given input it cannot take."""


class UsageError(GPT2Error):
    """A command-line or API argument is out of range (the message names the option)."""
