"""LAMBADA: predict the last word of a passage whose last word needs the whole passage.

Data: OpenAI's detokenized test set (lambada_test.jsonl, the hub's EleutherAI/lambada_openai),
one {"text": ...} per line. The target is the last space-separated word.

    lambada_openai   lm-evaluation-harness's task, number for number:
                       acc         the whole last word is the greedy continuation
                       perplexity  exp(-mean log p(" " + last word | passage before it))
    lambada          the paper's variants on the same data:
                       acc_last_token       the passage's last BPE token is the argmax given
                                            everything before it (one reading of the paper's
                                            accuracy; see docs/evaluation.md)
                       acc                  whole last word greedy (as lambada_openai)
                       acc_stopword_filter  as acc, but the word's first token is the argmax
                                            over tokens that begin a word that is not a stop
                                            word (the paper's "stop-word filter", section 3.3)
                       ppl                  per-word perplexity of the last word
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch

from ..data import read_jsonl
from ..metrics import mean, mean_stderr, perplexity_stderr
from ..types import EvalContext, Metric, Task

# Common English function words (articles, pronouns, auxiliaries, prepositions, conjunctions).
STOP_WORDS = frozenset("""
a an the and or but nor so yet for if then than as of at by in on to from with without into onto
upon about above below over under up down out off through during before after since until while
i me my mine myself you your yours yourself he him his himself she her hers herself it its itself
we us our ours ourselves they them their theirs themselves this that these those who whom whose
which what where when why how all any both each few more most other some such no not only own same
too very can will just should would could may might must shall am is are was were be been being
have has had having do does did doing there here again once further also
""".split())

_FORMAT = 'JSONL with a "text" field per passage (lambada_test.jsonl)'
_HF = ("EleutherAI/lambada_openai", "default", "test")


def _read(path: Path) -> list[dict]:
    return [{"text": d["text"]} for d in read_jsonl(path, required=["text"])]


def _split(text: str) -> tuple[str, str]:
    """(passage before the last word, " " + last word), as lm-eval's lambada_openai."""
    words = text.split(" ")
    return " ".join(words[:-1]), " " + words[-1]


def _word_requests(ctx: EvalContext, docs: list[dict]) -> list[tuple[list[int], list[int]]]:
    return [ctx.encode_pair(*_split(d["text"])) for d in docs]


def _run_harness(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    scores = ctx.scorer.loglikelihood(_word_requests(ctx, docs), desc="lambada_openai")
    acc = [float(s.is_greedy) for s in scores]
    lps = [s.logprob for s in scores]
    n = len(docs)
    return [
        Metric("acc", mean(acc), mean_stderr(acc), n),
        Metric("perplexity", math.exp(-mean(lps)), perplexity_stderr(lps), n, higher_is_better=False),
    ]


@lru_cache(maxsize=4)
def _word_start_mask(tokenizer_id: int, vocab_size: int, decode) -> torch.Tensor:  # noqa: ANN001
    """Tokens that begin a word that is not a stop word: " " + letters, not a stop word."""
    allowed = torch.zeros(vocab_size, dtype=torch.bool)
    for i in range(vocab_size):
        try:
            s = decode([i])
        except Exception:  # special or undecodable ids
            continue
        if len(s) > 1 and s[0] == " " and s[1:].isalpha() and s[1:].lower() not in STOP_WORDS:
            allowed[i] = True
    return allowed


def _run_paper(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    requests = _word_requests(ctx, docs)
    vocab = ctx.model.config.vocab_size
    mask = _word_start_mask(id(ctx.tokenizer), vocab, ctx.tokenizer.decode)
    scores = ctx.scorer.loglikelihood(requests, first_token_filter=mask, desc="lambada (word)")
    last = []
    for d in docs:
        ids = ctx.encode(d["text"])
        last.append((ids[:-1], ids[-1:]))
    last_scores = ctx.scorer.loglikelihood(last, desc="lambada (last token)")
    n = len(docs)
    acc = [float(s.is_greedy) for s in scores]
    acc_sw = [
        float(s.filtered_first_argmax == cont[0] and all(s.token_is_greedy[1:]))
        for s, (_, cont) in zip(scores, requests)
    ]
    acc_last = [float(s.is_greedy) for s in last_scores]
    lps = [s.logprob for s in scores]
    return [
        Metric("acc_last_token", mean(acc_last), mean_stderr(acc_last), n),
        Metric("acc", mean(acc), mean_stderr(acc), n),
        Metric("acc_stopword_filter", mean(acc_sw), mean_stderr(acc_sw), n),
        Metric("ppl", math.exp(-mean(lps)), perplexity_stderr(lps), n, higher_is_better=False),
    ]


TASKS = [Task(
    name="lambada_openai", family="lambada",
    description="LAMBADA as lm-evaluation-harness scores it: whole-word greedy acc, word perplexity",
    run=_run_harness, read=_read, data_format=_FORMAT, hf=_HF,
    from_hf=lambda r: {"text": r["text"]},
), Task(
    name="lambada", family="lambada",
    description="LAMBADA, the paper's variants: last-token acc, word acc, stop-word filter, ppl",
    run=_run_paper, read=_read, data_format=_FORMAT, hf=_HF,
    from_hf=lambda r: {"text": r["text"]},
)]
