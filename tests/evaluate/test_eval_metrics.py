"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from gpt2.evaluate.families.coqa import coqa_f1
from gpt2.evaluate.metrics import (
    bleu,
    exact_match,
    f1_score,
    mean_stderr,
    normalize_answer,
    perplexity_stderr,
    ratio_stderr,
    rouge,
    split_sentences,
)


def test_answer_normalization_and_scores():
    assert normalize_answer("  The Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert exact_match("the Paris.", ["paris", "London"]) == 1.0
    assert exact_match("Paris, France", ["paris"]) == 0.0
    # prediction "red big house" vs gold "the big red barn": common {red, big} = 2;
    # precision 2/3, recall 2/3 -> F1 2/3.
    assert f1_score("red big house", ["the big red barn"]) == pytest.approx(2 / 3)
    assert f1_score("", ["x"]) == 0.0 and f1_score("a", ["the"]) == 1.0  # both empty after normalization


def test_coqa_f1_leave_one_out():
    # golds g1="white", g2="white cat", g3="black".  prediction "white":
    # F1 vs each: 1, 2/3 (p=1, r=1/2), 0. Leave-one-out maxima: max(2/3,0)=2/3, max(1,0)=1, max(1,2/3)=1.
    assert coqa_f1("white", ["white", "white cat", "black"]) == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert coqa_f1("white", ["white"]) == 1.0


def test_standard_errors():
    xs = [1.0, 0.0, 1.0, 1.0]  # mean 0.75, sample var = (3*(0.0625) + 0.5625)/3 = 0.25
    assert mean_stderr(xs) == pytest.approx(math.sqrt(0.25) / 2)
    assert math.isnan(mean_stderr([1.0]))
    # Equal per-item log-likelihoods: no spread, no error.
    assert perplexity_stderr([-2.0, -2.0, -2.0]) == pytest.approx(0.0)
    # ratio sum(x)/sum(w) with x = (1, 3), w = (1, 1): r = 2, residuals (-1, 1),
    # se = sqrt(2/1 * 2) / 2 = 1.
    assert ratio_stderr([1.0, 3.0], [1.0, 1.0]) == pytest.approx(1.0)


def test_rouge_by_hand():
    r = rouge(["the cat sat"], ["the cat sat on the mat"])
    # unigrams: overlap 3, P = 3/3, R = 3/6 -> F = 2/3; bigrams: overlap 2, P = 2/2, R = 2/5 -> 4/7.
    assert r["rouge1"][0] == pytest.approx(2 / 3)
    assert r["rouge2"][0] == pytest.approx(4 / 7)
    assert r["rougeL"][0] == pytest.approx(2 / 3)  # LCS "the cat sat" = 3
    assert rouge(["Dogs running."], ["dog runs"])["rouge1"][0] == pytest.approx(1.0)  # stemmed


def test_bleu():
    assert bleu(["the cat is on the mat"], ["the cat is on the mat"]) == pytest.approx(100.0)
    assert bleu(["completely different words here"], ["the cat is on the mat"]) == pytest.approx(0.0)


def test_split_sentences():
    text = 'He came home. "Is it late?" she asked. It was 3 p.m. There.\nNew line'
    assert split_sentences(text) == ["He came home.", '"Is it late?" she asked.', "It was 3 p.m.", "There.", "New line"]
