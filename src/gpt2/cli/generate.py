"""`gpt2 generate [PROMPT]`: sample text from a model, streamed to the terminal as it is decoded.

    gpt2 generate "ROMEO:"                                     # the bundled demo model (--model demo)
    gpt2 generate "The meaning of life is" --model gpt2        # top-k 40, as OpenAI released
    gpt2 generate --unconditional --n-samples 3 --seed 0       # from <|endoftext|>
    echo "Once upon a time" | gpt2 generate - --temperature 0  # greedy, prompt from stdin
    gpt2 generate --interactive --model DIR                    # a prompt loop
    gpt2 generate "Hi" --json --n-samples 2                    # one JSON object per sample
    gpt2 generate --model runs/chat/final --chat "Who are you?"   # through the chat template
    gpt2 generate --model demo --adapter runs/x/final-adapter "Hi"  # a LoRA adapter on a base

stdout holds only the generated text (or the JSON lines); information and warnings go to
stderr. Each sample ends with a newline; with --n-samples above 1, each sample is preceded on
stdout by a separator line, as OpenAI's scripts print it:
    ======================================== SAMPLE 2 ========================================
--interactive: Ctrl-C stops the answer being written and returns to the prompt; at the prompt,
Ctrl-D (end of input) ends with exit code 0 and Ctrl-C with exit code 130. On a terminal the
prompt line has readline's editing and history. Ctrl-C anywhere else ends with exit code 130.
A thin layer over gpt2.generation.generate / stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..generation.options import INF, NumericOption, SamplingOptions, numeric_options, show_number
from .numbers import float_in, int_in

if TYPE_CHECKING:
    from ..model import GPT2

DTYPES = ("float32", "bfloat16", "float16")
QUANTIZE = ("int8", "int4", "fp16")  # gpt2.quantize.METHODS (not imported here: it imports torch)
QUANTIZE_HELP = ("int8, int4 or fp16 weights in every Linear layer and the head, converted on load: "
                 "faster decoding on CPU, at a small cost in quality (see gpt2 quantize; default: the "
                 "checkpoint's weights as they are)")
PROMPT = "Model prompt >>> "
# Where the command departs from the options' declarations: its own defaults (with the reason
# shown in --help) and what its help adds.
CLI_DEFAULTS = {"top_k": (40, "OpenAI's setting")}
HELP_MORE = {"seed": ": the same seed gives the same samples",
             "n_samples": "; above 1, a separator line precedes each sample on stdout"}


def separator(index: int) -> str:
    """The line before sample `index` (from 1) when several are printed: OpenAI's format."""
    return f"{'=' * 40} SAMPLE {index} {'=' * 40}"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a model (streams to the terminal)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt; '-' reads it from stdin")
    p.add_argument("--model", metavar="NAME_OR_DIR", default="demo",
                   help="demo (the bundled demo model, the default), a preset or hub name such as "
                        "gpt2, or a checkpoint directory")
    p.add_argument("--adapter", metavar="DIR",
                   help="a LoRA adapter (PEFT's format, e.g. RUN_DIR/final-adapter) put on --model")
    p.add_argument("--chat", action="store_true",
                   help="the prompt is a user message: send it through the model's chat template "
                        "(an instruction-tuned model's own; else a plain User:/Assistant: transcript) "
                        "and stop at the end of the answer")
    add_option_flags(p)
    p.add_argument("--unconditional", action="store_true", help="no prompt: start from <|endoftext|>")
    p.add_argument("--interactive", action="store_true",
                   help="read prompts in a loop; Ctrl-C stops an answer, Ctrl-D ends")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object per sample per line: {"prompt_tokens", "tokens", "text"}')
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="float32, bfloat16 or float16 (default float32)")
    p.add_argument("--quantize", choices=QUANTIZE, help=QUANTIZE_HELP)
    p.set_defaults(func=run)


