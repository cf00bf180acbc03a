"""GPT-2's vocabulary: its split regex, its one special token, the bundled ranks and the names
that mean it.

GPT-2's 50,256 ranks ship with the package (assets/gpt2.tiktoken, sha256 below); the file is
parsed once per process (lru_cache) and `<|endoftext|>` = 50256 is added as the one special
token. `tiktoken.get_encoding("gpt2")` would download its files; we never call it.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import tiktoken

from .files import parse_tiktoken

# GPT-2's pre-tokenizer regex in tiktoken's syntax (= tiktoken_ext.openai_public.r50k_pat_str).
GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
EOT = "<|endoftext|>"
GPT2_SPECIALS = {EOT: 50256}  # never modified: compared against to recognise GPT-2's vocabulary
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
_BUNDLED = "gpt2.tiktoken"


@functools.lru_cache(maxsize=None)
def bundled_ranks() -> dict[bytes, int]:
    """GPT-2's ranks, parsed once per process. Callers must not modify the dict."""
    with resources.as_file(resources.files("gpt2") / "assets" / _BUNDLED) as path:
        return parse_tiktoken(Path(path))


@functools.lru_cache(maxsize=None)
def bundled_encoding() -> tiktoken.Encoding:
    return tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=bundled_ranks(), special_tokens=dict(GPT2_SPECIALS)
    )


def gpt2_names() -> frozenset[str]:
    """Names that mean GPT-2's vocabulary: the model presets and their hub aliases."""
    from ..config import HUB_ALIASES, preset_names

    return frozenset([*preset_names(), *HUB_ALIASES, "distilgpt2", "distilbert/distilgpt2"])
