"""Normalization and each quality rule, on planted documents."""

from __future__ import annotations

import unicodedata

import pytest

from gpt2.data.clean import (CleanConfig, QualityConfig, clean_text, clean_text_changes, filter_reason,
                             quality_reason)

LONG_LINE = ("the river and the stone were of the garden that the window had with the letter "
             "in the morning of silver harbor market")


def test_nfc_and_control_characters():
    text = "Cafe\u0301\r\nnext\x00line\x1b[0m\ttab\ufeff \x85"
    out = clean_text(text, CleanConfig())
    assert out == "Caf\u00e9\nnextline[0m\ttab "
    assert unicodedata.is_normalized("NFC", out)
    assert clean_text(text, CleanConfig(normalize=None, strip_control=False)) == text


def test_ascii_fast_path_equals_regex_path():
    text = "a\x01b\x7fc\td\ne\x0bf"
    assert clean_text(text, CleanConfig()) == clean_text(text + "\u00e9", CleanConfig())[:-1]


def test_length_bounds():
    config = CleanConfig(min_chars=10, max_chars=20, quality=None)
    assert filter_reason("   \n ", config) == "empty"
    assert filter_reason("short", config) == "too_short"
    assert filter_reason("x" * 21, config) == "too_long"
    assert filter_reason("just right", config) is None


@pytest.mark.parametrize("text, reason", [
    ("the and cat. " * 10, "quality_too_few_words"),
    ("the and " + "a b c d e f " * 20, "quality_mean_word_length"),
    ("the and " + "incomprehensibilities " * 60, "quality_mean_word_length"),
    ("the and word ### #tag ... " * 20, "quality_symbol_ratio"),
    ("the and 1234 5678 9012 3456 7890 word " * 20, "quality_alphabetic_words"),
    ("cats dogs birds fish trees rocks " * 20, "quality_stop_words"),
    ("\n".join(f"- the item and thing of note here today{i}" for i in range(60)), "quality_bullet_lines"),
    ("\n".join(f"the story and then it went over the hills far away{i} ..." for i in range(60)),
     "quality_ellipsis_lines"),
    ("\n".join(["the same line and again"] * 30 + [f"the other {i} and line" for i in range(20)]),
     "quality_duplicate_lines"),
    ("the and " + "words " * 100_000, "quality_too_many_words"),
    # 2 of 10 lines repeat (within the 0.3 line limit), but they hold over half the characters.
    ("\n".join([LONG_LINE] * 3 + [f"the note {i} and more" for i in range(7)]), "quality_duplicate_line_chars"),
])
def test_each_quality_rule_fires(text, reason):
    assert quality_reason(text, QualityConfig()) == reason


def test_good_prose_passes_and_rules_switch_off(prose):
    assert quality_reason(prose(1), QualityConfig()) is None
    lines = "\n".join(["the same line and again"] * 30 + [f"the other {i} and line" for i in range(20)])
    assert quality_reason(lines, QualityConfig(max_duplicate_lines=None, max_duplicate_line_chars=None)) is None
    assert filter_reason("tiny", CleanConfig(quality=None)) is None


def test_rule_thresholds_are_what_decides():
    text = "\n".join([LONG_LINE] * 3 + [f"the note {i} and more" for i in range(7)])
    assert quality_reason(text, QualityConfig(max_duplicate_line_chars=0.6)) is None
    words = "the and " + "words " * 200
    assert quality_reason(words, QualityConfig(max_words=202)) is None
    assert quality_reason(words, QualityConfig(max_words=201)) == "quality_too_many_words"


def test_clean_text_says_which_step_changed_the_text():
    config = CleanConfig()
    assert clean_text_changes("plain text", config) == ("plain text", False, False)
    assert clean_text_changes("a\rb", config) == ("a\nb", True, False)  # same length, still a change
    assert clean_text_changes("a\x00b", config) == ("ab", True, False)
    assert clean_text_changes("Cafe\u0301", config) == ("Caf\u00e9", False, True)
    assert clean_text_changes("Cafe\u0301\x07", config) == ("Caf\u00e9", True, True)
    assert clean_text_changes("Cafe\u0301\x07", CleanConfig(normalize=None, strip_control=False))[1:] == (False, False)
