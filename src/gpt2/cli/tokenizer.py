"""Encode and decode text with GPT-2's BPE (or a trained one); train new BPE vocabularies.

    gpt2 tokenizer encode "Hello world"              # 15496 995
    echo "Hello world" | gpt2 tokenizer encode - --json
    gpt2 tokenizer decode 15496 995                  # Hello world
    gpt2 tokenizer train corpus/*.txt --vocab-size 8192 --output my-tokenizer
    gpt2 tokenizer encode "Hello" --tokenizer my-tokenizer
"""

from __future__ import annotations

import argparse
import json
import lzma
import re
import sys
import tempfile
from pathlib import Path

from ..errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenizer",
        help="encode or decode text, train a BPE vocabulary",
        description=__doc__.split("\n\n")[0],
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    enc = sub.add_parser("encode", help="print the token ids of TEXT (or of stdin with '-')")
    enc.add_argument("text", nargs="?", default="-", metavar="TEXT|-",
                     help="text to encode; '-' or nothing reads stdin")
    _tokenizer_option(enc)
    enc.add_argument("--json", action="store_true", help="print a JSON list instead of ids on one line")
    enc.add_argument("--allow-special", action="store_true",
                     help="encode special-token text such as <|endoftext|> as its id (default: as text)")

    dec = sub.add_parser("decode", help="print the text of token ids (or of ids read from stdin)")
    dec.add_argument("ids", nargs="*", metavar="IDS",
                     help="token ids, separated by spaces or commas (a JSON list works); '-' or nothing reads stdin")
    _tokenizer_option(dec)

    tr = sub.add_parser("train", help="train a byte-level BPE vocabulary on UTF-8 text files")
    tr.add_argument("files", nargs="*", metavar="FILES", help="UTF-8 text files")
    tr.add_argument("--corpus", metavar="NAME", help="also train on a bundled corpus (demo)")
    tr.add_argument("--vocab-size", type=int, required=True,
                    help="number of ids, <|endoftext|> (the last) included; at least 257")
    tr.add_argument("--output", required=True, metavar="DIR",
                    help="directory for vocab.json, merges.txt and the tokenizer configs")
    tr.add_argument("--min-frequency", type=int, default=2,
                    help="merge only pairs seen at least this often (default: 2)")
    p.set_defaults(func=run)


def _tokenizer_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", default="gpt2", metavar="NAME_OR_DIR",
                   help="gpt2 (default, bundled) or a directory saved by `tokenizer train`/save_pretrained")


def run(args: argparse.Namespace) -> int:
    from ..tokenizer import Tokenizer

    if args.action == "train":
        if args.min_frequency < 1:
            raise UsageError(f"--min-frequency must be at least 1, got {args.min_frequency}")
        if not args.files and not args.corpus:
            raise UsageError("give text FILES to train on, or --corpus demo")
        with tempfile.TemporaryDirectory() as tmp:
            files = list(args.files)
            if args.corpus:
                files.append(_corpus_as_text(args.corpus, Path(tmp) / f"{args.corpus}.txt"))
            tok = Tokenizer.train(files, args.vocab_size, min_frequency=args.min_frequency)
        written = tok.save_pretrained(args.output)
        print(f"trained {tok.vocab_size} ids ({len(tok.merges)} merges, <|endoftext|> = {tok.eot_token}); "
              f"fingerprint {tok.fingerprint[:16]}")
        for path in written:
            print(f"wrote {path}")
        return 0

    tok = Tokenizer.from_pretrained(args.tokenizer)
    if args.action == "encode":
        text = sys.stdin.read() if args.text == "-" else args.text
        ids = tok.encode(text, allowed_special="all" if args.allow_special else frozenset())
        print(json.dumps(ids) if args.json else " ".join(map(str, ids)))
        return 0

    words = args.ids if args.ids and args.ids != ["-"] else [sys.stdin.read()]
    ids = []
    for word in words:
        for item in re.split(r"[\s,\[\]]+", word):
            if not item:
                continue
            try:
                ids.append(int(item))
            except ValueError:
                raise UsageError(f"IDS: {item!r} is not a token id (an integer)") from None
    sys.stdout.write(tok.decode(ids) + "\n")
    return 0


def _corpus_as_text(name: str, path: Path) -> Path:
    """Write a bundled corpus's documents to one text file, blank-line separated."""
    from ..data.corpus import corpus_path

    with lzma.open(corpus_path(name), "rt", encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        for line in src:
            dst.write(json.loads(line)["text"] + "\n\n")
    return path
