"""The task registry: every module of the gpt2.evaluate.families package declares `TASKS`, a list
of Task, and is found there (as tiktoken finds its encodings), so adding a task is adding one
file. A module in the package that declares no TASKS is an error, not silently skipped."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from ..errors import UsageError
from . import families
from .types import Task


def discover(package: ModuleType) -> dict[str, Task]:
    """The tasks the modules of `package` declare, by name, sorted."""
    found: dict[str, Task] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        declared = getattr(module, "TASKS", None)
        if declared is None:
            raise TypeError(f"{module.__name__} declares no TASKS (a list of Task)")
        for task in declared:
            if task.name in found:
                raise ValueError(f"task {task.name!r} declared twice ({module.__name__})")
            found[task.name] = task
    return dict(sorted(found.items()))


@cache
def _all() -> dict[str, Task]:
    return discover(families)


def tasks() -> dict[str, Task]:
    """Every task, by name."""
    return dict(_all())


def get_task(name: str) -> Task:
    all_tasks = _all()
    if name not in all_tasks:
        raise UsageError(f"unknown task {name!r}; choose one of: {', '.join(all_tasks)}")
    return all_tasks[name]
