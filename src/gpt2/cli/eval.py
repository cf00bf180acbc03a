"""`gpt2 eval --task T [--model M]`: zero-shot evaluation with a table and a JSON report.

`gpt2 eval --list` lists the tasks the registry finds (gpt2.evaluate.tasks(): a module per
family in gpt2/evaluate/families/); `gpt2 eval --help` ends with their names. The model is the
bundled demo model unless --model names another (as for `gpt2 generate`).
"""

from __future__ import annotations

import argparse
import sys

# Upper bounds of the CLI's own numbers (the tasks' settings' bounds live in evaluate/options.py).
MAX_LIMIT = 1_000_000_000
MAX_BATCH_SIZE = 4096


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..evaluate.options import MAX_SEED, MAX_SHOTS, MAX_STRIDE
    from .generate import QUANTIZE, QUANTIZE_HELP
    from .numbers import int_in

    p = subparsers.add_parser(
        "eval",
        help="zero-shot evaluation on the paper's and lm-evaluation-harness's tasks",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model", "-m", metavar="NAME_OR_DIR",
                   help="demo (the bundled demo model, the default, as gpt2 generate), "
                        "a checkpoint directory or a hub name such as gpt2")
    p.add_argument("--adapter", metavar="DIR", help="a LoRA adapter (PEFT's format) put on --model")
    p.add_argument("--task", "-t", metavar="TASK[,TASK...]", help="task name(s), comma-separated")
    p.add_argument("--data", metavar="PATH",
                   help="local data file in the dataset's published format (default: the hub, when online)")
    p.add_argument("--limit", metavar="N", type=int_in(1, MAX_LIMIT),
                   help=f"evaluate the first N examples only (1 to {MAX_LIMIT:,})")
    p.add_argument("--batch-size", "-b", metavar="B", type=int_in(1, MAX_BATCH_SIZE), default=16,
                   help=f"sequences per forward pass, 1 to {MAX_BATCH_SIZE} (default 16)")
    p.add_argument("--stride", metavar="S", type=int_in(1, MAX_STRIDE),
                   help="paper-style perplexity tasks (not for wikitext, which always uses lm-eval's "
                        "disjoint n_ctx windows): tokens each window advances, 1 to n_ctx (default n_ctx/2)")
    p.add_argument("--shots", metavar="K", type=int_in(0, MAX_SHOTS),
                   help=f"translation / QA: example pairs in the context, 0 to {MAX_SHOTS:,}")
    p.add_argument("--seed", type=int_in(0, MAX_SEED), help=f"sampling seed (summarization), 0 to {MAX_SEED}")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="any other task setting, e.g. --set max_new_tokens=50 (values as in gpt2 train's "
                        "overrides: TOML values such as 50, true, 'text'; other words are text)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--dtype", default="float32",
                   help="float32 (default, whatever the checkpoint stores), bfloat16, float16")
    p.add_argument("--quantize", choices=QUANTIZE, help=QUANTIZE_HELP)
    p.add_argument("--json", metavar="OUT",
                   help="also write the JSON report to OUT (checked to be writable before the run; "
                        "written atomically at the end)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    # The task names come from the registry, which imports torch: read only when help is shown.
    plain_help = p.format_help
    p.format_help = lambda: plain_help() + _tasks_epilog()  # type: ignore[method-assign]
    p.set_defaults(func=run)


def _tasks_epilog() -> str:
    import textwrap

    from ..evaluate import tasks

    return "\n" + textwrap.fill(f"tasks (gpt2 eval --list describes them): {', '.join(tasks())}") + "\n"


def list_tasks() -> str:
    """The --list output: each task's name and description, as the registry declares them."""
    from ..evaluate import tasks

    return "".join(f"{name:<16} {t.description}\n" for name, t in tasks().items())


def _settings(args: argparse.Namespace) -> dict:
    """The task settings --set and the options --stride, --shots and --seed give (names, types and
    ranges are the task's to check: evaluate/options.py)."""
    from ..errors import UsageError
    from ..evaluate.options import OWN_FLAGS
    from ..settings import parse_overrides

    out = parse_overrides(args.set, "--set")
    for name in OWN_FLAGS:
        if getattr(args, name) is not None:
            if name in out:
                raise UsageError(f"--{name} and --set {name}= both given; give one")
            out[name] = getattr(args, name)
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..evaluate import evaluate, format_table, get_task, load_docs, write_json
    from ..evaluate.report import check_json_path
    from ..evaluate.runner import check_settings

    if args.list:
        print(list_tasks(), end="")
        return 0
    if not args.task:
        raise UsageError("give --task TASK (gpt2 eval --list shows the tasks)")
    names = [t.strip() for t in args.task.split(",") if t.strip()]
    if not names:
        raise UsageError(f"--task {args.task!r}: no task name (gpt2 eval --list shows the tasks)")
    specs = [get_task(n) for n in names]  # unknown names fail before the model loads
    settings = _settings(args)
    for spec in specs:  # names, types and ranges that do not need the model (shots=x, stride=0)
        check_settings(spec, settings)
    if args.data is not None and len(names) > 1:
        raise UsageError("--data goes with one --task at a time")
    if args.json:
        check_json_path(args.json)  # before the run, not after it
    device, dtype = _device_and_dtype(args)
    sys.stdout.flush()  # a closed stdout fails here, not after the whole evaluation
    # Every task's data before the model: a bad file or an unreachable hub costs no loading.
    loaded = [load_docs(spec, args.data) for spec in specs]

    from ..loading import DEFAULT_MODEL, load

    name = args.model or DEFAULT_MODEL
    model, tokenizer = load(name, adapter=args.adapter, device=device, dtype=dtype, quantize=args.quantize)
    progress = not args.no_progress and sys.stderr.isatty()
    results = []
    for task, data in zip(names, loaded):
        results.append(evaluate(model, task, data, tokenizer=tokenizer, limit=args.limit,
                                batch_size=args.batch_size, progress=progress, model_source=name, **settings))
    print(format_table(results), flush=True)  # a full stdout fails before the report is written
    if args.json:
        write_json(results, args.json)
    return 0


def _device_and_dtype(args: argparse.Namespace):  # noqa: ANN202 (torch types, imported late)
    """--device and --dtype checked before the model loads (float32 unless asked: the demo
    model is stored in float16, which loses precision in the log-probabilities)."""
    from ..checkpoint import parse_dtype
    from ..devices import parse_device
    from ..errors import GPT2Error, UsageError

    device = None if args.device is None else parse_device(args.device, "--device")
    try:
        dtype = parse_dtype(args.dtype)
    except GPT2Error:
        raise UsageError(f"--dtype {args.dtype!r}: choose float32, bfloat16 or float16") from None
    return device, dtype
