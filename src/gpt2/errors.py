"""Every exception class of this package: the errors it raises at its boundaries (files, names,
the network, user input), in one module so that a caller finds them all in one place.

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


class TokenIdError(TokenizerError):
    """A token id that the vocabulary lacks, or that is not an integer (a ValueError too)."""


class DataError(GPT2Error):
    """An input or output of the data pipeline is unusable (the message names it and the fix)."""


class TrainingError(GPT2Error):
    """Training cannot go on (non-finite losses, out of memory, a dataset that does not fit)."""


class StdoutError(GPT2Error):
    """stdout cannot be written (closed, full, an I/O error)."""


class StdoutGone(Exception):
    """The reader of stdout went away (EPIPE): the command stops quietly, with no message.

    Not a GPT2Error: it is a signal to the CLI's entry point, not a fault in the input."""


class EvalDataError(GPT2Error, ValueError):
    """An evaluation data file is missing, unreadable or malformed (the message names it)."""


class FinetuneError(GPT2Error, ValueError):
    """Bad fine-tuning input: a task file, a label, a recipe's task list, a teacher, an adapter."""


class QuantizeError(GPT2Error, ValueError):
    """Quantization cannot be done as asked: no kernel on this device, a model it does not fit."""
