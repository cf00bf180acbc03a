"""Multiple-choice tasks scored as lm-evaluation-harness scores them.

Each choice is a continuation " " + choice of the question's context; the prediction is the
choice with the highest log-likelihood (acc), or with the highest log-likelihood per
character of the choice (acc_norm). The choices share their context, which the scorer runs
once.

    hellaswag   HellaSwag (Zellers et al., 2019), validation, with lm-eval's preprocessing:
                query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()),
                where preprocess strips, turns " [title]" into ". ", drops [bracketed] WikiHow
                artifacts and double spaces. Data: JSONL in the hub's Rowan/hellaswag format
                (ctx_a, ctx_b, activity_label, endings, label).
    mc          any multiple-choice set: JSONL with "query", "choices", "gold" (an index).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data import read_jsonl
from ...errors import EvalDataError
from ..metrics import mean, mean_stderr
from ..types import EvalContext, Metric, Task


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness's hellaswag preprocess (tasks/hellaswag/utils.py)."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def hellaswag_doc(doc: dict) -> dict:
    ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {
        "query": hellaswag_preprocess(doc["activity_label"] + ": " + ctx),
        "choices": [hellaswag_preprocess(e) for e in doc["endings"]],
        "gold": int(doc["label"]),
    }


def _read_hellaswag(path: Path) -> list[dict]:
    docs = read_jsonl(path, required=["ctx_a", "ctx_b", "activity_label", "endings", "label"])
    out = []
    for i, d in enumerate(docs, 1):
        try:
            out.append(_checked(hellaswag_doc(d)))
        except (ValueError, TypeError):
            raise EvalDataError(f"{path}:{i}: label must be an index of endings, got {d['label']!r}") from None
    return out


def _read_mc(path: Path) -> list[dict]:
    out = []
    for i, d in enumerate(read_jsonl(path, required=["query", "choices", "gold"]), 1):
        try:
            out.append(_checked({"query": d["query"], "choices": list(d["choices"]), "gold": int(d["gold"])}))
        except (ValueError, TypeError):
            raise EvalDataError(f"{path}:{i}: gold must be an index of choices, got {d['gold']!r}") from None
    return out


def _checked(doc: dict) -> dict:
    if not 0 <= doc["gold"] < len(doc["choices"]):
        raise ValueError
    return doc


def score_choices(ctx: EvalContext, docs: list[dict], desc: str) -> list[list[float]]:
    """log p(" " + choice | query) for every choice of every doc."""
    requests = [ctx.encode_pair(d["query"], " " + c) for d in docs for c in d["choices"]]
    scores = ctx.scorer.loglikelihood(requests, desc=desc)
    out, i = [], 0
    for d in docs:
        out.append([s.logprob for s in scores[i : i + len(d["choices"])]])
        i += len(d["choices"])
    return out


def _run(ctx: EvalContext, docs: list[dict], desc: str = "multiple choice") -> list[Metric]:
    acc, acc_norm = [], []
    for d, lls in zip(docs, score_choices(ctx, docs, desc)):
        lls_a = np.array(lls)
        lengths = np.array([float(len(c)) for c in d["choices"]])
        acc.append(float(np.argmax(lls_a) == d["gold"]))
        acc_norm.append(float(np.argmax(lls_a / lengths) == d["gold"]))
    n = len(docs)
    return [Metric("acc", mean(acc), mean_stderr(acc), n),
            Metric("acc_norm", mean(acc_norm), mean_stderr(acc_norm), n)]


TASKS = [Task(
    name="hellaswag", family="multiple_choice",
    description="HellaSwag (validation) as lm-evaluation-harness: acc, acc_norm",
    run=lambda ctx, docs: _run(ctx, docs, "hellaswag"), read=_read_hellaswag,
    data_format="JSONL with ctx_a, ctx_b, activity_label, endings, label (Rowan/hellaswag)",
    hf=("Rowan/hellaswag", None, "validation"), from_hf=hellaswag_doc,
), Task(
    name="mc", family="multiple_choice",
    description="any multiple-choice JSONL (query, choices, gold): acc, acc_norm",
    run=_run, read=_read_mc, data_format="JSONL with query, choices, gold",
)]
