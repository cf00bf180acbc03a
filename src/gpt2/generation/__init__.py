"""Sampling text from GPT-2: incremental decoding with a preallocated KV cache.

    >>> from gpt2.generation import generate, stream, SamplingOptions
    >>> [s.text for s in generate(model, tok, ["Hello", "The meaning of"], top_k=40, seed=0)]
    >>> for piece in stream(model, tok, "Once upon a time", SamplingOptions(max_new_tokens=50)):
    ...     print(piece, end="", flush=True)

    options.py     SamplingOptions: every option declared once, with its range and help
    processors.py  the logit processors, one ordered pipeline (adding one: option + function + entry)
    choose.py      the next token: the pipeline, then argmax or a seeded draw
    decode.py      the KV-cache decoding loop: prefill, step, sliding window
    text.py        tokens to text as they come, stop strings and ids, Sample
    api.py         generate() and stream()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .options import SamplingOptions
from .text import Sample

if TYPE_CHECKING:
    from .api import Stream, generate, stream
    from .choose import choose_tokens, sample_seed
    from .decode import ContextWindowWarning, decode_tokens
    from .processors import (
        PROCESSORS,
        Processor,
        apply_repetition_penalty,
        apply_temperature,
        apply_top_k,
        apply_top_p,
        process_logits,
    )

# options and text do not import torch (the CLI builds its parser from the options); the rest
# does, so it loads on first use.
_LAZY = {
    "api": ("generate", "stream", "Stream"),
    "choose": ("choose_tokens", "sample_seed"),
    "decode": ("ContextWindowWarning", "decode_tokens"),
    "processors": ("PROCESSORS", "Processor", "apply_repetition_penalty", "apply_temperature", "apply_top_k",
                   "apply_top_p", "process_logits"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _MODULE_OF:
        import importlib

        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SamplingOptions", "Sample", *_MODULE_OF]
