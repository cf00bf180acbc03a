"""Bad inputs to `gpt2 overlap`: missing and wrong-kind training and evaluation paths, splits a
dataset lacks, no training documents (an error, as in `prepare`, not a 0% report), every numeric
option's bad values, an unreachable hub, and lost stdout."""

from __future__ import annotations

from pathlib import Path

from .harness import Case


def _empty_dir(tmp: Path, assets: dict) -> None:
    (tmp / "empty").mkdir()


def _broken_dataset(tmp: Path, assets: dict) -> None:
    (tmp / "ds").mkdir()
    (tmp / "ds" / "manifest.json").write_text("{not json", encoding="utf-8")


TRAIN_EVAL = ("overlap", "{data}", "--eval", "{text}")  # a valid call but for the one thing a row adds

CASES = [
    Case("overlap-train-missing", ("overlap", "{tmp}/nope", "--eval", "{text}"), match=r"nope: no such file"),
    Case("overlap-train-empty-dir", ("overlap", "{tmp}/empty", "--eval", "{text}"), setup=_empty_dir,
         match=r"empty: no training documents found"),
    Case("overlap-train-broken-manifest", ("overlap", "{tmp}/ds", "--eval", "{text}"), setup=_broken_dataset,
         match=r"manifest\.json: unreadable manifest"),
    Case("overlap-train-hf-offline", ("overlap", "hf:some/dataset", "--eval", "{text}"), env={"HF_HUB_OFFLINE": "1"},
         match=r"hf:some/dataset: .*HF_HUB_OFFLINE is set"),
    Case("overlap-splits-missing", (*TRAIN_EVAL, "--splits", "nope"), match=r"data: no 'nope' split \(it has train, val\)"),
    Case("overlap-splits-one-missing", (*TRAIN_EVAL, "--splits", "train,test"), match=r"no 'test' split"),
    Case("overlap-splits-empty", (*TRAIN_EVAL, "--splits", ","), match=r"--splits ',' names no split"),
    Case("overlap-eval-missing", ("overlap", "{data}", "--eval", "{tmp}/eval.txt"), match=r"eval\.txt: no such file"),
    Case("overlap-eval-empty-dir", ("overlap", "{data}", "--eval", "{tmp}/empty"), setup=_empty_dir,
         match=r"empty: no text, \.jsonl or \.parquet files to evaluate"),
    Case("overlap-eval-no-files", ("overlap", "{data}", "--eval"), match=r"--eval: expected at least one argument"),
    Case("overlap-eval-absent", ("overlap", "{data}"), match=r"the following arguments are required: --eval"),
    Case("overlap-ngram-zero", (*TRAIN_EVAL, "--ngram", "0"), match=r"--ngram: 0 is out of range"),
    Case("overlap-ngram-huge", (*TRAIN_EVAL, "--ngram", "1" + "0" * 25), match=r"--ngram: 1000+ is out of range"),
    Case("overlap-ngram-nan", (*TRAIN_EVAL, "--ngram", "nan"), match=r"--ngram: 'nan' is not an integer"),
    Case("overlap-ngram-float", (*TRAIN_EVAL, "--ngram", "1e999"), match=r"--ngram: '1e999' is not an integer"),
    Case("overlap-fpr-zero", (*TRAIN_EVAL, "--fpr", "0"), match=r"--fpr: 0 is out of range"),
    Case("overlap-fpr-above-half", (*TRAIN_EVAL, "--fpr", "2"), match=r"--fpr: 2 is out of range"),
    Case("overlap-fpr-nan", (*TRAIN_EVAL, "--fpr", "nan"), match=r"--fpr: nan is not a finite number"),
    Case("overlap-fpr-inf", (*TRAIN_EVAL, "--fpr=-inf"), match=r"--fpr: -inf is not a finite number"),
    Case("overlap-fpr-text", (*TRAIN_EVAL, "--fpr", "small"), match=r"--fpr: 'small' is not a number"),
    Case("overlap-text-field-empty", ("overlap", "{jsonl}", "--eval", "{text}", "--text-field", ""),
         match=r"--text-field must not be empty"),
    Case("overlap-json-stdout-closed", (*TRAIN_EVAL, "--json"), stdout="closed", match=r"stdout is closed"),
    Case("overlap-json-stdout-full", (*TRAIN_EVAL, "--json"), stdout="full", match=r"cannot write to stdout: No space left"),
    Case("overlap-stdout-full", TRAIN_EVAL, stdout="full", match=r"cannot write to stdout"),
]
