"""`gpt2 quantize MODEL -o DIR`: save a model with int8, int4 or fp16 weights, to load without re-quantizing.

    gpt2 quantize gpt2 -o gpt2-int8                       # int8 weights (the default)
    gpt2 quantize gpt2-medium -o medium-int4 --quantize int4
    gpt2 quantize demo -o demo-int4 --quantize int4 --group-size 64
    gpt2 generate --model gpt2-int8 "Hello"               # any command loads it, quantized as saved

DIR receives config.json (its quantization_config entry says what the tensors hold),
model.safetensors and the tokenizer files. DIR must be new or empty; it is written all at once
(a failure or Ctrl-C leaves nothing). The float parts (embeddings, LayerNorms, biases) are saved
in --dtype. transformers cannot load the result; every gpt2 command can. The format and the
schemes are described in gpt2.quantize.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import UsageError
from .generate import DTYPES, QUANTIZE

GROUP_SIZES = (32, 64, 128, 256)  # gpt2.quantize.GROUP_SIZES (not imported here: torch)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize",
        help="save a model with int8, int4 or fp16 weights (faster decoding on CPU)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("model", metavar="MODEL",
                   help="demo (the bundled demo model), a preset or hub name such as gpt2, a checkpoint "
                        "directory, or a LoRA adapter directory (merged before quantizing)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the new checkpoint directory (new or empty)")
    p.add_argument("--quantize", choices=QUANTIZE, default="int8",
                   help="int8 (one scale per output row), int4 (a scale and zero per group of inputs) or "
                        "fp16 (float16 weights, float32 arithmetic); default int8")
    p.add_argument("--group-size", type=int, choices=GROUP_SIZES, metavar="G",
                   help="int4 only: inputs per scale, one of 32, 64, 128, 256 (default 32)")
    p.add_argument("--adapter", metavar="DIR", help="a LoRA adapter (PEFT's format) merged into MODEL first")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="the float parts' dtype, float32, bfloat16 or float16 (default float32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.group_size is not None and args.quantize != "int4":
        raise UsageError(f"--group-size goes with --quantize int4, not {args.quantize}")
    output = _check_output(args.output)
    sys.stdout.flush()  # a closed stdout fails here, before the model loads
    from ..loading import load
    from ..quantize import DEFAULT_GROUP_SIZE, quantize_model

    from ..finetune.lora import is_adapter_dir, merge_lora

    model, tokenizer = load(args.model, adapter=args.adapter, dtype=args.dtype)
    if model.quantization_config:
        raise UsageError(f"{args.model} already holds quantized weights; quantize the original checkpoint")
    if args.adapter is not None or is_adapter_dir(args.model):
        merge_lora(model)  # quantized layers take plain weights
    quantize_model(model, args.quantize, group_size=args.group_size or DEFAULT_GROUP_SIZE)
    _write_all_at_once(output, lambda d: (model.save_pretrained(d), tokenizer.save_pretrained(d)))
    size = sum(f.stat().st_size for f in output.iterdir())
    print(f"{output}: {args.quantize} weights, {model.config.n_layer} layers and the head "
          f"({size / 2**20:,.1f} MiB)")
    return 0


def _check_output(path: str) -> Path:
    """-o must name a new or empty directory in a writable place: checked before any loading."""
    output = Path(path).expanduser()
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {path}: is a file; give a new directory")
    if output.is_dir() and any(output.iterdir()):
        raise UsageError(f"--output {path}: already exists and is not empty; give a new directory "
                         f"(nothing is overwritten)")
    parent = output.absolute().parent
    ancestor = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if ancestor is None or not ancestor.is_dir():
        raise UsageError(f"--output {path}: {ancestor} is a file, so nothing can be written under it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: cannot write in {ancestor} (permission denied)")
    return output


def _write_all_at_once(output: Path, write) -> None:  # noqa: ANN001 (a callable of a Path)
    """Write into a hidden directory beside `output`, then rename it into place: a failure or
    Ctrl-C leaves no half-written checkpoint."""
    output.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.absolute().parent))
    try:
        write(staging)
        os.chmod(staging, 0o777 & ~_umask())
        if output.is_dir():
            output.rmdir()  # empty (checked); rename does not replace a directory on every system
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
