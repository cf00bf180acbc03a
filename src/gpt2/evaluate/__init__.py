"""Zero-shot evaluation: the paper's tasks and lm-evaluation-harness's, for any checkpoint.

    >>> from gpt2.evaluate import evaluate, format_table
    >>> r = evaluate("ckpt/", "lambada_openai", data="lambada_test.jsonl", limit=100)
    >>> r["acc"], r.metrics, r.to_dict()
    >>> print(format_table([r]))

`tasks()` lists the registered tasks; `Scorer` is the batched log-likelihood engine they
share (usable on its own); docs/evaluation.md describes every task's protocol.
"""

from __future__ import annotations

from .registry import EvalContext, EvalDataError, EvalResult, Metric, Task, evaluate, get_task, register, tasks
from .report import format_table, report_dict, write_json
from .scoring import RollingScore, Score, Scorer, rolling_windows

__all__ = [
    "evaluate", "tasks", "get_task", "register", "Task", "Metric", "EvalResult", "EvalContext",
    "EvalDataError", "Scorer", "Score", "RollingScore", "rolling_windows",
    "format_table", "report_dict", "write_json",
]
