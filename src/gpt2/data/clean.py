"""Normalization and document filters: Unicode form, control characters, length, quality.

Each filter either keeps a document or names the reason it was dropped; `prepare` counts the
reasons into the manifest's filter report. The quality rules follow Gopher's (Rae et al. 2021,
appendix A; used in the same form by C4-style and FineWeb pipelines) with their published
thresholds as defaults; every rule can be switched off by setting its threshold to None.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..settings import num

# Upper bounds of the settings' ranges: beyond them a value is a mistake.
MAX_CHARS = 10**12  # characters in one document
MAX_WORDS = 10**12  # words in one document

# C0 and C1 control characters except tab and newline; carriage returns become newlines first.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_CRLF = re.compile(r"\r\n?")
_ASCII_CONTROL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# Whitespace-separated tokens without a single letter (digits, punctuation, symbols only).
_NO_LETTER = re.compile(r"(?<!\S)(?:[\d_]|[^\w\s])+(?!\S)")
# The same count for ASCII text, done by deleting bytes (4x faster): what str.split() treats as
# whitespace becomes a space, every other byte that is not a letter is deleted, and the words left
# are those that had a letter.
_ASCII_SPACE = bytes(range(256)).translate(
    bytes.maketrans(bytes(c for c in range(128) if chr(c).isspace()), b" " * sum(chr(c).isspace() for c in range(128)))
)
_ASCII_NOT_LETTER = bytes(c for c in range(128) if not (chr(c).isalpha() or chr(c).isspace()))
_STOP_WORDS = re.compile(r"\b(the|be|to|of|and|that|have|with)\b")
_BULLET_CHARS = "\u2022\u2023\u25b6\u25cf\u25e6\u25aa\u25ab\u2013\u2014*-"
_BULLET = re.compile(rf"^\s*[{_BULLET_CHARS}]\s", re.M)
_ELLIPSIS_END = re.compile(r"(?:\.\.\.|\u2026)\s*$", re.M)


@dataclass(frozen=True)
class QualityConfig:
    """Gopher's quality thresholds; None switches a rule off."""

    min_words: int | None = num(50, 0, MAX_WORDS)
    max_words: int | None = num(100_000, 0, MAX_WORDS)
    min_mean_word_length: float | None = num(3.0, 0, MAX_CHARS)
    max_mean_word_length: float | None = num(10.0, 0, MAX_CHARS)
    # "#" and ellipses per word: may pass 1
    max_symbol_word_ratio: float | None = num(0.1, 0, MAX_CHARS)
    max_bullet_lines: float | None = num(0.9, 0, 1)  # fraction of lines that start with a bullet
    max_ellipsis_lines: float | None = num(0.3, 0, 1)  # fraction of lines that end with an ellipsis
    min_alpha_words: float | None = num(0.8, 0, 1)  # fraction of words with at least one letter
    # distinct English stop words ("the", "and", ...): at most all of _STOP_WORDS' 8
    min_stop_words: int | None = num(2, 0, 8)
    max_duplicate_lines: float | None = num(0.3, 0, 1)  # fraction of non-empty lines seen before in the doc
    max_duplicate_line_chars: float | None = num(0.2, 0, 1)  # fraction of characters in such lines


@dataclass(frozen=True)
class CleanConfig:
    normalize: str | None = "NFC"  # a unicodedata form: NFC, NFKC, NFD, NFKD; None leaves text as is
    strip_control: bool = True  # drop control characters, turn \r\n and \r into \n
    min_chars: int = num(1, 0, MAX_CHARS)  # after cleaning; an empty document is always dropped
    max_chars: int | None = num(None, 1, MAX_CHARS)
    quality: QualityConfig | None = field(default_factory=QualityConfig)


def clean_text(text: str, config: CleanConfig) -> str:
    """The text after Unicode normalization and control-character removal (as configured)."""
    return clean_text_changes(text, config)[0]


