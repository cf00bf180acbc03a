"""Bad inputs to `gpt2 tokenizer encode|decode|train`."""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

from .harness import Case, write_file

T = "tokenizer"


_write = write_file


def _tokenizer_dir(vocab: str | bytes | None, merges: str | None):
    """{tmp}/tok with GPT-2's files from {ckpt}, one of them replaced (None: left out)."""
    def setup(tmp: Path, assets: dict) -> None:
        (tmp / "tok").mkdir()
        for name, content in (("vocab.json", vocab), ("merges.txt", merges)):
            if content is None:
                continue
            if content == "copy":
                shutil.copy(assets["ckpt"] / name, tmp / "tok" / name)
            elif isinstance(content, bytes):
                (tmp / "tok" / name).write_bytes(content)
            else:
                (tmp / "tok" / name).write_text(content)
    return setup


def _big_text(copies: int):
    """{tmp}/big.txt: the 40 asset documents `copies` times (~120 KB each time)."""
    def setup(tmp: Path, assets: dict) -> None:
        text = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(assets["textdir"].iterdir()))
        with open(tmp / "big.txt", "w", encoding="utf-8") as f:
            for i in range(copies):
                f.write(text.replace("the", f"the{i % 97}"))
    return setup


def _demo_text(tmp: Path, assets: dict) -> None:
    """{tmp}/demo.txt: the bundled corpus (9 MB of varied words: merges take seconds)."""
    from gpt2.data.corpus import corpus_path

    with lzma.open(corpus_path("demo"), "rt", encoding="utf-8") as src, \
            open(tmp / "demo.txt", "w", encoding="utf-8") as dst:
        for line in src:
            dst.write(json.loads(line)["text"] + "\n\n")


ENC = (T, "encode")
DEC = (T, "decode")
TR = (T, "train")
OK_TRAIN = ("{text}", "--vocab-size", "300", "--output", "{tmp}/out")

