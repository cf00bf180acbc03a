"""Reports: a table for the terminal and a JSON file.

The JSON report is {"results": [one object per task], "gpt2_version": ...}; each task's
object holds task, metrics (metric, value, stderr, n, higher_is_better), n, model, data,
data_hash, settings, seconds and tokens_scored (see EvalResult.to_dict). It is strict JSON:
a value that is not a finite number (the standard error of a single example) is null.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import atomic_write_text, check_writable
from .types import EvalResult


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.2f}"
    return f"{x:.4f}"


def format_table(results: Sequence[EvalResult]) -> str:
    """A plain-text table: task, metric, value, ± standard error, n."""
    rows = [("task", "metric", "value", "± stderr", "n")]
    for r in results:
        for i, m in enumerate(r.metrics):
            arrow = "↑" if m.higher_is_better else "↓"
            rows.append((r.task if i == 0 else "", f"{m.name} {arrow}", _fmt(m.value), _fmt(m.stderr), f"{m.n:,}"))
    widths = [max(len(row[c]) for row in rows) for c in range(5)]
    align = ["<", "<", ">", ">", ">"]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _finite(x: Any) -> Any:
    """x with every NaN / infinity replaced by None (JSON has no such numbers)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def report_dict(results: Sequence[EvalResult]) -> dict:
    """The JSON report as a dict (non-finite numbers as None)."""
    from .. import __version__

    return _finite({"gpt2_version": __version__, "results": [r.to_dict() for r in results]})


def check_json_path(path: str | os.PathLike[str]) -> Path:
    """The report's path, refused with one line if it cannot be written: called before an
    evaluation, so that a long run does not end in an unwritable path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"--json {path}: a directory; give a file name")
    if not path.parent.exists():
        raise UsageError(f"--json {path}: no such directory {path.parent}")
    if not path.parent.is_dir():
        raise UsageError(f"--json {path}: {path.parent} is not a directory")
    try:  # the report is written as a temporary file renamed into place: try exactly that
        check_writable(path)
    except OSError as e:
        raise UsageError(f"--json {path}: cannot write in {path.parent} ({e.strerror}); "
                         "choose a writable directory") from None
    return path


def write_json(results: Sequence[EvalResult], path: str | os.PathLike[str]) -> None:
    """Write the JSON report (strict JSON) atomically: a temporary file renamed into place."""
    path = check_json_path(path)
    text = json.dumps(report_dict(results), indent=2, allow_nan=False) + "\n"
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise UsageError(f"--json {path}: cannot write ({e.strerror})") from None
