"""A fine-tuned model's head on its labelled task (`gpt2 finetune`), with GLUE's metrics.

    classification, entailment   accuracy, macro F1, Matthews correlation
    multiple_choice              accuracy (and the same F1 / MCC over choice indices)
    similarity                   Pearson, Spearman (and MSE) for regression; as classes otherwise

Data: a task file as fine-tuning reads it (JSONL or GLUE's TSV, the task's default field
names). The model must be a checkpoint directory with a head for that task type (a
transformers GPT2ForSequenceClassification / GPT2DoubleHeadsModel directory works too).
Metrics come from scikit-learn and SciPy.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import EvalDataError, UsageError
from ..types import EvalContext, Metric, Task

_FORMAT = "a task file (.jsonl or .tsv) with the task's fields and labels"


def _read(path: Path) -> list[dict]:
    from ...finetune.data import read_records

    return [{"where": f"{path}, line {n}", "record": r} for n, r in read_records(path)]


def _runner(task_type: str):
    def run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
        from ...finetune.checkpoint import load_task_model
        from ...finetune.data import encode_records
        from ...finetune.predict import predict, score
        from ...finetune.tasks import TaskTokens

        if ctx.source is None:
            raise UsageError(f"task {task_type} needs a fine-tuned checkpoint directory as --model")
        device = next(ctx.model.parameters()).device
        model = load_task_model(ctx.source, device=device)
        matching = [t for t in model.tasks.values() if t.type == task_type or
                    (task_type == "entailment" and t.type == "classification")]
        if not matching:
            kinds = ", ".join(f"{t.name} ({t.type})" for t in model.tasks.values())
            raise UsageError(f"{ctx.source} has no {task_type} head (its tasks: {kinds})")
        info = matching[0]
        tokens = TaskTokens.of(ctx.tokenizer, new_tokens=info.extra.get("new_tokens", True))
        max_length = min(int(info.extra.get("max_length", model.config.n_ctx)), model.config.n_ctx)
        if not docs:
            raise EvalDataError("no examples")
        data = encode_records(((d["where"], d["record"]) for d in docs), docs[0]["where"].rsplit(",", 1)[0],
                              info.type, ctx.tokenizer, tokens, max_length, labels=info.labels,
                              regression=info.regression)
        preds = predict(model, info.name, data.examples, batch_size=ctx.scorer.batch_size,
                        pad_id=ctx.tokenizer.eot_token)
        n = len(data.examples)
        return [Metric(name, value, None, n, higher_is_better=name != "mse")
                for name, value in score(model, info.name, preds, data.examples).items()]
    return run


_DESCRIPTIONS = {
    "classification": "a fine-tuned classifier on a labelled file: accuracy, macro F1, MCC",
    "entailment": "a fine-tuned sentence-pair classifier (text_a, text_b, label): accuracy, macro F1, MCC",
    "similarity": "a fine-tuned similarity model (text_a, text_b, label): Pearson, Spearman",
    "multiple_choice": "a fine-tuned multiple-choice head (context, choices, label): accuracy",
}

TASKS = [Task(name=name, family="finetuned", description=text, run=_runner(name), read=_read,
              data_format=_FORMAT) for name, text in _DESCRIPTIONS.items()]
