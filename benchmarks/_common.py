"""Helpers shared by the benchmark scripts: the machine's description and interleaved timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name()}"
    return desc


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                sync: Callable[[], None] = lambda: None, settle: int = 0) -> dict[str, list[float]]:
    """Time each function `repeats` times, alternating between them so that machine noise
    falls on all of them alike; returns the seconds of every run. `settle` untimed calls
    precede each timed one, so that it does not inherit the previous function's state."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(settle):
                fn()
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)
