"""`gpt2 overlap TRAIN... --eval FILE...`: GPT-2's 8-gram memorization analysis (Table 6).

For each evaluation file, the percentage of its 8-grams (lower-cased alphanumeric words) that
occur in the training data, held in a Bloom filter whose false-positive rate is stated (at most
--fpr, 1e-4 by default). TRAIN is a prepared dataset directory or raw text inputs.
"""

from __future__ import annotations

import argparse
import json

from ..errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "overlap", help="percentage of evaluation n-grams present in training data (Bloom filter)",
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("train", nargs="+", metavar="TRAIN", help="prepared dataset directory or text inputs")
    p.add_argument("--eval", nargs="+", required=True, metavar="FILE", help="evaluation files or directories")
    p.add_argument("-n", "--ngram", type=int, default=8, help="n-gram length (default 8, as in the paper)")
    p.add_argument("--fpr", type=float, default=1e-4, help="Bloom filter false-positive bound (default 1e-4)")
    p.add_argument("--splits", default="train", help="dataset splits to read, comma-separated (default train)")
    p.add_argument("--text-field", default="text", help="JSONL/Parquet text field (default text)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import ReadOptions, overlap

    if args.ngram < 1:
        raise UsageError(f"--ngram must be positive, got {args.ngram}")
    if not 0 < args.fpr < 1:
        raise UsageError(f"--fpr must lie strictly between 0 and 1, got {args.fpr}")
    report = overlap(args.train, args.eval, n=args.ngram, false_positive_rate=args.fpr,
                     options=ReadOptions(text_field=args.text_field),
                     splits=tuple(s for s in args.splits.split(",") if s))
    print(json.dumps(report.to_dict()) if args.json else report.format())
    return 0
