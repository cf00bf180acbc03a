"""Children's Book Test (Hill et al., 2016): fill the blank in sentence 21 of a 21-sentence
excerpt with one of 10 candidates; CN = common nouns, NE = named entities.

As in the paper (section 3.2), each candidate is put in the blank and scored together with
the rest of the sentence: log p(candidate + rest of sentence | 20 sentences + sentence start);
the prediction is the candidate with the highest log-probability. The ten requests of a
question share their context, which the scorer runs once. The text is lightly detokenized
(`` '' -> ", punctuation joined). Metric: acc on the validation split (the paper's choice).

Data: the original files (cbtest_CN_valid_2000ex.txt: lines "N sentence", the 21st
"21 question<TAB>answer<TAB><TAB>cand1|...|cand10", a blank line between questions) or JSONL
with "sentences" (20), "question" (with XXXXX), "answer", "options" (the hub's cam-cst/cbt).
"""

from __future__ import annotations

from pathlib import Path

from ..data import read_jsonl, read_text
from ..detokenize import cbt_detokenize
from ...errors import EvalDataError
from ..metrics import mean, mean_stderr
from ..types import EvalContext, Metric, Task

BLANK = "XXXXX"
_FORMAT = "cbtest_{CN,NE}_valid_2000ex.txt, or JSONL with sentences/question/answer/options"


def read_cbt(path: Path) -> list[dict]:
    if path.suffix in (".jsonl", ".json"):
        docs = read_jsonl(path, required=["sentences", "question", "answer", "options"])
        for i, d in enumerate(docs, 1):
            _check(d, f"{path}:{i}")
        return docs
    docs, sentences = [], []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        number, _, rest = line.partition(" ")
        if not number.isdigit():
            raise EvalDataError(f"{path}:{lineno}: expected a numbered line (\"N sentence\")")
        if int(number) < 21:
            sentences.append(rest)
            continue
        fields = rest.split("\t")
        if len(fields) != 4:
            raise EvalDataError(f"{path}:{lineno}: expected question<TAB>answer<TAB><TAB>candidates")
        doc = {"sentences": sentences, "question": fields[0], "answer": fields[1],
               "options": [c for c in fields[3].split("|") if c]}
        _check(doc, f"{path}:{lineno}")
        docs.append(doc)
        sentences = []
    return docs


def _strings(xs: object) -> bool:
    return isinstance(xs, list) and all(isinstance(x, str) for x in xs)


def _check(doc: dict, where: str) -> None:
    if not (_strings(doc["sentences"]) and _strings(doc["options"]) and isinstance(doc["question"], str)):
        raise EvalDataError(f"{where}: sentences and options must be lists of strings, question a string")
    if BLANK not in doc["question"]:
        raise EvalDataError(f"{where}: the question has no {BLANK} blank")
    if doc["answer"] not in doc["options"]:
        raise EvalDataError(f"{where}: the answer {doc['answer']!r} is not among the candidates")


def requests_for(ctx: EvalContext, doc: dict) -> list[tuple[list[int], list[int]]]:
    """One (context, candidate + rest of sentence) request per candidate."""
    before, after = doc["question"].split(BLANK, 1)
    context = cbt_detokenize(" ".join(doc["sentences"] + [before.rstrip()]).strip())
    rest = cbt_detokenize(after)
    return [ctx.encode_pair(context, " " + option + rest) for option in doc["options"]]


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    requests, spans = [], []
    for d in docs:
        r = requests_for(ctx, d)
        spans.append((len(requests), len(r)))
        requests.extend(r)
    scores = ctx.scorer.loglikelihood(requests, desc="cbt")
    acc = []
    for d, (start, k) in zip(docs, spans):
        lps = [s.logprob for s in scores[start : start + k]]
        best = max(range(k), key=lambda j: lps[j])
        acc.append(float(d["options"][best] == d["answer"]))
    return [Metric("acc", mean(acc), mean_stderr(acc), len(docs))]


def _from_hf(r: dict) -> dict:
    return {"sentences": r["sentences"], "question": r["question"], "answer": r["answer"],
            "options": r["options"]}


TASKS = [
    Task(
        name=f"cbt_{_kind.lower()}", family="cbt",
        description=f"Children's Book Test, {_what}: candidate + rest of sentence, acc (validation)",
        run=_run, read=read_cbt, data_format=_FORMAT,
        hf=("cam-cst/cbt", _kind, "validation"), from_hf=_from_hf,
    )
    for _kind, _what in (("CN", "common nouns"), ("NE", "named entities"))
]
