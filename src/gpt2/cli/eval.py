"""`gpt2 eval --model M --task T`: zero-shot evaluation with a table and a JSON report.

Tasks: perplexity (wikitext, wikitext2, wikitext103, ptb, enwik8, text8, 1bw, lambada_lm,
text), lambada_openai / lambada, cbt_cn / cbt_ne, winograd, hellaswag / mc, coqa,
cnn_dailymail, wmt14_en_fr / wmt14_fr_en, nq_open. `gpt2 eval --list` describes them.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="zero-shot evaluation on the paper's and lm-evaluation-harness's tasks",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model", "-m", metavar="NAME_OR_DIR", help="checkpoint directory or hub name")
    p.add_argument("--task", "-t", metavar="TASK[,TASK...]", help="task name(s), comma-separated")
    p.add_argument("--data", metavar="PATH",
                   help="local data file in the dataset's published format (default: the hub, when online)")
    p.add_argument("--limit", metavar="N", type=_positive_int, help="evaluate the first N examples only")
    p.add_argument("--batch-size", "-b", metavar="B", type=_positive_int, default=16,
                   help="sequences per forward pass (default 16)")
    p.add_argument("--stride", metavar="S", type=_positive_int,
                   help="paper-style perplexity tasks: tokens each window advances (default n_ctx/2); "
                        "not for wikitext, which always uses lm-eval's disjoint n_ctx windows")
    p.add_argument("--shots", metavar="K", type=_nonneg_int, help="translation / QA: example pairs in the context")
    p.add_argument("--seed", type=int, help="sampling seed (summarization)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="any other task setting, e.g. --set max_new_tokens=50 (JSON values)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--dtype", help="float32 (default), bfloat16, float16")
    p.add_argument("--json", metavar="OUT",
                   help="also write the JSON report to OUT (checked to be writable before the run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.set_defaults(func=run)


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


def _settings(args: argparse.Namespace) -> dict:
    from ..errors import UsageError

    out: dict = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    for name in ("stride", "shots", "seed"):
        if getattr(args, name) is not None:
            out[name] = getattr(args, name)
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..evaluate import evaluate, format_table, get_task, tasks, write_json
    from ..evaluate.registry import check_settings
    from ..evaluate.report import check_json_path

    if args.list:
        for name, t in tasks().items():
            print(f"{name:<16} {t.description}")
        return 0
    if not args.model or not args.task:
        raise UsageError("give --model NAME_OR_DIR and --task TASK (gpt2 eval --list shows the tasks)")
    names = [t.strip() for t in args.task.split(",") if t.strip()]
    specs = [get_task(n) for n in names]  # unknown names fail before the model loads
    settings = _settings(args)
    for spec in specs:
        unknown = sorted(set(settings) - set(spec.defaults))
        if unknown:
            raise UsageError(f"task {spec.name} has no setting {', '.join(unknown)} "
                             f"(its settings: {', '.join(spec.defaults) or 'none'})")
    check_settings(settings)  # types and ranges that do not need the model (shots=x, stride=0)
    if args.data is not None and len(names) > 1:
        raise UsageError("--data goes with one --task at a time")
    if args.json:
        check_json_path(args.json)  # before the run, not after it

    from ..model import GPT2

    model = GPT2.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    model.name_or_path = args.model  # shown in the report
    from ..evaluate.registry import _tokenizer_for

    tokenizer = _tokenizer_for(args.model)
    progress = not args.no_progress and sys.stderr.isatty()
    results = []
    for name in names:
        results.append(evaluate(model, name, args.data, tokenizer=tokenizer, limit=args.limit,
                                batch_size=args.batch_size, progress=progress, **settings))
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
    return 0
