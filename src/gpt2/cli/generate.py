"""`gpt2 generate [PROMPT]`: sample text from a model, streamed to the terminal as it is decoded.

    gpt2 generate "The meaning of life is" --model gpt2        # top-k 40, as OpenAI released
    gpt2 generate --unconditional --n-samples 3 --seed 0       # from <|endoftext|>
    echo "Once upon a time" | gpt2 generate - --temperature 0  # greedy, prompt from stdin
    gpt2 generate --interactive --model DIR                    # a prompt loop
    gpt2 generate "Hi" --json --n-samples 2                    # one JSON object per sample

stdout holds only the generated text (or the JSON lines); information and warnings go to
stderr. A thin layer over gpt2.sampling.generate / stream.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    import torch

    from ..model import GPT2
    from ..sampling import SamplingOptions

# The small model the training issue ships inside the package; used when --model is omitted.
DEMO_MODEL = Path(__file__).resolve().parent.parent / "assets" / "demo-model"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a model (streams to the terminal)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt; '-' reads it from stdin")
    p.add_argument("--model", metavar="NAME_OR_DIR",
                   help="checkpoint directory or hub name (default: the bundled demo model)")
    p.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="tokens to generate per sample (default 256)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy (default 1)")
    p.add_argument("--top-k", type=int, default=40, metavar="K",
                   help="sample among the K most likely tokens; 0 = off (default 40, OpenAI's setting)")
    p.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling mass; 1 = off (default 1)")
    p.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R",
                   help="CTRL's penalty on tokens already present; 1 = off (default 1)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop when this text appears (not printed); repeatable")
    p.add_argument("--ignore-eot", action="store_true",
                   help="keep going past <|endoftext|> (as OpenAI's scripts do) instead of stopping there")
    p.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same samples")
    p.add_argument("--n-samples", type=int, default=1, metavar="N", help="samples per prompt (default 1)")
    p.add_argument("--unconditional", action="store_true", help="no prompt: start from <|endoftext|>")
    p.add_argument("--interactive", action="store_true", help="read prompts in a loop (until EOF or Ctrl-C)")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object per sample per line: {"prompt_tokens", "tokens", "text"}')
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 (default float32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sampling import SamplingOptions

    # Every check that needs no model comes first, so a mistake costs no loading time.
    options = SamplingOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, repetition_penalty=args.repetition_penalty, stop=tuple(args.stop),
        stop_token_ids=() if args.ignore_eot else None, seed=args.seed, n_samples=args.n_samples,
    )
    if args.interactive and (args.unconditional or args.prompt is not None):
        raise UsageError("--interactive reads its prompts itself: give no PROMPT and no --unconditional")
    if args.unconditional and args.prompt is not None:
        raise UsageError("--unconditional takes no PROMPT")
    prompt: str | None = None
    if not args.interactive and not args.unconditional:
        prompt = _read_stdin() if args.prompt == "-" else args.prompt
        if not prompt:
            raise UsageError("empty prompt: give a PROMPT (or '-' for stdin), or use --unconditional")
    device = _device(args.device)
    from ..checkpoint import parse_dtype

    dtype = parse_dtype(args.dtype)

    model, tokenizer = _load(args.model, device, dtype)
    from ..sampling import ContextWindowWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ContextWindowWarning)
        warnings.showwarning = _warn_to_stderr
        if args.interactive:
            return _interactive(model, tokenizer, options, args.json)
        _sample(model, tokenizer, prompt, options, args.json)
    return 0


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"stdin is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def _device(name: str) -> "torch.device":
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r}: not a device (try cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available here")
    return device


def _load(name: str | None, device, dtype) -> tuple["GPT2", object]:
    """The model and its tokenizer: the checkpoint's own vocab.json + merges.txt when it has
    them, else GPT-2's bundled vocabulary."""
    from ..checkpoint import resolve_checkpoint
    from ..model import GPT2
    from ..tokenizer import Tokenizer

    if name is None:
        if not (DEMO_MODEL / "config.json").is_file():
            raise UsageError("--model is required: give a checkpoint directory or a hub name such "
                             "as gpt2 (this build has no bundled demo model)")
        name = str(DEMO_MODEL)
    directory = resolve_checkpoint(name)
    model = GPT2.from_pretrained(directory, device=device, dtype=dtype)
    has_vocab = (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file()
    tokenizer = Tokenizer.from_pretrained(str(directory) if has_vocab else "gpt2")
    return model, tokenizer


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
            print(f"{'=' * 40} SAMPLE {j + 1} {'=' * 40}", file=sys.stderr, flush=True)
        for piece in stream(model, tokenizer, prompt, sample_index=j, **kwargs):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()


def _interactive(model: "GPT2", tokenizer, options: "SamplingOptions", as_json: bool) -> int:
    """OpenAI's interactive_conditional_samples.py: prompt, samples, repeat; EOF or Ctrl-C ends."""
    try:
        while True:
            sys.stderr.write("Model prompt >>> ")
            sys.stderr.flush()
            raw = sys.stdin.buffer.readline()
            if not raw:  # EOF
                sys.stderr.write("\n")
                return 0
            try:
                prompt = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                print("The prompt is not UTF-8 text!", file=sys.stderr)
                continue
            if not prompt.strip():
                print("Prompt should not be empty!", file=sys.stderr)
                continue
            _sample(model, tokenizer, prompt, options, as_json)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 0


def _warn_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gpt2 generate: warning: {message}", file=sys.stderr, flush=True)
