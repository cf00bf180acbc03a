"""`gpt2.load`: the one way in to a model and its tokenizer, for every command and for users.

    model, tok = gpt2.load()                       # the bundled demo model (offline)
    model, tok = gpt2.load("gpt2", device="cuda")  # OpenAI's 124M from the hub (cached after once)
    model, tok = gpt2.load("runs/x/checkpoints/step-300", dtype="bfloat16")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import DEMO_NAME, resolve_checkpoint
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
    else GPT-2's bundled vocabulary."""
    return _tokenizer_beside(resolve_checkpoint(DEFAULT_MODEL if name_or_dir is None else name_or_dir))


def load(name_or_dir: str | os.PathLike[str] | None = None, *,
         device: "str | torch.device | None" = None,
         dtype: "str | torch.dtype | None" = None) -> tuple[GPT2, "Tokenizer"]:
    """(model in eval mode, tokenizer) for "demo" (the default), a preset/hub name such as "gpt2",
    or a checkpoint directory. `device` ("cpu", "cuda:0", ...) must exist on this machine; `dtype`
    is float32 / bfloat16 / float16 (default float32)."""
    directory = resolve_checkpoint(DEFAULT_MODEL if name_or_dir is None else name_or_dir)
    model = GPT2.from_pretrained(directory, device=device, dtype=dtype)  # checks device and dtype
    return model, _tokenizer_beside(directory)


def _tokenizer_beside(directory: Path) -> "Tokenizer":
    from .tokenizer import Tokenizer

    return Tokenizer.from_pretrained(str(directory) if has_tokenizer_files(directory) else "gpt2")
