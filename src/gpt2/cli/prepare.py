"""`gpt2 prepare INPUT... -o OUT`: raw text to cleaned, de-duplicated token shards.

INPUT: text files (one document each, or split with --separator), .jsonl[.gz|.xz|.zst] (--text-field),
.parquet, directories (recursively), or hf:NAME[:CONFIG] for a Hugging Face dataset; --corpus demo
prepares the bundled Shakespeare + King James Bible corpus instead, with the demo model's own
8,192-token vocabulary unless --tokenizer names another, so that `gpt2 train configs/demo.toml`
then trains the demo model's shape (6.9M parameters). Ctrl-C stops the run and leaves OUT as it was.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import UsageError
from .numbers import float_in, int_in

if TYPE_CHECKING:
    from ..data import PrepareConfig


# Ranges of the numeric options (also in their help): beyond them a value is a mistake.
MAX_CHARS = 10**12  # characters in one document
MAX_NUM_PERM = 1024  # choosing the LSH bands takes ~0.3 s at 1024
MAX_NGRAM = 100
MAX_SHARD_TOKENS = 10**12
MAX_WORKERS = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare", help="turn raw text into token shards for training (clean, dedup, decontaminate, tokenize)",
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files, directories or hf:NAME")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--corpus", metavar="NAME", help="prepare a bundled corpus (demo)")
    p.add_argument("--tokenizer", metavar="NAME_OR_DIR",
                   help="gpt2 (GPT-2's 50,257 tokens), demo (the bundled demo model's 8,192) or a tokenizer "
                        "directory; default: demo with --corpus demo (what the demo model and configs/demo.toml "
                        "use), else gpt2")
    g = p.add_argument_group("reading")
    g.add_argument("--text-field", default="text", help="JSONL/Parquet field holding the text (default: text)")
    g.add_argument("--separator", help=r"split .txt files into documents at this string (escapes like \n work)")
    g.add_argument("--strict", action="store_true", help="stop at a bad JSONL line or unreadable file")
    g = p.add_argument_group("cleaning and filtering (all on by default)")
    g.add_argument("--normalize", default="NFC", choices=["NFC", "NFKC", "NFD", "NFKD", "none"],
                   help="Unicode normalization form of the text kept (default NFC); n-gram matching "
                        "(near-duplicates, decontamination) compares NFKC forms whatever this says")
    g.add_argument("--keep-control", action="store_true", help="keep control characters and \\r")
    g.add_argument("--min-chars", type=int_in(0, MAX_CHARS), default=1,
                   help=f"drop shorter documents (0 to {MAX_CHARS:,}, default 1)")
    g.add_argument("--max-chars", type=int_in(1, MAX_CHARS),
                   help=f"drop longer documents (1 to {MAX_CHARS:,}, at least --min-chars; default: no limit)")
    g.add_argument("--no-quality", action="store_true", help="switch off the Gopher-style quality rules")
    g.add_argument("--no-exact-dedup", action="store_true", help="keep exact duplicates")
    g.add_argument("--no-near-dedup", action="store_true", help="keep near duplicates (MinHash LSH off)")
    g.add_argument("--no-dedup", action="store_true", help="both of the above")
    g.add_argument("--near-dup-threshold", type=float_in(0, 1, low_open=True, high_open=True), default=0.8,
                   help="Jaccard similarity above which documents are near duplicates (in (0, 1), default 0.8)")
    g.add_argument("--num-perm", type=int_in(1, MAX_NUM_PERM), default=128,
                   help=f"MinHash permutations (1 to {MAX_NUM_PERM}, default 128)")
    g.add_argument("--decontaminate", nargs="+", metavar="EVAL", default=[],
                   help="evaluation files whose n-grams training documents must not share")
    g.add_argument("--decontam-ngram", type=int_in(1, MAX_NGRAM), default=8,
                   help=f"n-gram length in words (1 to {MAX_NGRAM}, default 8)")
    g.add_argument("--decontam-action", choices=["drop", "report"], default="drop",
                   help="drop contaminated documents (default) or only count them")
    g = p.add_argument_group("output")
    g.add_argument("--val-fraction", type=float_in(0, 1, high_open=True),
                   help="share of documents for validation, by content hash (in [0, 1); default 0.005, "
                        "0.1 for --corpus demo)")
    g.add_argument("--shard-tokens", type=int_in(1, MAX_SHARD_TOKENS), default=100_000_000,
                   help=f"tokens per shard (1 to {MAX_SHARD_TOKENS:,}, default 100,000,000)")
    g.add_argument("--workers", type=int_in(0, MAX_WORKERS),
                   help=f"tokenization processes (0 to {MAX_WORKERS}; 0: none, all in this process; "
                        f"default: one per core)")
    g.add_argument("--overwrite", action="store_true", help="replace a different dataset already in OUT")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)
    _record_command_line(p)


def _record_command_line(parser: argparse.ArgumentParser) -> None:
    """Have `parser` keep the arguments it parses as args.command_line, for the manifest: the
    command as run, or as passed to the CLI's main() from Python (sys.argv would be the caller's)."""
    parse = parser.parse_known_args

    def parse_and_record(args=None, namespace=None):
        namespace, extra = parse(args, namespace)
        namespace.command_line = ["gpt2", "prepare", *(sys.argv[2:] if args is None else args)]
        return namespace, extra

    parser.parse_known_args = parse_and_record  # type: ignore[method-assign]


def _separator(text: str) -> str:
    """--separator with its backslash escapes applied; it must not be empty."""
    try:
        sep = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise UsageError(f"--separator {text!r}: bad escape ({e.reason}); write escapes as \\n, \\t, "
                         f"\\x1e, \\u2028") from None
    if not sep:
        raise UsageError("--separator must not be empty (give the string between documents, e.g. '\\n\\n')")
    return sep


def _progress_printer() -> Callable[[dict], None]:
    """Progress on stderr: a line when reading starts, the first count after a second, then one
    every 5 seconds."""
    last = [-4.0]

    def progress(p: dict) -> None:
        # One write per line: Ctrl-C between a print's text and its newline would glue the
        # "interrupted" line to it.
        if p["stage"] == "start":
            sys.stderr.write(f"  reading {p['files']:,} input file(s) with {p['workers']} worker process(es)\n")
        elif p["stage"] == "read" and p["seconds"] - last[0] >= 5:
            last[0] = p["seconds"]
            sys.stderr.write(f"  {p['documents']:,} documents, {p['bytes'] / 1e6:,.0f} MB, "
                             f"{p['bytes'] / 1e6 / p['seconds']:.1f} MB/s\n")

    return progress


def build_config(args: argparse.Namespace) -> PrepareConfig:
    from ..data import CleanConfig, DecontamConfig, NearDupConfig, PrepareConfig, ReadOptions

    if args.no_dedup:
        args.no_exact_dedup = args.no_near_dedup = True
    if args.max_chars is not None and args.max_chars < args.min_chars:
        raise UsageError(f"--max-chars {args.max_chars} is below --min-chars {args.min_chars}: every "
                         f"document would be dropped; raise --max-chars or lower --min-chars")
    if not args.text_field:
        raise UsageError("--text-field must not be empty (the JSONL/Parquet field holding the text, e.g. text)")
    config = PrepareConfig(
        read=ReadOptions(args.text_field, None if args.separator is None else _separator(args.separator),
                         args.strict),
        clean=CleanConfig(normalize=None if args.normalize == "none" else args.normalize,
                          strip_control=not args.keep_control, min_chars=args.min_chars, max_chars=args.max_chars,
                          **({"quality": None} if args.no_quality else {})),
        exact_dedup=not args.no_exact_dedup,
        near_dedup=None if args.no_near_dedup else NearDupConfig(args.near_dup_threshold, args.num_perm),
        decontam=DecontamConfig(tuple(args.decontaminate), args.decontam_ngram, args.decontam_action)
        if args.decontaminate else None,
        shard_tokens=args.shard_tokens,
        **({} if args.val_fraction is None else {"val_fraction": args.val_fraction}),
    )
    return config


def resolve(args: argparse.Namespace) -> tuple[list[str], PrepareConfig]:
    """(inputs, config) of the run the options describe."""
    from ..data import corpus

    config = build_config(args)
    inputs = list(args.inputs)
    if args.corpus:
        if inputs:
            raise UsageError("give either INPUT files or --corpus, not both")
        inputs = [str(corpus.corpus_path(args.corpus))]
        config = corpus.corpus_config(config, **({} if args.val_fraction is None else
                                                 {"val_fraction": args.val_fraction}))
    elif not inputs:
        raise UsageError("no INPUT given (files, directories, hf:NAME, or --corpus demo)")
    return inputs, config


def run(args: argparse.Namespace) -> int:
    from ..data import corpus, prepare

    inputs, config = resolve(args)
    if not args.quiet:
        sys.stdout.flush()  # a closed stdout is an error now, not after the whole run
    args.val_fraction = config.val_fraction  # the manifest's arguments show the value used
    if args.tokenizer is None:
        args.tokenizer = corpus.default_tokenizer(args.corpus)  # and the tokenizer used
    command = getattr(args, "command_line", None) or list(sys.argv)
    m = prepare(inputs, args.out, tokenizer=corpus.tokenizer_location(args.tokenizer), config=config,
                workers=args.workers, overwrite=args.overwrite, command=command,
                progress=None if args.quiet else _progress_printer(),
                arguments={k: v for k, v in vars(args).items() if k not in ("func", "command_line")})
    if args.quiet:
        return 0
    d, s = m["documents"], m["sources"]
    mb = s["bytes_read"] / 1e6
    print(f"{args.out}: {d['kept']:,} of {d['read']:,} documents kept "
          f"({mb:,.1f} MB in {m['seconds']:.1f} s, {mb / max(m['seconds'], 1e-9):.1f} MB/s)")
    for split, info in m["splits"].items():
        print(f"  {split:<6} {info['documents']:>10,} documents {info['tokens']:>14,} tokens "
              f"in {len(info['shards'])} shard(s)")
    f = m["filters"]
    for reason, count in f["dropped"].items():
        print(f"  dropped {count:,}: {reason}")
    steps = {"control_characters": "control characters removed", "normalization": f"{args.normalize} normalized"}
    for step, count in f["changed"].items():
        if count:
            print(f"  {steps.get(step, step)}: {count:,} document(s), kept")
    if f["contaminated_kept"]:
        print(f"  kept {f['contaminated_kept']:,} contaminated document(s) (--decontam-action report)")
    for origin in (f["contaminated_documents"] or [])[:5]:
        print(f"    contaminated: {origin}")
    if len(f["contaminated_documents"] or []) > 5:
        print(f"    (the manifest lists up to {len(f['contaminated_documents'])})")
    problems = {"empty files": s["empty_files"], "unreadable files": s["unreadable_files"],
                "bytes replaced (bad UTF-8)": s["replaced_bytes"],
                "lone surrogates replaced": s["replaced_surrogates"],
                **{f"lines skipped: {k}": v for k, v in s["skipped_lines"].items()}}
    for what, count in problems.items():
        if count:
            print(f"  {what}: {count:,}")
    for example in s["examples"][:5]:
        print(f"    {example}")
    return 0
