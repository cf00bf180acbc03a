"""CoQA (Reddy et al., 2019): conversational reading comprehension, F1.

The prompt is the paper's (section 3.5): the document, the conversation so far as
"Q: question\\nA: answer" turns, then the current "Q: question\\nA:". The answer is greedy,
cut at the first newline. F1 is the official CoQA script's: token-overlap F1 of normalized
answers; with several gold answers (the dev set has 4 per turn), the mean over each gold
left out in turn of the max F1 against the others.

Data: the official coqa-dev-v1.0.json ({"data": [{"story", "questions": [{"input_text"}],
"answers": [{"input_text"}], "additional_answers": {...}}]}), or JSONL of conversations in the
hub's stanfordnlp/coqa format ("story", "questions": [str], "answers": {"input_text": [str]}).
--limit counts conversations; n counts questions.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data import read_jsonl
from ...errors import EvalDataError
from ..generation import generate
from ..metrics import _f1, mean, mean_stderr
from ..options import max_new_tokens
from ..types import EvalContext, Metric, Task

_FORMAT = "coqa-dev-v1.0.json, or JSONL conversations (story, questions, answers)"


def _from_official(conv: dict, where: str) -> dict:
    try:
        questions = [q["input_text"] for q in conv["questions"]]
        answers = [[a["input_text"]] for a in conv["answers"]]
        for extra in (conv.get("additional_answers") or {}).values():
            for turn, a in enumerate(extra):
                answers[turn].append(a["input_text"])
        story = conv["story"]
    except (KeyError, TypeError, IndexError):
        raise EvalDataError(f"{where}: expected story, questions[].input_text, answers[].input_text") from None
    if len(questions) != len(answers):
        raise EvalDataError(f"{where}: {len(questions)} questions but {len(answers)} answers")
    return {"story": story, "questions": questions, "answers": answers}


def _from_hub(conv: dict) -> dict:
    return {"story": conv["story"], "questions": list(conv["questions"]),
            "answers": [[a] for a in conv["answers"]["input_text"]]}


def read_coqa(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        out = []
        for i, c in enumerate(read_jsonl(path, required=["story", "questions", "answers"]), 1):
            if isinstance(c["questions"] and c["questions"][0], dict):
                out.append(_from_official(c, f"{path}:{i}"))
            else:
                try:
                    out.append(_from_hub(c))
                except (KeyError, TypeError):
                    raise EvalDataError(f"{path}:{i}: answers must be {{\"input_text\": [...]}}") from None
        return out
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvalDataError(f"{path}: not a CoQA JSON file ({e})") from None
    if not isinstance(data, dict) or "data" not in data:
        raise EvalDataError(f"{path}: expected an object with a \"data\" list (coqa-dev-v1.0.json)")
    return [_from_official(c, f"{path}: data[{i}]") for i, c in enumerate(data["data"])]


def coqa_f1(prediction: str, golds: list[str]) -> float:
    """The official CoQA F1 of one answer against its gold answers."""
    if len(golds) == 1:
        return _f1(prediction, golds[0])
    return mean([max(_f1(prediction, g) for j, g in enumerate(golds) if j != i) for i in range(len(golds))])


def prompts_for(conv: dict) -> list[str]:
    """One prompt per turn: story, earlier turns with their (first) gold answers, "Q: ...\\nA:"."""
    prompts, history = [], ""
    for q, golds in zip(conv["questions"], conv["answers"]):
        prompts.append(f"{conv['story']}\n\n{history}Q: {q}\nA:")
        history += f"Q: {q}\nA: {golds[0]}\n\n"
    return prompts


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    prompts, golds = [], []
    for conv in docs:
        prompts.extend(prompts_for(conv))
        golds.extend(conv["answers"])
    outs = generate(ctx, prompts, max_new_tokens=ctx.settings["max_new_tokens"], stop=["\n"], desc="coqa")
    f1 = [coqa_f1(o.strip(), g) for o, g in zip(outs, golds)]
    return [Metric("f1", mean(f1), mean_stderr(f1), len(f1))]


TASKS = [Task(
    name="coqa", family="coqa",
    description="CoQA (dev): document + conversation + 'A:', greedy, F1",
    run=_run, read=read_coqa, data_format=_FORMAT,
    hf=("stanfordnlp/coqa", None, "validation"), from_hf=_from_hub,
    settings={"max_new_tokens": max_new_tokens(32)},
)]
