"""Zero-shot evaluation: the paper's tasks and lm-evaluation-harness's, for any checkpoint.

    >>> from gpt2.evaluate import evaluate, format_table
    >>> r = evaluate("ckpt/", "lambada_openai", data="lambada_test.jsonl", limit=100)
    >>> r["acc"], r.metrics, r.to_dict()
    >>> print(format_table([r]))

`tasks()` lists the tasks, one module each in gpt2.evaluate.families (registry.py finds them);
`Scorer` is the batched log-likelihood engine they share (usable on its own);
docs/evaluation.md describes every task's protocol and how to add one.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Where each public name lives. Imported on first use (PEP 562), so that importing a light
# module such as gpt2.evaluate.options (the CLI does, to build its parser) does not import torch.
_EXPORTS = {
    "evaluate": "runner", "tasks": "registry", "get_task": "registry", "load_docs": "data",
    "Task": "types", "TaskData": "types", "Metric": "types", "EvalResult": "types",
    "EvalContext": "types", "Setting": "options", "EvalDataError": "..errors",
    "Scorer": "scoring", "Score": "scoring", "RollingScore": "scoring", "rolling_windows": "scoring",
    "format_table": "report", "report_dict": "report", "write_json": "report",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    value = getattr(import_module(module if module.startswith("..") else f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
