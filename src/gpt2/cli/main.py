"""Entry point of the `gpt2` command.

Each subcommand lives in gpt2/cli/<name>.py and provides
    register(subparsers) -> None   adds its parser and sets `func` to its run function
    run(args) -> int               the exit code
Errors of ours (GPT2Error) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Subcommands in the order `gpt2 --help` lists them.
COMMANDS = ("generate", "info", "tokenizer", "prepare", "overlap", "train", "eval", "plot")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="gpt2",
        description="GPT-2: models, OpenAI's tokenizer, sampling, data, training, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"gpt2 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"gpt2.cli.{name}"
        if importlib.util.find_spec(module_name) is None:  # not built yet
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import GPT2Error

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except GPT2Error as e:
        print(f"gpt2 {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gpt2 generate ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
