"""Bad inputs to `gpt2 prepare`: every option's out-of-range, non-numeric and non-finite values,
missing and wrong-kind paths, output directories it must not touch, an unreachable hub, lost
stdout, and Ctrl-C at several moments (OUT must be left as it was)."""

from __future__ import annotations

from pathlib import Path

from gpt2.data.corpus import corpus_path

from .harness import Case, write_file


def _bad_jsonl(tmp: Path, assets: dict) -> None:
    (tmp / "bad.jsonl").write_text('{"text": "fine words here"}\nthis is not JSON\n', encoding="utf-8")


def _empty_dir(tmp: Path, assets: dict) -> None:
    (tmp / "empty").mkdir()


def _no_text_files(tmp: Path, assets: dict) -> None:
    (tmp / "other").mkdir()
    (tmp / "other" / "image.png").write_bytes(b"\x89PNG\r\n")


def _short_eval(tmp: Path, assets: dict) -> None:
    (tmp / "short.txt").write_text("only five words in here", encoding="utf-8")


def _not_empty(tmp: Path, assets: dict) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "notes.txt").write_text("mine", encoding="utf-8")


OUT = ("--out", "{tmp}/out")
DEMO = str(corpus_path("demo"))  # 9.6 MB; named three times, a run lasts long enough to interrupt
SMALL = ("prepare", "{textdir}", *OUT, "--workers", "0")  # a valid run but for the one thing a row adds