def clean_text_changes(text: str, config: CleanConfig) -> tuple[str, bool, bool]:
    """`clean_text`, and whether control-character removal and normalization each changed it
    (for the report: neither drops documents, so nothing else would show what they did)."""
    stripped = normalized = False
    if config.strip_control:
        length, stripped = len(text), "\r" in text
        if stripped:
            text = _CRLF.sub("\n", text)
        if text.isascii():  # bytes.translate deletes in one C pass, ~10x faster than the regex
            text = text.encode("ascii").translate(None, _ASCII_CONTROL).decode("ascii")
        else:
            text = _CONTROL.sub("", text)
        stripped = stripped or len(text) != length
    if config.normalize and not unicodedata.is_normalized(config.normalize, text):
        text = unicodedata.normalize(config.normalize, text)
        normalized = True
    return text, stripped, normalized


def length_reason(text: str, config: CleanConfig) -> str | None:
    if not text.strip():
        return "empty"
    if len(text) < config.min_chars:
        return "too_short"
    if config.max_chars is not None and len(text) > config.max_chars:
        return "too_long"
    return None


def quality_reason(text: str, q: QualityConfig) -> str | None:
    """The name of the first quality rule `text` fails, or None when it passes them all."""
    words = text.split()
    n = len(words)
    if q.min_words is not None and n < q.min_words:
        return "quality_too_few_words"
    if q.max_words is not None and n > q.max_words:
        return "quality_too_many_words"
    if n == 0:
        return "quality_too_few_words"
    mean = len("".join(words)) / n
    if q.min_mean_word_length is not None and mean < q.min_mean_word_length:
        return "quality_mean_word_length"
    if q.max_mean_word_length is not None and mean > q.max_mean_word_length:
        return "quality_mean_word_length"
    if q.max_symbol_word_ratio is not None and _symbols(text) / n > q.max_symbol_word_ratio:
        return "quality_symbol_ratio"
    if q.min_alpha_words is not None and _words_with_letter(text, n) / n < q.min_alpha_words:
        return "quality_alphabetic_words"
    if q.min_stop_words is not None and _distinct_stop_words(text, q.min_stop_words) < q.min_stop_words:
        return "quality_stop_words"
    lines = [line for line in text.split("\n") if line.strip()]
    if lines:
        # Cheap upper bounds (str.count runs in C) spare the regexes on almost every document.
        bound = len(lines) * (q.max_bullet_lines or 0)
        if (q.max_bullet_lines is not None and sum(map(text.count, _BULLET_CHARS)) > bound
                and len(_BULLET.findall(text)) > bound):
            return "quality_bullet_lines"
        bound = len(lines) * (q.max_ellipsis_lines or 0)
        if (q.max_ellipsis_lines is not None and text.count("...") + text.count("\u2026") > bound
                and len(_ELLIPSIS_END.findall(text)) > bound):
            return "quality_ellipsis_lines"
        if q.max_duplicate_lines is not None or q.max_duplicate_line_chars is not None:
            seen: set[str] = set()
            dup_lines = dup_chars = total_chars = 0
            for line in lines:
                total_chars += len(line)
                if line in seen:
                    dup_lines += 1
                    dup_chars += len(line)
                else:
                    seen.add(line)
            if q.max_duplicate_lines is not None and dup_lines / len(lines) > q.max_duplicate_lines:
                return "quality_duplicate_lines"
            if q.max_duplicate_line_chars is not None and dup_chars / total_chars > q.max_duplicate_line_chars:
                return "quality_duplicate_line_chars"
    return None


def _symbols(text: str) -> int:
    return text.count("#") + text.count("...") + text.count("\u2026")


def _words_with_letter(text: str, n_words: int) -> int:
    if text.isascii():
        return len(text.encode("ascii").translate(_ASCII_SPACE, _ASCII_NOT_LETTER).split())
    return n_words - len(_NO_LETTER.findall(text))


def _distinct_stop_words(text: str, enough: int) -> int:
    found: set[str] = set()
    for m in _STOP_WORDS.finditer(text.lower() if not text.islower() else text):
        found.add(m.group(1))
        if len(found) >= enough:  # usually within the first sentence
            break
    return len(found)


def filter_reason(text: str, config: CleanConfig) -> str | None:
    """Why the (already cleaned) document is dropped, or None when it is kept."""
    reason = length_reason(text, config)
    if reason is None and config.quality is not None:
        reason = quality_reason(text, config.quality)
    return reason
