"""Metrics and their standard errors.

    mean_stderr            standard error of a mean (sample standard deviation / sqrt(n)),
                           lm-evaluation-harness's closed form for accuracies
    perplexity_stderr      delta-method standard error of exp(-mean log-likelihood)
    normalize_answer       SQuAD / CoQA answer normalization (lowercase, no punctuation or
                           articles, single spaces)
    f1_score, exact_match  token-overlap F1 and exact match of normalized answers (CoQA, SQuAD)
    rouge                  ROUGE-1/2/L F-measures through Google's `rouge-score`
    bleu                   corpus BLEU through `sacrebleu`
    split_sentences        a rule-based sentence splitter; first_sentences: the first n of them
                           (summaries keep 3 generated sentences, translations 1)
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

from ..errors import UsageError


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs) if xs else float("nan")


def sample_stddev(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return float("nan")
    mu = mean(xs)
    return math.sqrt(math.fsum((x - mu) ** 2 for x in xs) / (len(xs) - 1))


def mean_stderr(xs: Sequence[float]) -> float:
    """Standard error of the mean of xs (NaN for fewer than two values)."""
    return sample_stddev(xs) / math.sqrt(len(xs)) if len(xs) >= 2 else float("nan")


def perplexity_stderr(logprobs: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Delta-method standard error of exp(-sum(lp) / sum(w)) (w = 1 per item by default):
    ppl * se(ratio), with the ratio's standard error from per-item lp_i - r * w_i."""
    n = len(logprobs)
    if n < 2:
        return float("nan")
    w = [1.0] * n if weights is None else list(weights)
    W = math.fsum(w)
    r = -math.fsum(logprobs) / W
    resid = [(-lp - r * wi) for lp, wi in zip(logprobs, w)]
    se_r = math.sqrt(n / (n - 1) * math.fsum(x * x for x in resid)) / W
    return math.exp(r) * se_r


def ratio_stderr(numerators: Sequence[float], weights: Sequence[float]) -> float:
    """Delta-method standard error of sum(x) / sum(w)."""
    n = len(numerators)
    if n < 2:
        return float("nan")
    W = math.fsum(weights)
    r = math.fsum(numerators) / W
    resid = [x - r * w for x, w in zip(numerators, weights)]
    return math.sqrt(n / (n - 1) * math.fsum(x * x for x in resid)) / W


# --------------------------------------------------------------------------- answers


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace (the
    normalization of the official SQuAD and CoQA evaluation scripts)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized gold answer."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token-overlap F1 of normalized answers, the maximum over the gold answers.

    With several golds this is SQuAD's max; the official CoQA script instead averages, over
    each gold left out in turn, the max over the others — see coqa.py.
    """
    return max(_f1(prediction, g) for g in golds) if golds else 0.0


# --------------------------------------------------------------------------- generation metrics


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """Per-example ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Porter stemming), through
    Google's `rouge-score`, as {"rouge1": [...], "rouge2": [...], "rougeL": [...]}."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise UsageError("ROUGE needs rouge-score: pip install 'gpt2[eval]' (or rouge-score)") from None
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    out: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    for pred, ref in zip(predictions, references):
        scores = scorer.score(ref, pred)
        for k in out:
            out[k].append(scores[k].fmeasure)
    return out


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu's default 13a tokenization, one reference per sentence)."""
    try:
        import sacrebleu
    except ImportError:
        raise UsageError("BLEU needs sacrebleu: pip install 'gpt2[eval]' (or sacrebleu)") from None
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def sentence_bleu(prediction: str, reference: str) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, [reference]).score)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of text: a split after . ! ? (and closing quotes/brackets) followed by
    whitespace and a capital letter or digit; newlines also end sentences."""
    out: list[str] = []
    for para in text.split("\n"):
        para = para.strip()
        if not para:
            continue
        start = 0
        for m in _SENTENCE_END.finditer(para):
            out.append(para[start : m.start()].strip() + para[m.start() : m.end()].strip())
            start = m.end()
        out.append(para[start:].strip())
    return [s for s in out if s]


def first_sentences(text: str, n: int) -> str:
    """The first n sentences of text (split_sentences), joined by single spaces."""
    return " ".join(split_sentences(text)[:n])
