"""The Winograd Schema Challenge (WSC273): which of two noun phrases a pronoun refers to.

Each option is substituted for the pronoun and the sentence is scored two ways
(Trinh & Le, 2018, as the paper's section 3.4 does):

    acc_full     the log-probability of the whole substituted sentence
    acc_partial  the log-probability of the words after the pronoun, given the sentence up to
                 and including the substituted option (lm-evaluation-harness's wsc273 way)

Data: JSONL in the hub's winograd_wsc format: "text", "pronoun", "pronoun_loc" (character
offset of the pronoun), "options" (2 or more), "label" (index of the right option).
"""

from __future__ import annotations

from pathlib import Path

from .metrics import mean, mean_stderr
from .registry import EvalContext, EvalDataError, Metric, Task, read_jsonl, register

_FORMAT = "JSONL with text, pronoun, pronoun_loc, options, label (winograd_wsc format)"


def read_wsc(path: Path) -> list[dict]:
    docs = read_jsonl(path, required=["text", "pronoun", "pronoun_loc", "options", "label"])
    for i, d in enumerate(docs, 1):
        loc, pron = d["pronoun_loc"], d["pronoun"]
        if d["text"][loc : loc + len(pron)] != pron:
            raise EvalDataError(f"{path}:{i}: text at pronoun_loc={loc} is not the pronoun {pron!r}")
        if not 0 <= d["label"] < len(d["options"]):
            raise EvalDataError(f"{path}:{i}: label {d['label']} is not an index of options")
    return docs


def substitute(doc: dict, option: str) -> tuple[str, str]:
    """(sentence up to and including the option, the rest of the sentence)."""
    loc = doc["pronoun_loc"]
    return doc["text"][:loc] + option, doc["text"][loc + len(doc["pronoun"]):]


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    full, partial, owners = [], [], []
    for k, d in enumerate(docs):
        for option in d["options"]:
            head, rest = substitute(d, option)
            full.append(([], ctx.encode(head + rest)))
            partial.append(ctx.encode_pair(head, rest))
            owners.append(k)
    sf = ctx.scorer.loglikelihood(full, desc="winograd (full)")
    sp = ctx.scorer.loglikelihood(partial, desc="winograd (partial)")
    acc_full, acc_partial = [], []
    i = 0
    for d in docs:
        k = len(d["options"])
        lf = [s.logprob for s in sf[i : i + k]]
        lp = [s.logprob for s in sp[i : i + k]]
        acc_full.append(float(max(range(k), key=lf.__getitem__) == d["label"]))
        acc_partial.append(float(max(range(k), key=lp.__getitem__) == d["label"]))
        i += k
    n = len(docs)
    return [
        Metric("acc_partial", mean(acc_partial), mean_stderr(acc_partial), n),
        Metric("acc_full", mean(acc_full), mean_stderr(acc_full), n),
    ]


register(Task(
    name="winograd", family="winograd",
    description="Winograd Schema Challenge (WSC273), full and partial scoring",
    run=_run, read=read_wsc, data_format=_FORMAT,
    hf=("ErnestSDavis/winograd_wsc", "wsc273", "test"),
    from_hf=lambda r: {k: r[k] for k in ("text", "pronoun", "pronoun_loc", "options", "label")},
))
