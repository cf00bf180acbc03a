"""Bad inputs to `gpt2 plot`: run directories that are missing, files or empty; metrics files
that are not a run's; outputs it cannot write or whose suffix names no image format; stdout
that cannot be written (refused before the image is written)."""

from __future__ import annotations

import json
from pathlib import Path

from .harness import Case


def run(metrics: bytes | None = None, *, extra_dir: str | None = None):
    """A run directory {tmp}/run with the given metrics.jsonl (default: a few good rows)."""
    if metrics is None:
        metrics = b"".join(json.dumps({"step": s, "loss": 5.0 - 0.1 * s}).encode() + b"\n" for s in range(1, 6))

    def setup(tmp: Path, assets: dict) -> None:
        (tmp / "run").mkdir()
        (tmp / "run" / "metrics.jsonl").write_bytes(metrics)
        if extra_dir:
            (tmp / extra_dir).mkdir(parents=True)
    return setup


def metrics_dir(tmp: Path, assets: dict) -> None:
    (tmp / "run" / "metrics.jsonl").mkdir(parents=True)


RUN = ("plot", "{tmp}/run")

CASES = [
    # RUN_DIR
    Case("plot-run-dir-missing", ("plot", "{tmp}/nope"), match=r"nope: no such run directory"),
    Case("plot-run-dir-is-a-file", ("plot", "{text}"), match=r"text\.txt: not a directory"),
    Case("plot-run-dir-without-metrics", ("plot", "{tmp}"), match=r"metrics\.jsonl: no such file; is .* a training run"),
    Case("plot-metrics-is-a-dir", RUN, setup=metrics_dir, match=r"metrics\.jsonl: not a file"),
    Case("plot-metrics-empty", RUN, setup=run(b""), match=r"metrics\.jsonl: no loss recorded yet"),
    Case("plot-metrics-without-loss", RUN, setup=run(b'{"step": 1, "train_loss": 2.0, "lr": 0.001}\n'),
         match=r"metrics\.jsonl: no loss recorded yet"),
    Case("plot-metrics-garbage", RUN, setup=run(b'{"step": 1, "loss": 2}\n\xff\xfe\x00\x01garbage\n{"step": 2, "loss": 1}\n'),
         match=r"metrics\.jsonl:2: not a JSON line"),
    Case("plot-metrics-step-not-a-number", RUN, setup=run(b'{"step": "one", "loss": 2.0}\n'),
         match=r"metrics\.jsonl:1: step must be an integer >= 0, got 'one'"),
    Case("plot-metrics-step-negative", RUN, setup=run(b'{"step": -5, "loss": 2.0}\n'),
         match=r"metrics\.jsonl:1: step must be an integer >= 0, got -5"),
    Case("plot-metrics-loss-not-a-number", RUN, setup=run(b'{"step": 1, "val_loss": "low"}\n'),
         match=r"metrics\.jsonl:1: val_loss must be a number, got 'low'"),
    Case("plot-metrics-not-objects", RUN, setup=run(b"[1, 2]\n3\n"), match=r"metrics\.jsonl:1: expected a JSON object"),
    # --output
    Case("plot-output-missing-dir", (*RUN, "--output", "{tmp}/no/loss.png"), setup=run(),
         match=r"no/loss\.png: no such directory"),
    Case("plot-output-under-a-file", (*RUN, "-o", "{tmp}/run/metrics.jsonl/loss.png"), setup=run(),
         match=r"metrics\.jsonl is not a directory"),
    Case("plot-output-is-a-dir", (*RUN, "-o", "{tmp}/out.png"), setup=run(extra_dir="out.png"),
         match=r"out\.png: a directory; give an image file name"),
    Case("plot-default-output-is-a-dir", RUN, setup=run(extra_dir="run/loss.png"),
         match=r"loss\.png: a directory; give an image file name"),
    Case("plot-output-unknown-suffix", (*RUN, "-o", "{tmp}/loss.txt"), setup=run(),
         match=r"suffix '\.txt'; name the format with one of \.png"),
    Case("plot-output-no-suffix", (*RUN, "-o", "{tmp}/loss"), setup=run(), match=r"no suffix; name the format"),
    Case("plot-output-unwritable", (*RUN, "-o", "/proc/gpt2-loss.png"), setup=run(),
         match=r"/proc/gpt2-loss\.png: cannot write in /proc"),
    # stdout: refused before the image is written
    Case("plot-stdout-closed", RUN, setup=run(), stdout="closed", match=r"stdout is closed"),
    Case("plot-stdout-full", (*RUN, "-o", "{tmp}/loss.svg"), setup=run(), stdout="full",
         match=r"cannot write to stdout"),
]
