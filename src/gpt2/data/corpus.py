"""The bundled demo corpus: Shakespeare's complete works and the King James Bible.

108 documents, 9.6 MB of text, 2.55 MB as xz-compressed JSON Lines in gpt2/assets/corpus/
(provenance and license notices in NOTICE.txt there). Curated text, so `gpt2 prepare --corpus demo`
switches the web-text quality rules off, as GPT-2 kept curated sources without such filtering.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from .prepare import PrepareConfig

CORPORA = {"demo": "demo.jsonl.xz"}
_DIR = Path(__file__).resolve().parent.parent / "assets" / "corpus"


def corpus_path(name: str = "demo") -> Path:
    """The compressed JSON Lines file of a bundled corpus."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; bundled: {', '.join(CORPORA)}")
    path = _DIR / CORPORA[name]
    if not path.is_file():
        raise DataError(f"{path}: the bundled corpus is missing from this installation; reinstall gpt2")
    return path


def notice_path() -> Path:
    return _DIR / "NOTICE.txt"


DEMO_VAL_FRACTION = 0.1  # 10 of the 108 documents, enough to measure validation loss


def corpus_config(config: PrepareConfig = PrepareConfig(), val_fraction: float = DEMO_VAL_FRACTION) -> PrepareConfig:
    """`config` with the demo corpus's settings: no quality rules and a validation split of
    `val_fraction` (config's own is replaced: a default cannot be told from a chosen value)."""
    return replace(config, clean=replace(config.clean, quality=None), val_fraction=val_fraction)


def default_tokenizer(corpus: str | None) -> str:
    """The tokenizer `prepare` uses when none is named: for the demo corpus the bundled demo
    model's own (8,192 tokens, trained on it with `gpt2 tokenizer train --corpus demo
    --vocab-size 8192`), so that `gpt2 train configs/demo.toml` builds the demo model's shape;
    GPT-2's otherwise."""
    return "demo" if corpus == "demo" else "gpt2"


def tokenizer_location(name: str) -> str:
    """What `prepare` loads for a --tokenizer value: "demo" is the bundled demo model's directory
    (unless a directory of that name exists here); anything else as given."""
    if name == "demo" and not Path(name).exists():
        from ..checkpoint import resolve_checkpoint

        return str(resolve_checkpoint("demo"))
    return name
