"""`gpt2 plot RUN_DIR`: draw a run's training and validation loss curves to a PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import GPT2Error, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="plot a run's loss curves to a PNG",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", help="PNG path (default: RUN_DIR/loss.png)")
    p.set_defaults(func=run)


def read_metrics(run_dir: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train, validation) loss points from RUN_DIR/metrics.jsonl. Steps logged again after a
    resume (the run went past its last checkpoint before it stopped) keep their last value."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UsageError(f"{path}: no such file; is {run_dir} a training run directory?")
    train: dict[int, float] = {}
    val: dict[int, float] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            r = json.loads(line)
        except ValueError:
            raise UsageError(f"{path}:{n}: not a JSON line") from None
        if "loss" in r and not r.get("skipped"):
            train[r["step"]] = r["loss"]
        if "val_loss" in r:
            val[r["step"]] = r["val_loss"]
    return sorted(train.items()), sorted(val.items())


def plot(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the loss curves of a run to a PNG; returns its path."""
    run_dir = Path(run_dir)
    train, val = read_metrics(run_dir)
    if not train and not val:
        raise UsageError(f"{run_dir / 'metrics.jsonl'}: no loss recorded yet")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GPT2Error("gpt2 plot needs matplotlib: pip install matplotlib") from None
    output = Path(output) if output else run_dir / "loss.png"
    fig, ax = plt.subplots(figsize=(8, 5))
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    tmp = output.with_name(f".{output.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(output)
    return output


def run(args: argparse.Namespace) -> int:
    print(plot(args.run_dir, args.output))
    return 0
