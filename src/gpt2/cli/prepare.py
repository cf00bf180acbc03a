"""`gpt2 prepare INPUT... -o OUT`: raw text to cleaned, de-duplicated token shards.

INPUT: text files (one document each, or split with --separator), .jsonl[.gz|.xz|.zst] (--text-field),
.parquet, directories (recursively), or hf:NAME[:CONFIG] for a Hugging Face dataset; --corpus demo
prepares the bundled Shakespeare + King James Bible corpus instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..data import PrepareConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare", help="turn raw text into token shards for training (clean, dedup, decontaminate, tokenize)",
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files, directories or hf:NAME")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--corpus", metavar="NAME", help="prepare a bundled corpus (demo)")
    p.add_argument("--tokenizer", default="gpt2", help="gpt2 (default) or a tokenizer directory")
    g = p.add_argument_group("reading")
    g.add_argument("--text-field", default="text", help="JSONL/Parquet field holding the text (default: text)")
    g.add_argument("--separator", help=r"split .txt files into documents at this string (escapes like \n work)")
    g.add_argument("--strict", action="store_true", help="stop at a bad JSONL line or unreadable file")
    g = p.add_argument_group("cleaning and filtering (all on by default)")
    g.add_argument("--normalize", default="NFC", choices=["NFC", "NFKC", "NFD", "NFKD", "none"],
                   help="Unicode normalization form (default NFC)")
    g.add_argument("--keep-control", action="store_true", help="keep control characters and \\r")
    g.add_argument("--min-chars", type=int, default=1, help="drop shorter documents (default 1)")
    g.add_argument("--max-chars", type=int, help="drop longer documents")
    g.add_argument("--no-quality", action="store_true", help="switch off the Gopher-style quality rules")
    g.add_argument("--no-exact-dedup", action="store_true", help="keep exact duplicates")
    g.add_argument("--no-near-dedup", action="store_true", help="keep near duplicates (MinHash LSH off)")
    g.add_argument("--no-dedup", action="store_true", help="both of the above")
    g.add_argument("--near-dup-threshold", type=float, default=0.8, help="Jaccard threshold (default 0.8)")
    g.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default 128)")
    g.add_argument("--decontaminate", nargs="+", metavar="EVAL", default=[],
                   help="evaluation files whose n-grams training documents must not share")
    g.add_argument("--decontam-ngram", type=int, default=8, help="n-gram length (default 8)")
    g.add_argument("--decontam-action", choices=["drop", "report"], default="drop",
                   help="drop contaminated documents (default) or only count them")
    g = p.add_argument_group("output")
    g.add_argument("--val-fraction", type=float, help="share of documents for validation "
                   "(by content hash; default 0.005, 0.1 for --corpus demo)")
    g.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard (default 1e8)")
    g.add_argument("--workers", type=int, help="tokenization processes (default: all cores; 0: none)")
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


def _unescape(s: str) -> str:
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape")


def build_config(args: argparse.Namespace) -> PrepareConfig:
    from ..data import CleanConfig, DecontamConfig, NearDupConfig, PrepareConfig, ReadOptions

    if args.no_dedup:
        args.no_exact_dedup = args.no_near_dedup = True
    for name in ("min_chars", "shard_tokens", "num_perm", "decontam_ngram"):
        if getattr(args, name) < 1 and name != "min_chars" or getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 < args.near_dup_threshold < 1:
        raise UsageError(f"--near-dup-threshold must lie strictly between 0 and 1, got {args.near_dup_threshold}")
    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        raise UsageError(f"--val-fraction must lie in [0, 1), got {args.val_fraction}")
    config = PrepareConfig(
        read=ReadOptions(args.text_field, _unescape(args.separator) if args.separator else None, args.strict),
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
    from ..data import prepare

    inputs, config = resolve(args)
    args.val_fraction = config.val_fraction  # the manifest's arguments show the value used
    last = [0.0]

    def progress(p: dict) -> None:
        if not args.quiet and p["seconds"] - last[0] >= 5:
            last[0] = p["seconds"]
            print(f"  {p['documents']:,} documents, {p['bytes'] / 1e6:,.0f} MB, "
                  f"{p['bytes'] / 1e6 / p['seconds']:.1f} MB/s", file=sys.stderr)

    command = getattr(args, "command_line", None) or list(sys.argv)
    m = prepare(inputs, args.out, tokenizer=args.tokenizer, config=config, workers=args.workers,
                overwrite=args.overwrite, command=command, progress=progress,
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
