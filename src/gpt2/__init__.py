"""gpt2: GPT-2 (Radford et al., 2019) as real, fast, exact software.

    >>> from gpt2 import GPT2, GPT2Config, Tokenizer
    >>> model = GPT2.from_pretrained("gpt2")          # or a local checkpoint directory
    >>> tok = Tokenizer.from_pretrained("gpt2")       # OpenAI's BPE, bundled, offline
    >>> logits = model(torch.tensor([tok.encode("Hello world")]))
    >>> [s.text for s in generate(model, tok, "Hello", max_new_tokens=20, top_k=40, seed=0)]
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from .config import GPT2Config
from .errors import CheckpointError, ConfigError, GPT2Error, TokenizerError, UsageError

if TYPE_CHECKING:
    from .generation import Sample, SamplingOptions, generate, stream
    from .loading import load
    from .model import GPT2, KVCache
    from .tokenizer import Tokenizer

# The model and generation import torch (about a second); the tokenizer and the data pipeline
# (and their worker processes) do not need it, so these names load on first use.
_LAZY = {"load": "loading", "GPT2": "model", "KVCache": "model", "Sample": "generation",
         "SamplingOptions": "generation", "generate": "generation", "stream": "generation", "Tokenizer": "tokenizer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "load",
    "GPT2",
    "GPT2Config",
    "KVCache",
    "Tokenizer",
    "generate",
    "stream",
    "Sample",
    "SamplingOptions",
    "GPT2Error",
    "ConfigError",
    "CheckpointError",
    "TokenizerError",
    "UsageError",
]
