"""`gpt2 generate [PROMPT]`: sample text from a model, streamed to the terminal as it is decoded.

    gpt2 generate "ROMEO:"                                     # the bundled demo model (--model demo)
    gpt2 generate "The meaning of life is" --model gpt2        # top-k 40, as OpenAI released
    gpt2 generate --unconditional --n-samples 3 --seed 0       # from <|endoftext|>
    echo "Once upon a time" | gpt2 generate - --temperature 0  # greedy, prompt from stdin
    gpt2 generate --interactive --model DIR                    # a prompt loop
    gpt2 generate "Hi" --json --n-samples 2                    # one JSON object per sample

stdout holds only the generated text (or the JSON lines); information and warnings go to
stderr. Each sample ends with a newline; with --n-samples above 1, each sample is preceded on
stdout by a separator line, as OpenAI's scripts print it:
    ======================================== SAMPLE 2 ========================================
--interactive: Ctrl-C stops the answer being written and returns to the prompt; at the prompt,
Ctrl-D (end of input) ends with exit code 0 and Ctrl-C with exit code 130. On a terminal the
prompt line has readline's editing and history. Ctrl-C anywhere else ends with exit code 130.
A thin layer over gpt2.sampling.generate / stream.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import TYPE_CHECKING

from ..config import MAX_NEW_TOKENS, MAX_SAMPLES, MAX_SEED, MAX_TOP_K
from ..errors import UsageError
from .numbers import float_in, int_in

if TYPE_CHECKING:
    from ..model import GPT2
    from ..sampling import SamplingOptions

DTYPES = ("float32", "bfloat16", "float16")
PROMPT = "Model prompt >>> "


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
    p.add_argument("--max-new-tokens", type=int_in(1, MAX_NEW_TOKENS), default=256, metavar="N",
                   help=f"tokens to generate per sample, 1 to {MAX_NEW_TOKENS} (default 256)")
    p.add_argument("--temperature", type=float_in(0, None), default=1.0, metavar="T",
                   help="softmax temperature, a finite number >= 0; 0 = greedy (default 1)")
    p.add_argument("--top-k", type=int_in(0, MAX_TOP_K), default=40, metavar="K",
                   help=f"sample among the K most likely tokens, 0 to {MAX_TOP_K}; 0 = off "
                        "(default 40, OpenAI's setting)")
    p.add_argument("--top-p", type=float_in(0, 1, low_open=True), default=1.0, metavar="P",
                   help="nucleus sampling mass, in (0, 1]; 1 = off (default 1)")
    p.add_argument("--repetition-penalty", type=float_in(0, None, low_open=True), default=1.0, metavar="R",
                   help="CTRL's penalty on tokens already present, a finite number > 0; 1 = off (default 1)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop when this text appears (not printed); repeatable")
    p.add_argument("--ignore-eot", action="store_true",
                   help="keep going past <|endoftext|> (as OpenAI's scripts do) instead of stopping there")
    p.add_argument("--seed", type=int_in(0, MAX_SEED), default=None, metavar="S",
                   help="random seed, 0 to 2**63 - 1: the same seed gives the same samples")
    p.add_argument("--n-samples", type=int_in(1, MAX_SAMPLES), default=1, metavar="N",
                   help=f"samples per prompt, 1 to {MAX_SAMPLES} (default 1); above 1, a separator "
                        "line precedes each sample on stdout")
    p.add_argument("--unconditional", action="store_true", help="no prompt: start from <|endoftext|>")
    p.add_argument("--interactive", action="store_true",
                   help="read prompts in a loop; Ctrl-C stops an answer, Ctrl-D ends")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object per sample per line: {"prompt_tokens", "tokens", "text"}')
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="float32, bfloat16 or float16 (default float32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every check that needs no model comes first, so a mistake costs no loading time.
    options = _options(args)
    prompt = _prompt(args)
    from ..devices import parse_device

    device = parse_device(args.device, "--device")
    sys.stdout.flush()  # a closed stdout is an error now, not after loading the model
    from ..loading import load

    if args.interactive:
        _note(f"Loading {args.model} on {device} ...")
    model, tokenizer = load(args.model, device=device, dtype=args.dtype)
    from ..sampling import ContextWindowWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ContextWindowWarning)
        warnings.showwarning = _warn_to_stderr
        if args.interactive:
            return _interactive(model, tokenizer, options, args.json)
        _sample(model, tokenizer, prompt, options, args.json)
    return 0


def _options(args: argparse.Namespace) -> "SamplingOptions":
    from ..sampling import SamplingOptions

    if any(s == "" for s in args.stop):
        raise UsageError("--stop '': empty text; give the text to stop at")
    if args.interactive and (args.unconditional or args.prompt is not None):
        raise UsageError("--interactive reads its prompts itself: give no PROMPT and no --unconditional")
    if args.unconditional and args.prompt is not None:
        raise UsageError("--unconditional takes no PROMPT")
    # The argparse types enforce the ranges SamplingOptions checks (the same constants).
    return SamplingOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, repetition_penalty=args.repetition_penalty, stop=tuple(args.stop),
        stop_token_ids=() if args.ignore_eot else None, seed=args.seed, n_samples=args.n_samples,
    )


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


def _sample(model: "GPT2", tokenizer, prompt: str | None, options: "SamplingOptions", as_json: bool) -> None:
    from ..sampling import generate, stream

    kwargs = dict(max_new_tokens=options.max_new_tokens, temperature=options.temperature,
                  top_k=options.top_k, top_p=options.top_p,
                  repetition_penalty=options.repetition_penalty, stop=options.stop,
                  stop_token_ids=options.stop_token_ids, seed=options.seed)
    if as_json:  # all samples decoded together, as a batch
        for s in generate(model, tokenizer, prompt, n_samples=options.n_samples, **kwargs):
            print(json.dumps({"prompt_tokens": s.prompt_tokens, "tokens": s.tokens, "text": s.text}),
                  flush=True)
        return
    # Text streams sample after sample; sample j is the same as generate(n_samples=n)'s j-th,
    # and one seed (drawn here if none was given) makes the n samples distinct and reproducible.
    if kwargs["seed"] is None and options.n_samples > 1 and not options.greedy:
        import secrets

        kwargs["seed"] = secrets.randbits(63)
    for j in range(options.n_samples):
        if options.n_samples > 1:
            print(separator(j + 1), flush=True)
        for piece in stream(model, tokenizer, prompt, sample_index=j, **kwargs):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()


def _interactive(model: "GPT2", tokenizer, options: "SamplingOptions", as_json: bool) -> int:
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
