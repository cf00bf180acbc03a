"""The bundled demo corpus: Shakespeare's complete works and the King James Bible.

108 documents, 9.6 MB of text, 2.55 MB as xz-compressed JSON Lines in gpt2/assets/corpus/
(provenance and license notices in NOTICE.txt there). Curated text, so `gpt2 prepare --corpus demo`
switches the web-text quality rules off, as GPT-2 kept curated sources without such filtering.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .errors import DataError
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


def corpus_config(config: PrepareConfig = PrepareConfig()) -> PrepareConfig:
    """The settings for the demo corpus: no quality rules and a 10% validation split."""
    clean = replace(config.clean, quality=None)
    return replace(config, clean=clean, val_fraction=0.1 if config.val_fraction == PrepareConfig().val_fraction
                   else config.val_fraction)
