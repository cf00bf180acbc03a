"""`gpt2.load`: the one way in to a model and its tokenizer, for every command and for users.

    model, tok = gpt2.load()                       # the bundled demo model (offline)
    model, tok = gpt2.load("gpt2", device="cuda")  # OpenAI's 124M from the hub (cached after once)
    model, tok = gpt2.load("runs/x/checkpoints/step-300", dtype="bfloat16")
    model, tok = gpt2.load("gpt2", adapter="runs/lora/adapter")  # a base model plus a PEFT LoRA adapter
    model, tok = gpt2.load("runs/lora/adapter")    # the same: the adapter names its base model
    model, tok = gpt2.load("gpt2", quantize="int8")  # int8 weights (gpt2.quantize), for fast decoding

An adapter comes back unmerged (LoRALinear layers, exactly PEFT's function);
gpt2.finetune.lora.merge_lora folds it into plain weights for speed or for saving a checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import DEMO_NAME, resolve_checkpoint
from .errors import FinetuneError, QuantizeError
from .model import GPT2

if TYPE_CHECKING:
    import torch

    from .tokenizer import Tokenizer

# The model a command uses when it is given none.
DEFAULT_MODEL = DEMO_NAME


def has_tokenizer_files(directory: str | os.PathLike[str]) -> bool:
    """Whether a checkpoint directory carries its own vocabulary (vocab.json + merges.txt)."""
    path = Path(directory)
    return (path / "vocab.json").is_file() and (path / "merges.txt").is_file()


def load_tokenizer(name_or_dir: str | os.PathLike[str] | None = None) -> "Tokenizer":
    """The tokenizer that goes with a model: the checkpoint's own files when it has them,
    else GPT-2's bundled vocabulary. For an adapter directory, its base model's."""
    base, _ = _base_and_adapter(name_or_dir, None)
    return _tokenizer_beside(resolve_checkpoint(base))


def load(name_or_dir: str | os.PathLike[str] | None = None, *,
         adapter: str | os.PathLike[str] | None = None,
         device: "str | torch.device | None" = None,
         dtype: "str | torch.dtype | None" = None,
         quantize: str | None = None) -> tuple[GPT2, "Tokenizer"]:
    """(model in eval mode, tokenizer) for "demo" (the default), a preset/hub name such as "gpt2",
    or a checkpoint directory. `device` ("cpu", "cuda:0", ...) must exist on this machine; `dtype`
    is float32 / bfloat16 / float16 (default float32).

    `adapter`: a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)
    put on the model, unmerged. An adapter directory given alone as `name_or_dir` loads the base
    model its adapter_config.json names (base_model_name_or_path, resolved like any name here: a
    relative path from the current directory, as PEFT does). The tokenizer is the base's.

    `quantize`: "int8" or "int4" replaces the Linear layers and the head by quantized ones after
    loading (an adapter is merged first); see gpt2.quantize. A checkpoint saved quantized loads
    quantized without it."""
    from .checkpoint import parse_dtype, quantization_config
    from .devices import parse_device
    from .quantize import check_kernel, parse_quantize, quantize_model

    # Every argument is checked before anything is read or downloaded.
    method = parse_quantize(quantize)
    device = parse_device("cpu" if device is None else device, "device")
    dtype = parse_dtype(dtype)
    if method is not None:
        check_kernel(method, device)
    base, adapter = _base_and_adapter(name_or_dir, adapter)
    directory = resolve_checkpoint(base)
    saved = quantization_config(directory)
    if saved is not None and (adapter is not None or method is not None):
        what = "an adapter" if adapter is not None else f"quantize={method!r}"
        raise QuantizeError(f"{directory}: already holds quantized weights, so {what} cannot be applied; "
                            f"load it as it is, or start from the original checkpoint")
    model = GPT2.from_pretrained(directory, device=device, dtype=dtype)
    if adapter is not None:
        from .finetune.lora import load_adapter, merge_lora

        load_adapter(model, adapter)  # checks everything before it changes the model
        if method is not None:
            merge_lora(model)  # quantized layers take plain weights
    quantize_model(model, method)
    return model, _tokenizer_beside(directory)


def _base_and_adapter(
    name_or_dir: str | os.PathLike[str] | None, adapter: str | os.PathLike[str] | None
) -> tuple[str | os.PathLike[str], str | os.PathLike[str] | None]:
    """(the base model's name or directory, the adapter directory or None)."""
    from .finetune.lora import adapter_base, is_adapter_dir, read_adapter_config

    name = DEFAULT_MODEL if name_or_dir is None else name_or_dir
    if not is_adapter_dir(name):
        if adapter is not None:
            read_adapter_config(adapter)  # a bad adapter is refused before the base is read or downloaded
        return name, adapter
    if adapter is not None:
        raise FinetuneError(f"{name} is an adapter directory, not a base model; pass the base model "
                            f"with adapter=, or the adapter directory alone")
    return adapter_base(name), name


def _tokenizer_beside(directory: Path) -> "Tokenizer":
    from .tokenizer import Tokenizer

    return Tokenizer.from_pretrained(str(directory) if has_tokenizer_files(directory) else "gpt2")
