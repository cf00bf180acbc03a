"""`gpt2 plot RUN_DIR`: draw a run's training and validation loss curves to an image.

The format is the output's suffix: .png (the default, RUN_DIR/loss.png), .svg, .pdf, .jpg, ...
The image is written atomically (a temporary file beside it, renamed into place), so a reader
never sees half an image and an interrupted plot leaves the old one as it was.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
from pathlib import Path

from ..errors import GPT2Error, UsageError
from ..fsutil import atomic_write_bytes, check_writable
from ..validate import is_int

# Output suffix -> matplotlib format (every one of them is in matplotlib's Agg backend).
FORMATS = {
    ".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp",
    ".tif": "tiff", ".tiff": "tiff", ".eps": "eps", ".ps": "ps",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="plot a run's loss curves to an image (PNG, SVG, PDF, ...)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory (holds metrics.jsonl)")
    p.add_argument("-o", "--output", metavar="IMAGE",
                   help="image path; its suffix picks the format: " + ", ".join(FORMATS)
                        + " (default: RUN_DIR/loss.png; an existing file is replaced)")
    p.set_defaults(func=run)


def read_metrics(run_dir: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train, validation) loss points from RUN_DIR/metrics.jsonl. Steps logged again after a
    resume (the run went past its last checkpoint before it stopped) keep their last value;
    non-finite losses (skipped steps) are left out."""
    _check_run_dir(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise UsageError(f"{path}: no such file; is {run_dir} a training run directory?")
    if not path.is_file():
        raise UsageError(f"{path}: not a file; is {run_dir} a training run directory?")
    lines = path.read_bytes().split(b"\n")
    train: dict[int, float] = {}
    val: dict[int, float] = {}
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record = _record(path, n, raw, last=n == len(lines))
        if record is None:
            continue
        if "loss" in record and not record.get("skipped"):
            _add(train, path, n, record, "loss")
        if "val_loss" in record:
            _add(val, path, n, record, "val_loss")
    return sorted(train.items()), sorted(val.items())


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.exists():
        raise UsageError(f"{run_dir}: no such run directory; pass the RUN_DIR a training run wrote")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a directory; pass the RUN_DIR a training run wrote "
                         "(the directory that holds metrics.jsonl)")


def _record(path: Path, n: int, raw: bytes, last: bool) -> dict | None:
    """Line n as a JSON object. A last line with no newline that does not parse is a record
    still being written by a running training (skipped); anywhere else it is an error."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if last:
            return None
        raise UsageError(f"{path}:{n}: not a JSON line; is this a gpt2 metrics file?") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path}:{n}: expected a JSON object, got {type(record).__name__}")
    return record


def _add(points: dict[int, float], path: Path, n: int, record: dict, key: str) -> None:
    step, value = record.get("step"), record[key]
    if not is_int(step) or step < 0:
        raise UsageError(f"{path}:{n}: step must be an integer >= 0, got {step!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise UsageError(f"{path}:{n}: {key} must be a number, got {value!r}")
    if math.isfinite(value):
        points[step] = float(value)


def check_output(output: Path) -> str:
    """The image's format, from its suffix; refused with one line before anything is drawn if
    the path cannot take the file."""
    if output.is_dir():
        raise UsageError(f"-o {output}: a directory; give an image file name such as {output / 'loss.png'}")
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        got = f"suffix {output.suffix!r}" if output.suffix else "no suffix"
        raise UsageError(f"-o {output}: {got}; name the format with one of {', '.join(FORMATS)}")
    parent = output.parent
    if not parent.exists():
        raise UsageError(f"-o {output}: no such directory {parent}; create it first")
    if not parent.is_dir():
        raise UsageError(f"-o {output}: {parent} is not a directory")
    try:
        check_writable(output)
    except OSError as e:
        raise UsageError(f"-o {output}: cannot write in {parent} ({e.strerror}); "
                         "choose a writable directory") from None
    return fmt


def plot(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Write the loss curves of a run to an image (format from the suffix); returns its path."""
    run_dir = Path(run_dir)
    output = Path(output) if output else run_dir / "loss.png"
    atomic_write_bytes(output, render(run_dir, output))
    return output


def render(run_dir: Path, output: Path) -> bytes:
    """The image's bytes, in the format output's suffix names (checked first: see check_output)."""
    _check_run_dir(run_dir)
    fmt = check_output(output)
    train, val = read_metrics(run_dir)
    if not train and not val:
        raise UsageError(f"{run_dir / 'metrics.jsonl'}: no loss recorded yet")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GPT2Error("gpt2 plot needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        if train:
            ax.plot(*zip(*train), label="train", linewidth=1)
        if val:
            ax.plot(*zip(*val), "o-", label="validation", linewidth=1.5)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss (nats/token)")
        ax.set_title(run_dir.resolve().name)
        ax.grid(alpha=0.3)
        ax.legend()
        image = io.BytesIO()
        fig.savefig(image, format=fmt, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return image.getvalue()


def run(args: argparse.Namespace) -> int:
    import sys

    sys.stdout.flush()  # a closed stdout fails here, before anything is drawn
    run_dir = Path(args.run_dir)
    output = Path(args.output) if args.output else run_dir / "loss.png"
    image = render(run_dir, output)
    # The path first: a full stdout then fails before the image exists, leaving nothing behind.
    print(output, flush=True)
    atomic_write_bytes(output, image)
    return 0