def add_option_flags(p: argparse.ArgumentParser, options_type: type[SamplingOptions] = SamplingOptions) -> None:
    """One flag per field of the options, in field order: the numeric ones (every processor's
    setting among them) from their declarations, --stop and --ignore-eot for the stops."""
    numeric = {o.name: o for o in numeric_options(options_type)}
    for f in dataclasses.fields(options_type):
        if f.name == "stop":
            p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                           help="stop when this text appears (not printed); repeatable")
        elif f.name == "stop_token_ids":
            p.add_argument("--ignore-eot", action="store_true",
                           help="keep going past <|endoftext|> (as OpenAI's scripts do) instead of stopping there")
        else:
            _add_numeric_flag(p, numeric[f.name])


def _add_numeric_flag(p: argparse.ArgumentParser, o: NumericOption) -> None:
    """--name-with-dashes: the option's range as the argparse type, its words as the help."""
    r = o.range
    if o.integer:
        parse = int_in(r.low, r.high)
    else:
        parse = float_in(r.low, None if r.high == INF else r.high, low_open=r.low_open, high_open=r.high_open)
    default, why = CLI_DEFAULTS.get(o.name, (o.default, None))
    text = f"{o.help}, {o.bounds()}" + (f"; {o.note}" if o.note else "")
    if default is not None:
        text += f" (default {show_number(default)}{f', {why}' if why else ''})"
    p.add_argument(f"--{o.name.replace('_', '-')}", type=parse, default=default, metavar=o.metavar,
                   help=text + HELP_MORE.get(o.name, ""))


def run(args: argparse.Namespace) -> int:
    # Every check that needs no model comes first, so a mistake costs no loading time.
    options = _options(args)
    prompt = _prompt(args)
    from ..devices import parse_device

    device = parse_device(args.device, "--device")
    sys.stdout.flush()  # a closed stdout fails here, before the model loads
    from ..loading import load

    if args.interactive:
        _note(f"Loading {args.model} on {device} ...")
    model, tokenizer = load(args.model, adapter=args.adapter, device=device, dtype=args.dtype,
                            quantize=args.quantize)
    if args.chat:
        options, prompt = _chat(tokenizer, options, prompt)
    from ..generation import ContextWindowWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ContextWindowWarning)
        warnings.showwarning = _warn_to_stderr
        if args.interactive:
            return _interactive(model, tokenizer, options, args.json, chat=args.chat)
        _sample(model, tokenizer, prompt, options, args.json)
    return 0


def _chat(tokenizer, options: SamplingOptions, message: str | None) -> tuple[SamplingOptions, list[int] | None]:
    """A user message -> the chat template's prompt ids, and the options that end the answer:
    at the template's end-of-turn token, or (plain transcript) at the next "User:" line."""
    from ..finetune.instruct import chat_stops, encode_prompt

    options = dataclasses.replace(options, **chat_stops(tokenizer, options.stop))
    if message is None:  # interactive: each line becomes a message
        return options, None
    return options, encode_prompt(tokenizer, [{"role": "user", "content": message}])


def _options(args: argparse.Namespace, options_type: type[SamplingOptions] = SamplingOptions) -> SamplingOptions:
    if any(s == "" for s in args.stop):
        raise UsageError("--stop '': empty text; give the text to stop at")
    if args.interactive and (args.unconditional or args.prompt is not None):
        raise UsageError("--interactive reads its prompts itself: give no PROMPT and no --unconditional")
    if args.unconditional and args.prompt is not None:
        raise UsageError("--unconditional takes no PROMPT")
    if args.chat and args.unconditional:
        raise UsageError("--chat needs a message: give a PROMPT (or --interactive), not --unconditional")
    numbers = {o.name: getattr(args, o.name) for o in numeric_options(options_type)}
    return options_type(**numbers, stop=tuple(args.stop), stop_token_ids=() if args.ignore_eot else None)