CASES = [
    # inputs
    Case("prepare-missing-input", ("prepare", "{tmp}/nope.txt", *OUT), match=r"nope\.txt: no such file"),
    Case("prepare-no-input", ("prepare", *OUT), match=r"no INPUT given"),
    Case("prepare-empty-input-dir", ("prepare", "{tmp}/empty", *OUT), setup=_empty_dir,
         match=r"no input files found"),
    Case("prepare-dir-without-text-files", ("prepare", "{tmp}/other", *OUT), setup=_no_text_files,
         match=r"no input files found"),
    Case("prepare-input-and-corpus", ("prepare", "{text}", "--corpus", "demo", *OUT),
         match=r"either INPUT files or --corpus"),
    Case("prepare-unknown-corpus", ("prepare", "--corpus", "banana", *OUT), match=r"unknown corpus 'banana'"),
    Case("prepare-hf-offline", ("prepare", "hf:some/dataset", *OUT), env={"HF_HUB_OFFLINE": "1"},
         match=r"hf:some/dataset: .*HF_HUB_OFFLINE is set"),
    Case("prepare-hf-unreachable", ("prepare", "hf:some/dataset", *OUT),
         env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": None, "HF_DATASETS_OFFLINE": None,
              "HTTPS_PROXY": None, "https_proxy": None, "ALL_PROXY": None, "all_proxy": None},
         match=r"hf:some/dataset: .*cannot reach 127\.0\.0\.1:9", timeout=30),
    Case("prepare-hf-no-name", ("prepare", "hf:", *OUT), match=r"hf:: no dataset name"),
    # tokenizer
    Case("prepare-tokenizer-missing", (*SMALL, "--tokenizer", "{tmp}/no-such-tokenizer"),
         match=r"no-such-tokenizer: not a tokenizer directory"),
    Case("prepare-tokenizer-dir-without-files", (*SMALL, "--tokenizer", "{textdir}"),
         match=r"textdir: no tokenizer files"),
    # reading
    Case("prepare-text-field-empty", (*SMALL, "--text-field", ""), match=r"--text-field must not be empty"),
    Case("prepare-strict-bad-line", ("prepare", "{tmp}/bad.jsonl", *OUT, "--workers", "0", "--strict"),
         setup=_bad_jsonl, only_line=False, match=r"bad\.jsonl:2: not valid JSON"),
    Case("prepare-separator-empty", (*SMALL, "--separator", ""), match=r"--separator must not be empty"),
    Case("prepare-separator-bad-escape", (*SMALL, "--separator", "\\x"), match=r"--separator '\\\\x': bad escape"),
    # cleaning and filtering
    Case("prepare-normalize-unknown", (*SMALL, "--normalize", "banana"),
         match=r"--normalize: invalid choice: 'banana'"),
    Case("prepare-min-chars-negative", (*SMALL, "--min-chars", "-1"), match=r"--min-chars: -1 is out of range"),
    Case("prepare-min-chars-nan", (*SMALL, "--min-chars", "nan"), match=r"--min-chars: 'nan' is not an integer"),
    Case("prepare-min-chars-huge", (*SMALL, "--min-chars", "1" + "0" * 30), match=r"--min-chars: 1000+ is out of range"),
    Case("prepare-max-chars-zero", (*SMALL, "--max-chars", "0"), match=r"--max-chars: 0 is out of range"),
    Case("prepare-max-below-min", (*SMALL, "--min-chars", "100", "--max-chars", "10"),
         match=r"--max-chars 10 is below --min-chars 100"),
    Case("prepare-keep-control-bad-max", (*SMALL, "--keep-control", "--max-chars", "ten"),
         match=r"--max-chars: 'ten' is not an integer"),
    Case("prepare-no-quality-bad-min", (*SMALL, "--no-quality", "--min-chars", "1.5"),
         match=r"--min-chars: '1.5' is not an integer"),
    Case("prepare-threshold-zero", (*SMALL, "--near-dup-threshold", "0"),
         match=r"--near-dup-threshold: 0 is out of range"),
    Case("prepare-threshold-one", (*SMALL, "--near-dup-threshold", "1"),
         match=r"--near-dup-threshold: 1 is out of range"),
    Case("prepare-threshold-nan", (*SMALL, "--near-dup-threshold", "nan"),
         match=r"--near-dup-threshold: nan is not a finite number"),
    Case("prepare-threshold-inf", (*SMALL, "--no-exact-dedup", "--near-dup-threshold", "inf"),
         match=r"--near-dup-threshold: inf is not a finite number"),
    Case("prepare-num-perm-zero", (*SMALL, "--no-near-dedup", "--num-perm", "0"), match=r"--num-perm: 0 is out of range"),
    Case("prepare-num-perm-huge", (*SMALL, "--num-perm", "100000"), match=r"--num-perm: 100000 is out of range"),
    Case("prepare-num-perm-text", (*SMALL, "--no-dedup", "--num-perm", "many"), match=r"--num-perm: 'many' is not an integer"),
    Case("prepare-decontaminate-missing", (*SMALL, "--decontaminate", "{tmp}/eval.txt"),
         match=r"eval\.txt: no such file"),
    Case("prepare-decontaminate-empty-dir", (*SMALL, "--decontaminate", "{tmp}/empty"), setup=_empty_dir,
         match=r"empty: no 8-grams to decontaminate against"),
    Case("prepare-decontaminate-too-short", (*SMALL, "--decontaminate", "{tmp}/short.txt"), setup=_short_eval,
         match=r"short\.txt: no 8-grams to decontaminate against"),
    Case("prepare-decontam-ngram-zero", (*SMALL, "--decontaminate", "{text}", "--decontam-ngram", "0"),
         match=r"--decontam-ngram: 0 is out of range"),
    Case("prepare-decontam-ngram-huge", (*SMALL, "--decontaminate", "{text}", "--decontam-ngram", "99999999999"),
         match=r"--decontam-ngram: 99999999999 is out of range"),
    Case("prepare-decontam-action-unknown", (*SMALL, "--decontaminate", "{text}", "--decontam-action", "delete"),
         match=r"--decontam-action: invalid choice: 'delete'"),
    # output
    Case("prepare-val-fraction-one", (*SMALL, "--val-fraction", "1"), match=r"--val-fraction: 1 is out of range"),
    Case("prepare-val-fraction-negative", (*SMALL, "--val-fraction", "-0.1"), match=r"--val-fraction: -0.1 is out of range"),
    Case("prepare-val-fraction-nan", (*SMALL, "--val-fraction", "nan"), match=r"--val-fraction: nan is not a finite"),
    Case("prepare-shard-tokens-zero", (*SMALL, "--shard-tokens", "0"), match=r"--shard-tokens: 0 is out of range"),
    Case("prepare-shard-tokens-1e999", (*SMALL, "--shard-tokens", "1e999"),
         match=r"--shard-tokens: '1e999' is not an integer"),
    Case("prepare-workers-negative", ("prepare", "{textdir}", *OUT, "--workers", "-3"),
         match=r"--workers: -3 is out of range"),
    Case("prepare-workers-huge", ("prepare", "{textdir}", *OUT, "--workers", "100000"),
         match=r"--workers: 100000 is out of range"),
    Case("prepare-workers-inf", ("prepare", "{textdir}", *OUT, "--workers", "inf"),
         match=r"--workers: 'inf' is not an integer"),
    Case("prepare-out-is-a-file", ("prepare", "{textdir}", "--out", "{text}", "--workers", "0"),
         match=r"text\.txt: exists and is not a directory"),
    Case("prepare-out-under-a-file", ("prepare", "{textdir}", "--out", "{text}/out", "--workers", "0", "--quiet"),
         match=r"text\.txt/out: cannot create the output directory \(Not a directory\)"),
    Case("prepare-out-unwritable", ("prepare", "{textdir}", "--out", "/sys/gpt2-out", "--workers", "0"),
         match=r"/sys/gpt2-out: cannot create the output directory"),
    Case("prepare-out-other-dataset", ("prepare", "{text}", "--out", "{data}", "--workers", "0"),
         match=r"data: already holds a different prepared dataset; pass --overwrite"),
    Case("prepare-out-not-empty", (*SMALL,), setup=_not_empty, match=r"out: not empty and not a prepared dataset"),
    Case("prepare-overwrite-out-is-a-file", ("prepare", "{textdir}", "--out", "{text}", "--overwrite"),
         match=r"text\.txt: exists and is not a directory"),
    Case("prepare-stdout-closed", (*SMALL,), stdout="closed", match=r"stdout is closed"),
    Case("prepare-stdout-full", ("prepare", "{text}", *OUT, "--workers", "0", "--no-quality"), stdout="full",
         may_write=True, only_line=False,  # found at the summary, after the progress line: the dataset is whole
         match=r"cannot write to stdout: No space left"),
    # --config FILE.toml: the file, then its keys and values (one rule for every source: settings.build)
    Case("prepare-config-missing", (*SMALL, "--config", "{tmp}/nope.toml"), match=r"nope\.toml: no such config file"),
    Case("prepare-config-is-a-directory", (*SMALL, "--config", "{tmp}"), match=r": cannot read"),
    Case("prepare-config-bad-toml", (*SMALL, "--config", "{tmp}/bad.toml"), setup=write_file("bad.toml", "[clean\n"),
         match=r"bad\.toml: invalid TOML"),
    Case("prepare-config-not-utf8", (*SMALL, "--config", "{tmp}/bin.toml"), setup=write_file("bin.toml", b"\xff\xfe[c"),
         match=r"bin\.toml: cannot read"),
    Case("prepare-config-unknown-key", (*SMALL, "--config", "{tmp}/c.toml"),
         setup=write_file("c.toml", "[clean]\nmin_char = 3\n"), match=r"c\.toml: unknown key 'clean\.min_char'"),
    Case("prepare-config-nan", (*SMALL, "--config", "{tmp}/c.toml"),
         setup=write_file("c.toml", "val_fraction = nan\n"), match=r"c\.toml: val_fraction must be in \[0, 1\), got nan"),
    Case("prepare-config-out-of-range", (*SMALL, "--config", "{tmp}/c.toml"),
         setup=write_file("c.toml", "[near_dedup]\nnum_perm = 0\n"),
         match=r"c\.toml: near_dedup\.num_perm must be in \[1, 1024\], got 0"),
    Case("prepare-config-wrong-type", (*SMALL, "--config", "{tmp}/c.toml"),
         setup=write_file("c.toml", 'shard_tokens = "many"\n'), match=r"c\.toml: shard_tokens must be int, got 'many'"),
    Case("prepare-config-section-not-table", (*SMALL, "--config", "{tmp}/c.toml"),
         setup=write_file("c.toml", "clean = 3\n"), match=r"c\.toml: \[clean\] must be a table"),
    Case("prepare-config-contradicted", (*SMALL, "--config", "{tmp}/c.toml", "--max-chars", "10"),
         setup=write_file("c.toml", "[clean]\nmin_chars = 100\n"),
         match=r"c\.toml \+ options: clean\.max_chars 10 is below clean\.min_chars 100"),
    # --set KEY=VALUE
    Case("prepare-set-no-equals", (*SMALL, "--set", "oops"), match=r"--set 'oops': expected KEY=VALUE"),
    Case("prepare-set-no-key", (*SMALL, "--set", "=3"), match=r"--set '=3': expected KEY=VALUE"),
    Case("prepare-set-unknown-key", (*SMALL, "--set", "banana=1"), match=r"--set: unknown key 'banana' \(known"),
    Case("prepare-set-unknown-nested-key", (*SMALL, "--set", "near_dedup.thresold=0.5"),
         match=r"--set: unknown key 'near_dedup\.thresold'"),
    Case("prepare-set-int-not-a-number", (*SMALL, "--set", "clean.min_chars=ten"),
         match=r"--set: clean\.min_chars must be int, got 'ten'"),
    Case("prepare-set-int-given-float", (*SMALL, "--set", "shard_tokens=2.5"), match=r"--set: shard_tokens must be int"),
    Case("prepare-set-bool-given-int", (*SMALL, "--set", "exact_dedup=1"), match=r"--set: exact_dedup must be bool"),
    Case("prepare-set-out-of-range", (*SMALL, "--set", "clean.min_chars=-1"),
         match=r"--set: clean\.min_chars must be in \[0, 1000000000000\], got -1"),
    Case("prepare-set-nan", (*SMALL, "--set", "near_dedup.threshold=nan"),
         match=r"--set: near_dedup\.threshold must be in \(0, 1\), got nan"),
    Case("prepare-set-inf", (*SMALL, "--set", "val_fraction=inf"), match=r"--set: val_fraction must be in \[0, 1\)"),
    Case("prepare-set-twice", (*SMALL, "--set", "val_fraction=0.1", "--set", "val_fraction=0.2"),
         match=r"--set val_fraction given twice"),
    Case("prepare-set-section-not-table", (*SMALL, "--set", "clean=3"), match=r"--set: \[clean\] must be a table"),
    Case("prepare-set-optional-section-bad", (*SMALL, "--set", "near_dedup=3"),
         match=r"--set: near_dedup must be a table, true or false, got 3"),
    Case("prepare-set-under-a-value", (*SMALL, "--set", "shard_tokens.x=1"),
         match=r"--set: shard_tokens must be int, got \{'x': 1\}"),
    Case("prepare-set-under-a-switched-off-section", (*SMALL, "--set", "near_dedup=false", "--set", "near_dedup.ngram=3"),
         match=r"near_dedup is not a section"),
    Case("prepare-set-normalize-unknown", (*SMALL, "--set", "clean.normalize=NFX"),
         match=r"--set: clean\.normalize must be one of NFC, NFKC, NFD, NFKD or false, got 'NFX'"),
    Case("prepare-set-text-field-empty", (*SMALL, "--set", "read.text_field=''"),
         match=r"--set: read\.text_field must not be empty"),
    Case("prepare-set-eval-files-not-a-list", (*SMALL, "--set", "decontam.eval_files={text}"),
         match=r"--set: decontam\.eval_files must be a list of str"),
    Case("prepare-set-decontam-action-unknown", (*SMALL, "--set", "decontam.eval_files=['{text}']",
                                                 "--set", "decontam.action=delete"),
         match=r"--set: decontam\.action must be drop or report, got 'delete'"),
    Case("prepare-set-contradicts-option", (*SMALL, "--min-chars", "100", "--set", "clean.max_chars=10"),
         match=r"options \+ --set: clean\.max_chars 10 is below clean\.min_chars 100"),
    # Ctrl-C: at the start of the work, as the workers start, mid-tokenization (SIGINT at once on
    # the stderr line). Publishing, and Ctrl-C to the whole process group, are in
    # tests/data/test_interrupt.py.
    Case("prepare-interrupt-at-start", ("prepare", "{textdir}", *OUT, "--workers", "0"),
         interrupt=r"reading 40 input file", expect=130),
    Case("prepare-interrupt-workers-starting", ("prepare", "{jsonl}", *OUT, "--workers", "2"),
         interrupt=r"reading 1 input file", expect=130),
    Case("prepare-interrupt-mid-tokenization", ("prepare", DEMO, DEMO, DEMO, *OUT, "--workers", "1"),
         interrupt=r"\d documents, .* MB/s", expect=130),
]
