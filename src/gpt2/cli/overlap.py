"""`gpt2 overlap TRAIN... --eval FILE...`: GPT-2's 8-gram memorization analysis (Table 6).

For each evaluation file, the percentage of its 8-grams (lower-cased alphanumeric words of the
NFKC-normalized text, so NFC and NFD copies match) that occur in the training data, held in a Bloom filter whose false-positive rate is stated (at most
--fpr, 1e-4 by default). TRAIN is a prepared dataset directory or raw text inputs.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError
from .numbers import float_in, int_in


MAX_NGRAM = 100


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "overlap", help="percentage of evaluation n-grams present in training data (Bloom filter)",
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("train", nargs="+", metavar="TRAIN", help="prepared dataset directory or text inputs")
    p.add_argument("--eval", nargs="+", required=True, metavar="FILE", help="evaluation files or directories")
    p.add_argument("-n", "--ngram", type=int_in(1, MAX_NGRAM), default=8,
                   help=f"n-gram length in words (1 to {MAX_NGRAM}; default 8, as in the paper)")
    p.add_argument("--fpr", type=float_in(1e-12, 0.5), default=1e-4,
                   help="Bloom filter false-positive bound (1e-12 to 0.5, default 1e-4)")
    p.add_argument("--splits", default="train",
                   help="splits of prepared datasets to read, comma-separated (default train)")
    p.add_argument("--text-field", default="text", help="JSONL/Parquet text field (default text)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import ReadOptions, overlap

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if not splits:
        raise UsageError(f"--splits {args.splits!r} names no split; give e.g. train or train,val")
    if not args.text_field:
        raise UsageError("--text-field must not be empty (the JSONL/Parquet field holding the text, e.g. text)")
    sys.stdout.flush()  # a closed stdout is an error now, not after reading all the data
    report = overlap(args.train, args.eval, n=args.ngram, false_positive_rate=args.fpr,
                     options=ReadOptions(text_field=args.text_field), splits=splits)
    print(json.dumps(report.to_dict()) if args.json else report.format())
    return 0
