"""Entry point of the `gpt2` command.

Each subcommand lives in gpt2/cli/<name>.py and provides
    register(subparsers) -> None   adds its parser and sets `func` to its run function
    run(args) -> int               the exit code
What a user got wrong is one line on stderr and exit code 2, never a traceback or a usage block:
our errors (GPT2Error), argparse's, a closed or full stdout, a file the OS refused. Ctrl-C is one
line and exit code 130. A subcommand that must survive its stdout going away (training) sets
`keep_going_without_stdout=True` in its defaults.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

# Subcommands in the order `gpt2 --help` lists them.
COMMANDS = ("generate", "serve", "info", "tokenizer", "prepare", "overlap", "train", "finetune", "predict", "eval", "quantize", "plot")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the option and where to look."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = OneLineParser(
        prog="gpt2",
        description="GPT-2: models, OpenAI's tokenizer, sampling, data, training, fine-tuning, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"gpt2 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"gpt2.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import GPT2Error, StdoutGone
    from .streams import GuardedStdout

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        _forget_unhandled_interrupt()
        print("gpt2: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not getattr(args, "func", None):
        parser.error(f"give a command: {', '.join(COMMANDS)}")
    prefix = f"gpt2 {args.command}"
    original_stdout = sys.stdout
    sys.stdout = GuardedStdout(original_stdout, args.command,
                               keep_going=getattr(args, "keep_going_without_stdout", False))
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk shows here, not at interpreter exit
        return code
    except GPT2Error as e:
        print(f"{prefix}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _forget_unhandled_interrupt()
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except StdoutGone:  # e.g. `gpt2 generate ... | head`: the reader has what it wanted
        return EXIT_BROKEN_PIPE
    except OSError as e:
        # The safety net for a file the OS refused where no command-specific message exists.
        if e.filename is None:
            raise
        print(f"{prefix}: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        sys.stdout = original_stdout


def _forget_unhandled_interrupt() -> None:
    """CPython remembers a KeyboardInterrupt that escaped code run from a string (eval/exec, e.g.
    inside namedtuple during an import) and, at exit, kills the process with SIGINT instead of
    returning our exit code 130. Running any string resets that flag."""
    exec("None", {})


def _one_line(error: BaseException) -> str:
    """The error's message on one line (a multi-line message would break the one-line promise)."""
    return " ".join(str(error).split("\n")).strip() or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
