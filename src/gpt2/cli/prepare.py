"""`gpt2 prepare INPUT... -o OUT`: raw text to cleaned, de-duplicated token shards.

INPUT: text files (one document each, or split with --separator), .jsonl[.gz|.xz|.zst] (--text-field),
.parquet, directories (recursively), or hf:NAME[:CONFIG] for a Hugging Face dataset; --corpus demo
prepares the bundled Shakespeare + King James Bible corpus instead, with the demo model's own
8,192-token vocabulary unless --tokenizer names another, so that `gpt2 train configs/demo.toml`
then trains the demo model's shape (6.9M parameters). Ctrl-C stops the run and leaves OUT as it was.

Settings (gpt2.data.PrepareConfig, recorded in OUT/manifest.json) come from --config FILE.toml,
then the options below, then --set KEY=VALUE (repeatable; dotted keys and TOML values, as in
`gpt2 train`'s overrides: --set clean.min_chars=200 --set near_dedup=false --set
decontam.eval_files='["eval.jsonl"]'). Each option is a shorthand for one key: --min-chars N is
--set clean.min_chars=N.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .numbers import float_in, int_in

if TYPE_CHECKING:
    from ..data import PrepareConfig


MAX_WORKERS = 512


class _SettingValue:
    """The argparse type of an option that sets a numeric setting: the setting's own range
    (gpt2.data.prepare), looked up when first needed, since importing the pipeline would slow
    every command's start; `%(type)s` in the option's help shows it."""

    def __init__(self, key: str, kind: type) -> None:
        self.key, self.kind = key, kind  # no __name__: argparse would show it for %(type)s

    def _range(self):  # noqa: ANN202 (settings.Range, imported late)
        from ..data.prepare import numeric_ranges

        return numeric_ranges()[self.key]

    def __call__(self, text: str) -> Any:
        r = self._range()
        if self.kind is int:
            return int_in(r.low, r.high)(text)
        return float_in(r.low, r.high, low_open=r.low_open, high_open=r.high_open)(text)

    def __str__(self) -> str:
        r = self._range()
        return f"{r.low:,} to {r.high:,}" if self.kind is int else f"in {r}"


def _off(_given: bool) -> bool:
    """A switch's value: `--no-x` (or --keep-control) sets its setting to false."""
    return False


def _normal_form(form: str) -> str | bool:
    return False if form == "none" else form


def _separator(text: str) -> str:
    """--separator with its backslash escapes applied."""
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise UsageError(f"--separator {text!r}: bad escape ({e.reason}); write escapes as \\n, \\t, "
                         f"\\x1e, \\u2028") from None


