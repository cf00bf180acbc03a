"""Closed-book question answering (Natural Questions, open-domain), the paper's way
(section 3.8): a context of example "Q: question\\nA: answer" pairs, then "Q: question\\nA:",
greedy decoding up to the first newline; exact match (SQuAD normalization) against any of the
gold answers.

The first `shots` examples are the context pairs and are not scored.
Data: JSONL with "question" and "answer" (a list of strings, or one string) — nq_open's format.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UsageError
from ..data import read_jsonl
from ...errors import EvalDataError
from ..generation import generate
from ..metrics import exact_match, mean, mean_stderr
from ..options import max_new_tokens, shots
from ..types import EvalContext, Metric, Task


def _read(path: Path) -> list[dict]:
    out = []
    for i, d in enumerate(read_jsonl(path, required=["question", "answer"]), 1):
        answers = [d["answer"]] if isinstance(d["answer"], str) else d["answer"]
        if not answers or not all(isinstance(a, str) for a in answers):
            raise EvalDataError(f"{path}:{i}: answer must be a string or a list of strings")
        out.append({"question": d["question"], "answer": list(answers)})
    return out


def prompt_for(shots: list[dict], question: str) -> str:
    context = "".join(f"Q: {d['question']}\nA: {d['answer'][0]}\n\n" for d in shots)
    return f"{context}Q: {question}\nA:"


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    k = ctx.settings["shots"]
    if not 0 <= k < len(docs):
        raise UsageError(f"shots={k} leaves no examples to score among {len(docs)}")
    shots, rest = docs[:k], docs[k:]
    outs = generate(ctx, [prompt_for(shots, d["question"]) for d in rest],
                    max_new_tokens=ctx.settings["max_new_tokens"], stop=["\n"], desc="nq_open")
    em = [exact_match(o.strip(), d["answer"]) for o, d in zip(outs, rest)]
    return [Metric("exact_match", mean(em), mean_stderr(em), len(rest))]


TASKS = [Task(
    name="nq_open", family="qa",
    description="Natural Questions, closed book: Q/A pairs as context, greedy, exact match",
    run=_run, read=_read, data_format="JSONL with question, answer",
    hf=("google-research-datasets/nq_open", "nq_open", "validation"),
    from_hf=lambda r: {"question": r["question"], "answer": list(r["answer"])},
    settings={"shots": shots(5), "max_new_tokens": max_new_tokens(16)},
)]
