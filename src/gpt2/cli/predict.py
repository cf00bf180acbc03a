"""`gpt2 predict --model DIR --data FILE.jsonl`: a fine-tuned model's prediction for each example.

One line per input line, in order: the label (and its probability), the chosen index for
multiple choice, or the value for regression; with --json, one JSON object per line with
every class's probability. The examples are read like the task's training file (labels, if
present, are ignored: `gpt2 eval --task ...` scores them).
"""

from __future__ import annotations

import argparse
import json
import sys

from .numbers import int_in


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="predict labels with a fine-tuned model",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="DIR", help="a fine-tuned checkpoint (e.g. RUN_DIR/final)")
    p.add_argument("--data", required=True, metavar="FILE", help="examples: .jsonl or .tsv, the task's fields")
    p.add_argument("--task", metavar="NAME", help="which task of a multi-task model")
    p.add_argument("--json", action="store_true", help="one JSON object per line, with all probabilities")
    p.add_argument("--batch-size", type=int_in(1, 4096), default=16, metavar="N", help="examples per batch (16)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..devices import parse_device
    from ..finetune.checkpoint import load_task_model, require_head
    from ..finetune.data import read_task
    from ..finetune.predict import predict
    from ..finetune.tasks import TaskTokens
    from ..loading import load_tokenizer

    device = parse_device(args.device, "--device")
    model = load_task_model(args.model, device=device)
    info = require_head(model, args.task)
    if not info.has_head:
        from ..errors import FinetuneError

        raise FinetuneError(f"task {info.name} is a {info.type} task: it has no labels to predict "
                            "(use gpt2 generate)")
    tokenizer = load_tokenizer(args.model)
    tokens = TaskTokens.of(tokenizer, new_tokens=info.extra.get("new_tokens", True))
    max_length = min(int(info.extra.get("max_length", model.config.n_ctx)), model.config.n_ctx)
    data = read_task(args.data, info.type, tokenizer, tokens, max_length, need_labels=False)
    progress = _Progress(len(data.examples))
    predictions = predict(model, info.name, data.examples, batch_size=args.batch_size,
                          pad_id=tokenizer.eot_token, on_batch=progress.advance)
    progress.close()
    for p in predictions:
        out = p.to_dict(info.labels)
        if args.json:
            print(json.dumps(out))
        elif p.value is not None:
            print(f"{p.value:.6g}")
        elif info.labels is not None:
            print(f"{out['label']}\t{max(p.probabilities):.4f}")
        else:
            print(f"{p.index}\t{max(p.probabilities):.4f}")
    return 0


class _Progress:
    """A progress line on stderr, on a terminal only."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            print(f"\rpredicting {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