CASES = [
    # ---------------------------------------------------------------- the group
    Case("tokenizer-no-action", (T,), match=r"required: ACTION"),
    Case("tokenizer-unknown-action", (T, "banana"), match=r"invalid choice: 'banana'"),

    # ---------------------------------------------------------------- encode
    Case("tokenizer-encode-binary-stdin", ENC, stdin=b"caf\xe9 \xff\xfe", match=r"TEXT: stdin is not UTF-8"),
    Case("tokenizer-encode-binary-stdin-json", ENC + ("-", "--json"), stdin=b"\x80abc",
         match=r"TEXT: stdin is not UTF-8"),
    Case("tokenizer-encode-closed-stdin", ENC, stdin="closed", match=r"TEXT: stdin is closed"),
    Case("tokenizer-encode-closed-stdin-allow-special", ENC + ("--allow-special",), stdin="closed",
         match=r"stdin is closed"),
    Case("tokenizer-encode-non-utf8-argv", ENC + ("caf\udce9", "--allow-special"), match=r"TEXT: not UTF-8"),
    Case("tokenizer-encode-closed-stdout", ENC + ("Hello",), stdout="closed", match=r"stdout is closed"),
    Case("tokenizer-encode-full-stdout", ENC + ("Hello", "--json"), stdout="full",
         match=r"stdout: No space left"),
    Case("tokenizer-encode-tokenizer-missing", ENC + ("hi", "--tokenizer", "{tmp}/nowhere"),
         match=r"nowhere: not a tokenizer directory nor a GPT-2 name"),
    Case("tokenizer-encode-tokenizer-unknown-name", ENC + ("hi", "--tokenizer", "gpt3"),
         match=r"gpt3: not a tokenizer directory"),
    Case("tokenizer-encode-tokenizer-is-a-file", ENC + ("hi", "--tokenizer", "{text}"),
         match=r"text.txt: a file, not a tokenizer directory"),
    Case("tokenizer-encode-tokenizer-empty-dir", ENC + ("hi", "--tokenizer", "{tmp}"),
         match=r"no tokenizer files \(vocab.json \+ merges.txt"),
    Case("tokenizer-encode-tokenizer-corrupt-vocab", ENC + ("hi", "--tokenizer", "{tmp}/tok"),
         setup=_tokenizer_dir('{"a": 1,', "copy"), match=r"vocab.json: not valid JSON"),
    Case("tokenizer-encode-tokenizer-vocab-not-utf8", ENC + ("hi", "--tokenizer", "{tmp}/tok"),
         setup=_tokenizer_dir(b'{"\xff": 0}', "copy"), match=r"vocab.json: not UTF-8"),
    Case("tokenizer-encode-tokenizer-corrupt-merges", ENC + ("hi", "--tokenizer", "{tmp}/tok"),
         setup=_tokenizer_dir("copy", "#version: 0.2\nĠ t h\n"), match=r"merges.txt: line 2 is not a merge"),
    Case("tokenizer-encode-tokenizer-no-merges", ENC + ("hi", "--json", "--tokenizer", "{tmp}/tok"),
         setup=_tokenizer_dir("copy", None), match=r"merges.txt: missing \(it goes with vocab.json\)"),

    # ---------------------------------------------------------------- decode
    Case("tokenizer-decode-nested-list", DEC + ("[1, [2]]",), match=r"IDS: \[2\] is not a token id"),
    Case("tokenizer-decode-float", DEC + ("15496", "1.5"), match=r"IDS: '1.5' is not a token id"),
    Case("tokenizer-decode-float-in-json", DEC + ("[15496, 995.0]",), match=r"IDS: 995.0 is not a token id"),
    Case("tokenizer-decode-nan", DEC + ("nan",), match=r"IDS: 'nan' is not a token id"),
    Case("tokenizer-decode-word", DEC + ("hello",), match=r"IDS: 'hello' is not a token id"),
    Case("tokenizer-decode-broken-json", DEC + ("[1, 2",), match=r"IDS: not a JSON list"),
    Case("tokenizer-decode-json-object", DEC + ('{{"ids": [1]}}',), match=r"IDS: .* is not a token id"),
    Case("tokenizer-decode-out-of-range", DEC + ("15496", "50257"),
         match=r"token id 50257 is not in the vocabulary of gpt2 \(50257 ids"),
    Case("tokenizer-decode-negative", DEC + ("-1",), match=r"token id -1 is not in the vocabulary .*50257 ids"),
    Case("tokenizer-decode-huge", DEC + ("99999999999999999999999",),
         match=r"token id 99999999999999999999999 is not in the vocabulary"),
    Case("tokenizer-decode-binary-stdin", DEC, stdin=b"15496 \xff", match=r"IDS: stdin is not UTF-8"),
    Case("tokenizer-decode-garbage-stdin", DEC + ("-",), stdin="15496 995 x\n", match=r"IDS: 'x' is not a token id"),
    Case("tokenizer-decode-closed-stdin", DEC, stdin="closed", match=r"IDS: stdin is closed"),
    Case("tokenizer-decode-closed-stdout", DEC + ("15496",), stdout="closed", match=r"stdout is closed"),
    Case("tokenizer-decode-full-stdout", DEC + ("15496",), stdout="full", match=r"stdout: No space left"),
    Case("tokenizer-decode-tokenizer-missing", DEC + ("1", "--tokenizer", "{tmp}/nowhere"), match=r"nowhere"),
    Case("tokenizer-decode-tokenizer-is-a-file", DEC + ("1", "--tokenizer", "{text}"),
         match=r"a file, not a tokenizer directory"),
    Case("tokenizer-decode-tokenizer-corrupt-vocab", DEC + ("1", "--tokenizer", "{tmp}/tok"),
         setup=_tokenizer_dir("[1, 2]", "copy"), match=r"vocab.json: expected a JSON object"),

    # ---------------------------------------------------------------- train: numbers
    Case("tokenizer-train-vocab-size-huge", TR + ("{text}", "--vocab-size", "99999999999999", "--output", "{tmp}/o"),
         match=r"--vocab-size: 99999999999999 is out of range"),
    Case("tokenizer-train-vocab-size-nan", TR + ("{text}", "--vocab-size", "nan", "--output", "{tmp}/o"),
         match=r"--vocab-size: 'nan' is not an integer"),
    Case("tokenizer-train-vocab-size-inf", TR + ("{text}", "--vocab-size", "inf", "--output", "{tmp}/o"),
         match=r"--vocab-size: 'inf' is not an integer"),
    Case("tokenizer-train-vocab-size-256", TR + ("{text}", "--vocab-size", "256", "--output", "{tmp}/o"),
         match=r"--vocab-size: 256 is out of range"),
    Case("tokenizer-train-vocab-size-negative", TR + ("{text}", "--vocab-size", "-5", "--output", "{tmp}/o"),
         match=r"--vocab-size: -5 is out of range"),
    Case("tokenizer-train-vocab-size-float", TR + ("{text}", "--vocab-size", "1000.5", "--output", "{tmp}/o"),
         match=r"--vocab-size: '1000.5' is not an integer"),
    Case("tokenizer-train-vocab-size-missing", TR + ("{text}", "--output", "{tmp}/o"),
         match=r"required: --vocab-size"),
    Case("tokenizer-train-min-frequency-zero", TR + OK_TRAIN + ("--min-frequency", "0"),
         match=r"--min-frequency: 0 is out of range"),
    Case("tokenizer-train-min-frequency-nan", TR + OK_TRAIN + ("--min-frequency", "nan"),
         match=r"--min-frequency: 'nan' is not an integer"),
    Case("tokenizer-train-min-frequency-huge", TR + OK_TRAIN + ("--min-frequency", "1" + "0" * 20),
         match=r"--min-frequency: 10+ is out of range"),
    Case("tokenizer-train-min-frequency-word", TR + OK_TRAIN + ("--min-frequency", "often"),
         match=r"--min-frequency: 'often' is not an integer"),

    # ---------------------------------------------------------------- train: inputs
    Case("tokenizer-train-no-input", TR + ("--vocab-size", "300", "--output", "{tmp}/o"), match=r"no INPUT given"),
    Case("tokenizer-train-missing-input", TR + ("{tmp}/nothere.txt", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r"nothere.txt: no such file or directory"),
    Case("tokenizer-train-input-under-a-file", TR + ("{text}/x.txt", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r"x.txt: no such file"),
    Case("tokenizer-train-empty-dir-input", TR + ("{tmp}/empty", "--vocab-size", "300", "--output", "{tmp}/o"),
         setup=_write("empty/notes.csv", "a,b\n"), match=r"empty: a directory with no text files"),
    Case("tokenizer-train-empty-file", TR + ("{tmp}/e.txt", "--vocab-size", "300", "--output", "{tmp}/o"),
         setup=_write("e.txt", ""), match=r"no text to train on in .*e.txt: empty file"),
    Case("tokenizer-train-text-field-missing",
         TR + ("{jsonl}", "--text-field", "body", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r'no text to train on .*no "body" field \(choose another with --text-field\)'),
    Case("tokenizer-train-jsonl-not-json", TR + ("{tmp}/d.jsonl", "--vocab-size", "300", "--output", "{tmp}/o"),
         setup=_write("d.jsonl", "this is not json\n"), match=r"no text to train on .*d.jsonl:1: not valid JSON"),
    Case("tokenizer-train-corpus-unknown", TR + ("--corpus", "banana", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r"unknown corpus 'banana'; bundled: demo"),
    Case("tokenizer-train-corpus-and-files",
         TR + ("{text}", "--corpus", "demo", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r"either INPUT files or --corpus"),
    Case("tokenizer-train-text-field-with-corpus",
         TR + ("--corpus", "demo", "--text-field", "body", "--vocab-size", "300", "--output", "{tmp}/o"),
         match=r"--text-field is for INPUT files"),

    # ---------------------------------------------------------------- train: the output
    Case("tokenizer-train-output-missing", TR + ("{text}", "--vocab-size", "300"), match=r"required: --output"),
    Case("tokenizer-train-output-is-a-file", TR + ("{text}", "--vocab-size", "300", "--output", "{text}"),
         match=r"--output .*text.txt: is a file"),
    Case("tokenizer-train-output-under-a-file", TR + ("{text}", "--vocab-size", "300", "--output", "{text}/tok"),
         match=r"text.txt is a file, so nothing can be written under it"),
    Case("tokenizer-train-overwrite-output-is-a-file",
         TR + ("{text}", "--vocab-size", "300", "--output", "{text}", "--overwrite"), match=r"is a file"),
    Case("tokenizer-train-overwrite-under-a-file",
         TR + ("{text}", "--vocab-size", "300", "--output", "{text}/a/b", "--overwrite"),
         match=r"nothing can be written under it"),
    Case("tokenizer-train-output-holds-a-tokenizer", TR + ("{text}", "--vocab-size", "300", "--output", "{ckpt}"),
         match=r"already holds a tokenizer \(vocab.json\); pass --overwrite"),
    Case("tokenizer-train-output-holds-half-a-tokenizer", TR + ("{text}", "--vocab-size", "300", "--output", "{tmp}/t"),
         setup=_write("t/merges.txt", "#version: 0.2\n"), match=r"already holds a tokenizer \(merges.txt\)"),
    Case("tokenizer-train-closed-stdout", TR + OK_TRAIN, stdout="closed", match=r"stdout is closed"),
    Case("tokenizer-train-full-stdout", TR + OK_TRAIN, stdout="full", match=r"stdout: No space left"),

    # ---------------------------------------------------------------- train: Ctrl-C
    Case("tokenizer-train-interrupt-while-reading",
         TR + ("{tmp}/big.txt", "--vocab-size", "5000", "--output", "{tmp}/out"),
         setup=_big_text(200), interrupt=r"characters counted", expect=130),
    Case("tokenizer-train-interrupt-while-merging",
         TR + ("{tmp}/demo.txt", "--vocab-size", "30000", "--output", "{tmp}/out", "--overwrite"),
         setup=_demo_text, interrupt=r"computing merges", expect=130),
    Case("tokenizer-train-interrupt-jsonl-dir",
         TR + ("{tmp}", "--text-field", "text", "--vocab-size", "5000", "--min-frequency", "3",
               "--output", "{tmp}/out"),
         setup=lambda tmp, assets: (_big_text(200)(tmp, assets), _to_jsonl(tmp / "big.txt")),
         interrupt=r"characters counted", expect=130),
]


def _to_jsonl(path: Path) -> None:
    """Turn a text file into {path}.jsonl, one paragraph a record (and remove the text file)."""
    with open(path, encoding="utf-8") as src, open(path.with_suffix(".jsonl"), "w", encoding="utf-8") as dst:
        for paragraph in src.read().split("\n\n"):
            dst.write(json.dumps({"text": paragraph}) + "\n")
    path.unlink()
