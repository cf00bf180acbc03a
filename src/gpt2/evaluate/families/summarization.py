"""Summarization on CNN/Daily Mail, the paper's way (section 3.6): the article followed by
"\\nTL;DR:", 100 tokens sampled with top-k 2, the first 3 generated sentences as the summary;
ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Google's rouge-score, stemmed) against the
highlights, and their mean (the paper's "R-AVG"). The article is cut from the end to fit.

Data: JSONL with "article" and "highlights" (the hub's abisee/cnn_dailymail 3.0.0).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UsageError
from ..data import read_jsonl
from ..generation import generate
from ..metrics import first_sentences, mean, mean_stderr, rouge
from ..options import max_new_tokens, seed, sentences, top_k
from ..types import EvalContext, Metric, Task

HINT = "\nTL;DR:"


def _read(path: Path) -> list[dict]:
    return [{"article": d["article"], "highlights": d["highlights"]}
            for d in read_jsonl(path, required=["article", "highlights"])]


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    s = ctx.settings
    budget = ctx.model.config.n_ctx - s["max_new_tokens"] - len(ctx.encode(HINT))
    if budget < 1:
        raise UsageError(f"--set max_new_tokens={s['max_new_tokens']} leaves no room for the article "
                         f"in n_ctx={ctx.model.config.n_ctx}; lower it")
    prompts = []
    for d in docs:
        ids = ctx.encode(d["article"])
        article = d["article"] if len(ids) <= budget else ctx.tokenizer.decode(ids[:budget])
        prompts.append(article + HINT)
    outs = generate(ctx, prompts, max_new_tokens=s["max_new_tokens"], temperature=1.0,
                    top_k=s["top_k"], seed=s["seed"], desc="cnn_dailymail")
    summaries = [first_sentences(o, s["sentences"]) for o in outs]
    scores = rouge(summaries, [d["highlights"] for d in docs])
    n = len(docs)
    avg = [(a + b + c) / 3 for a, b, c in zip(scores["rouge1"], scores["rouge2"], scores["rougeL"])]
    return [Metric(k, mean(v), mean_stderr(v), n) for k, v in scores.items()] + [
        Metric("rouge_avg", mean(avg), mean_stderr(avg), n)]


TASKS = [Task(
    name="cnn_dailymail", family="summarization",
    description="CNN/Daily Mail (test): article + 'TL;DR:', top-k 2, 100 tokens, 3 sentences, ROUGE",
    run=_run, read=_read, data_format="JSONL with article, highlights",
    hf=("abisee/cnn_dailymail", "3.0.0", "test"),
    from_hf=lambda r: {"article": r["article"], "highlights": r["highlights"]},
    settings={"max_new_tokens": max_new_tokens(100), "top_k": top_k(2), "sentences": sentences(3),
              "seed": seed(0)},
)]