def _prompt(args: argparse.Namespace) -> str | None:
    """The prompt (None: unconditional or interactive), read from stdin for '-'."""
    from .streams import read_stdin_text

    if args.interactive:
        if sys.stdin is None:
            raise UsageError("--interactive: stdin is closed; run it in a terminal or pipe prompts in")
        return None
    if args.unconditional:
        return None
    prompt = read_stdin_text("PROMPT '-'") if args.prompt == "-" else args.prompt
    if not prompt:
        raise UsageError("empty prompt: give a PROMPT (or '-' for stdin), or use --unconditional")
    return prompt


def _sample(model: "GPT2", tokenizer, prompt: str | list[int] | None, options: SamplingOptions,
            as_json: bool) -> None:
    from ..generation import generate, stream

    if as_json:  # all samples decoded together, as a batch
        for s in generate(model, tokenizer, prompt, options):
            print(json.dumps({"prompt_tokens": s.prompt_tokens, "tokens": s.tokens, "text": s.text}),
                  flush=True)
        return
    # Text streams sample after sample; sample j is the same as generate(n_samples=n)'s j-th,
    # and one seed (drawn here if none was given) makes the n samples distinct and reproducible.
    if options.seed is None and options.n_samples > 1 and not options.greedy:
        import secrets

        options = dataclasses.replace(options, seed=secrets.randbits(63))
    for j in range(options.n_samples):
        if options.n_samples > 1:
            print(separator(j + 1), flush=True)
        for piece in stream(model, tokenizer, prompt, options, sample_index=j):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()


def _interactive(model: "GPT2", tokenizer, options: SamplingOptions, as_json: bool, chat: bool = False) -> int:
    """OpenAI's interactive_conditional_samples.py: prompt, samples, repeat. Ctrl-C during an
    answer returns to the prompt; EOF at the prompt ends (0); Ctrl-C at the prompt reaches main
    (130)."""
    read = _prompt_reader()
    while True:
        prompt = read()
        if prompt is None:  # EOF
            sys.stderr.write("\n")
            return 0
        if not prompt.strip():
            _note("Prompt should not be empty!")
            continue
        try:
            if chat:
                from ..finetune.instruct import encode_prompt

                prompt = encode_prompt(tokenizer, [{"role": "user", "content": prompt}])
            _sample(model, tokenizer, prompt, options, as_json)
        except KeyboardInterrupt:  # stop this answer only
            sys.stdout.write("\n")
            sys.stdout.flush()
            _note("(stopped)")


def _prompt_reader():  # noqa: ANN202
    """A function returning the next prompt line, or None at EOF. On a terminal (stdin and
    stdout both), input() with readline's line editing and history; else the prompt goes to
    stderr (stdout holds only samples) and the line is read as UTF-8."""
    from .streams import read_stdin_line

    if sys.stdin.isatty() and sys.stdout.isatty():
        try:
            import readline  # noqa: F401  (input() uses it once imported)
        except ImportError:  # not on every platform
            pass

        def from_terminal() -> str | None:
            try:
                return input(PROMPT)
            except EOFError:
                return None
            except KeyboardInterrupt:
                sys.stdout.write("\n")  # main's "interrupted" line starts a line of its own
                raise

        return from_terminal

    def from_stream() -> str | None:
        while True:
            try:  # the prompt inside: a Ctrl-C just after it is written still ends its line
                sys.stderr.write(PROMPT)
                sys.stderr.flush()
                return read_stdin_line("--interactive")
            except UsageError as e:  # a line that is not UTF-8: say so and ask again
                _note(f"\n{e}; try again")
            except KeyboardInterrupt:
                _note("")  # main's "interrupted" line starts a line of its own
                raise

    return from_stream


def _note(text: str) -> None:
    """One line on stderr, written whole: a Ctrl-C cannot split it from its newline."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _warn_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    _note(f"gpt2 generate: warning: {message}")