# The options that are shorthands for settings: (option, key, what its value becomes; None: itself).
# Applied in this order, so a switch below wins over the values above (--no-near-dedup over --num-perm).
OPTIONS: tuple[tuple[str, str, Callable[[Any], Any] | None], ...] = (
    ("--text-field", "read.text_field", None),
    ("--separator", "read.separator", _separator),
    ("--strict", "read.strict", None),
    ("--normalize", "clean.normalize", _normal_form),
    ("--keep-control", "clean.strip_control", _off),
    ("--min-chars", "clean.min_chars", None),
    ("--max-chars", "clean.max_chars", None),
    ("--near-dup-threshold", "near_dedup.threshold", None),
    ("--num-perm", "near_dedup.num_perm", None),
    ("--decontaminate", "decontam.eval_files", None),
    ("--decontam-ngram", "decontam.ngram", None),
    ("--decontam-action", "decontam.action", None),
    ("--val-fraction", "val_fraction", None),
    ("--shard-tokens", "shard_tokens", None),
    ("--no-quality", "clean.quality", _off),
    ("--no-exact-dedup", "exact_dedup", _off),
    ("--no-near-dedup", "near_dedup", _off),
    ("--no-dedup", "exact_dedup", _off),
    ("--no-dedup", "near_dedup", _off),
)
_OPTION_OF = {key: option for option, key, _ in reversed(OPTIONS)}  # for errors: a key's first option


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
    g = p.add_argument_group("settings")
    g.add_argument("--config", metavar="FILE.toml", help="settings from a TOML file (keys as for --set)")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="set any setting, e.g. --set clean.quality.min_words=20 (after --config and the "
                        "options below; each key once)")
    g = p.add_argument_group("reading")
    g.add_argument("--text-field", help="JSONL/Parquet field holding the text (default: text)")
    g.add_argument("--separator", help=r"split .txt files into documents at this string (escapes like \n work)")
    g.add_argument("--strict", action="store_true", help="stop at a bad JSONL line or unreadable file")
    g = p.add_argument_group("cleaning and filtering (all on by default)")
    g.add_argument("--normalize", choices=["NFC", "NFKC", "NFD", "NFKD", "none"],
                   help="Unicode normalization form of the text kept (default NFC); n-gram matching "
                        "(near-duplicates, decontamination) compares NFKC forms whatever this says")
    g.add_argument("--keep-control", action="store_true", help="keep control characters and \\r")
    g.add_argument("--min-chars", type=_SettingValue("clean.min_chars", int),
                   help="drop shorter documents (%(type)s, default 1)")
    g.add_argument("--max-chars", type=_SettingValue("clean.max_chars", int),
                   help="drop longer documents (%(type)s, at least --min-chars; default: no limit)")
    g.add_argument("--no-quality", action="store_true", help="switch off the Gopher-style quality rules")
    g.add_argument("--no-exact-dedup", action="store_true", help="keep exact duplicates")
    g.add_argument("--no-near-dedup", action="store_true", help="keep near duplicates (MinHash LSH off)")
    g.add_argument("--no-dedup", action="store_true", help="both of the above")
    g.add_argument("--near-dup-threshold", type=_SettingValue("near_dedup.threshold", float),
                   help="Jaccard similarity above which documents are near duplicates (%(type)s, default 0.8)")
    g.add_argument("--num-perm", type=_SettingValue("near_dedup.num_perm", int),
                   help="MinHash permutations (%(type)s, default 128)")
    g.add_argument("--decontaminate", nargs="+", metavar="EVAL",
                   help="evaluation files whose n-grams training documents must not share")
    g.add_argument("--decontam-ngram", type=_SettingValue("decontam.ngram", int),
                   help="n-gram length in words (%(type)s, default 8)")
    g.add_argument("--decontam-action", choices=["drop", "report"],
                   help="drop contaminated documents (default) or only count them")
    g = p.add_argument_group("output")
    g.add_argument("--val-fraction", type=_SettingValue("val_fraction", float),
                   help="share of documents for validation, by content hash (%(type)s; default 0.005, "
                        "0.1 for --corpus demo)")
    g.add_argument("--shard-tokens", type=_SettingValue("shard_tokens", int),
                   help="tokens per shard (%(type)s, default 100,000,000)")
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


def _options_layer(args: argparse.Namespace) -> dict:
    """The settings the options given set, as a settings tree."""
    from ..settings import set_dotted

    data: dict = {}
    for option, key, convert in OPTIONS:
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and value is not False:  # given
            set_dotted(data, key, value if convert is None else convert(value))
    return data


def _layers(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """The run's settings trees, by source, in the order they apply: --config, options, --set.
    The options are checked alone first, so that settings they contradict each other in are named
    by their options."""
    from ..data.prepare import build_config
    from ..settings import nest, parse_overrides, read_toml

    options = _options_layer(args)
    build_config([("", options)], label=lambda key: _OPTION_OF.get(key, key))
    layers = [("options", options), ("--set", nest(parse_overrides(args.set, "--set")))]
    return layers if args.config is None else [(args.config, read_toml(args.config)), *layers]


def resolve(args: argparse.Namespace) -> tuple[list[str], PrepareConfig]:
    """(inputs, config) of the run the options describe."""
    from ..data import corpus
    from ..data.prepare import build_config

    layers = _layers(args)
    config = build_config(layers)
    inputs = list(args.inputs)
    if args.corpus:
        if inputs:
            raise UsageError("give either INPUT files or --corpus, not both")
        inputs = [str(corpus.corpus_path(args.corpus))]
        chosen = any("val_fraction" in data for _, data in layers)  # else the corpus's own share
        config = corpus.corpus_config(config, **({"val_fraction": config.val_fraction} if chosen else {}))
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
    steps = {"control_characters": "control characters removed",
             "normalization": f"{config.clean.normalize} normalized"}
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
