"""Bad inputs to `gpt2 quantize`: methods and group sizes that do not exist or do not fit the
model, output paths that exist, are files or cannot be written, models and adapters that cannot be
loaded or are already quantized, and a closed stdout. Nothing may be written in any of them."""

from __future__ import annotations

from pathlib import Path

from .harness import Case

Q = ("quantize", "{ckpt}")  # gpt2-nano: n_embd 48, so int8 and int4 with groups of 48's divisors fail


def file_at(name: str):
    def setup(tmp: Path, assets: dict) -> None:
        (tmp / name).write_text("x")
    return setup


def nonempty_dir(tmp: Path, assets: dict) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("keep me")


CASES = [
    Case("quantize-no-output", Q, match=r"the following arguments are required: -o/--output"),
    Case("quantize-no-model", ("quantize", "-o", "{tmp}/out"), match=r"required: MODEL"),
    Case("quantize-output-not-empty", (*Q, "--output", "{tmp}/out"), setup=nonempty_dir,
         match=r"--output .*out: already exists and is not empty; give a new directory"),
    Case("quantize-output-is-a-file", (*Q, "--output", "{tmp}/out"), setup=file_at("out"),
         match=r"--output .*out: is a file; give a new directory"),
    Case("quantize-output-under-a-file", (*Q, "-o", "{tmp}/f/out"), setup=file_at("f"),
         match=r"--output .*f is a file, so nothing can be written under it"),
    Case("quantize-method-int3", (*Q, "--output", "{tmp}/out", "--quantize", "int3"),
         match=r"argument --quantize: invalid choice: 'int3'"),
    Case("quantize-int4-narrow-model", (*Q, "--output", "{tmp}/out", "--quantize", "int4"),
         match=r"int4 with groups of 32 needs n_embd to be a multiple of 32; this model's is 48"),
    Case("quantize-group-size-48", (*Q, "--output", "{tmp}/out", "--quantize", "int4", "--group-size", "48"),
         match=r"argument --group-size: invalid choice: 48"),
    Case("quantize-group-size-word", (*Q, "--output", "{tmp}/out", "--quantize", "int4", "--group-size", "big"),
         match=r"argument --group-size: invalid int value: 'big'"),
    Case("quantize-group-size-with-int8", (*Q, "--output", "{tmp}/out", "--group-size", "32"),
         match=r"--group-size goes with --quantize int4, not int8"),
    Case("quantize-dtype-banana", (*Q, "--output", "{tmp}/out", "--dtype", "banana"),
         match=r"argument --dtype: invalid choice: 'banana'"),
    Case("quantize-model-missing", ("quantize", "{tmp}/nope", "-o", "{tmp}/out"),
         match=r"nope: no such checkpoint directory"),
    Case("quantize-model-already-quantized", ("quantize", "{qckpt}", "-o", "{tmp}/out"),
         match=r"qckpt already holds quantized weights; quantize the original checkpoint"),
    Case("quantize-adapter-missing", (*Q, "--output", "{tmp}/out", "--adapter", "{tmp}/nope"), match=r"nope"),
    Case("quantize-adapter-not-an-adapter", (*Q, "--output", "{tmp}/out", "--adapter", "{ckpt}"),
         match=r"adapter_config\.json"),
    Case("quantize-stdout-closed", (*Q, "--output", "{tmp}/out"), stdout="closed", match=r"stdout"),
]
