"""`evaluate`, the one entry point: checks the settings, reads the data, loads the model (when
given a name) and the tokenizer, runs the task and returns its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..validate import is_int
from .data import load_docs
from .registry import get_task
from .types import EvalContext, EvalResult, Task, TaskData

if TYPE_CHECKING:
    from ..model import GPT2
    from ..tokenizer import Tokenizer


def check_settings(task: Task, settings: dict[str, Any], n_ctx: int | None = None) -> None:
    """Refuse a setting the task does not take, or a value of the wrong type or range
    (n_ctx: the model's, once it is loaded; before, the bounds that do not need it)."""
    unknown = sorted(set(settings) - set(task.settings))
    if unknown:
        allowed = ", ".join(task.settings) or "none"
        raise UsageError(f"task {task.name} has no setting {', '.join(unknown)} (its settings: {allowed})")
    for name, value in settings.items():
        task.settings[name].check(name, value, n_ctx)


def evaluate(
    model: GPT2 | str,
    task: str,
    data: str | Path | TaskData | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
    progress: bool = False,
    model_source: str | None = None,
    **settings: Any,
) -> EvalResult:
    """Evaluate a model on one task and return its report.

    model: a gpt2.GPT2, or a name gpt2.load takes: "demo" (the bundled demo model), a
    checkpoint directory or a hub name. tokenizer: defaults to the one gpt2.load finds beside
    the checkpoint (GPT-2's for a GPT2 instance). data: a local file in the
    dataset's published format (default: the Hugging Face dataset, when a network exists), or
    what load_docs returned for this task.
    limit: evaluate the first N examples only. settings: the task's options (e.g. stride=512
    for perplexity, shots=5 for QA); unknown names are refused. model_source: for a GPT2 instance,
    the name or directory it was loaded from (the report's model; fine-tuned tasks read the
    checkpoint's heads from it). quantize: "int8" / "int4" for a model given by name (gpt2.load's).
    """
    from ..model import GPT2
    from .scoring import Scorer

    spec = get_task(task)
    if limit is not None and (not is_int(limit) or limit < 1):
        raise UsageError(f"--limit must be a positive integer, got {limit!r}")
    if not is_int(batch_size) or batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer, got {batch_size!r}")
    merged = spec.defaults | settings
    # Before loading a model (a typo must not cost a download); the caller's settings first.
    check_settings(spec, settings | merged, model.config.n_ctx if isinstance(model, GPT2) else None)
    if not isinstance(data, TaskData):
        data = load_docs(spec, data)  # a data mistake costs no model loading either
    elif data.task != spec.name:
        raise UsageError(f"data loaded for task {data.task} given to task {spec.name}")
    docs, data_source, data_hash = data.docs, data.source, data.data_hash
    if limit is not None:
        docs = docs[:limit]

    model_name = model_source or "GPT2 instance"
    if not isinstance(model, GPT2):
        from ..loading import load

        model_name = str(model)
        model, loaded_tokenizer = load(model, device=device, dtype=dtype, quantize=quantize)
        tokenizer = loaded_tokenizer if tokenizer is None else tokenizer
    elif quantize is not None:
        raise UsageError("quantize= goes with a model given by name; for a GPT2 instance use "
                         "gpt2.quantize.quantize_model(model, ...)")
    elif device is not None or dtype is not None:
        from ..checkpoint import parse_dtype
        from ..devices import parse_device

        model = model.to(device=None if device is None else parse_device(device, "device"),
                         dtype=parse_dtype(dtype))
    if tokenizer is None:  # a GPT2 instance says nothing of its vocabulary: GPT-2's
        from ..tokenizer import Tokenizer

        tokenizer = Tokenizer.from_pretrained("gpt2")
    model.eval()
    check_settings(spec, settings | merged, model.config.n_ctx)

    scorer = Scorer(model, batch_size=batch_size, progress=progress, eot=tokenizer.eot_token)
    ctx = EvalContext(model=model, tokenizer=tokenizer, scorer=scorer, settings=merged, progress=progress,
                      source=None if model_name == "GPT2 instance" else model_name)
    start = time.perf_counter()
    metrics = spec.run(ctx, docs)  # may write effective values of defaulted settings into merged
    seconds = time.perf_counter() - start
    return EvalResult(
        task=task,
        metrics=metrics,
        n=len(docs),
        model=model_name,
        data=data_source,
        data_hash=data_hash,
        settings=merged | {"batch_size": batch_size, "limit": limit,
                           "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
                           "quantize": _quantized(model)},
        seconds=seconds,
        tokens_scored=scorer.tokens_scored,
    )


def _quantized(model: GPT2) -> str | None:
    """"int8" / "int4" / "fp16" for a quantized model (the report says what was measured), else None."""
    from ..quantize import method_of

    return method_of(model.quantization_config) if model.quantization_config else None
