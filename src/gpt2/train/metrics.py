"""What a run reports: a live progress line, metrics as JSONL, optional TensorBoard, and MFU."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..config import GPT2Config
from ..errors import GPT2Error


class MetricsLogger:
    """Appends one JSON object a line to RUN_DIR/metrics.jsonl (and samples.jsonl)."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = False) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.file = open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8")
        self.samples = open(Path(run_dir) / "samples.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GPT2Error("log.tensorboard needs the `tensorboard` package: pip install tensorboard") from None
            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record | {"time": time.time()}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, record["step"])

    def write_sample(self, step: int, text: str) -> None:
        if self.enabled:
            self.samples.write(json.dumps({"step": step, "text": text}) + "\n")
            self.samples.flush()

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.samples.close()
            if self.tb is not None:
                self.tb.close()


LOG_FILE = "train.log"


class RunLog:
    """The run's log: lines to stdout and to RUN_DIR/train.log, warnings to stderr and the file.

    sys.stdout and sys.stderr are looked up at each write (never kept), so the CLI's guarded
    stdout applies: when the reader of stdout goes away (`gpt2 train ... | head`), training goes
    on and the log file still has every line. A failing stderr is ignored for the same reason.
    Lines written before the run directory exists are kept and written when it is attached.
    """

    def __init__(self) -> None:
        self.enabled = True  # False on ranks other than 0
        self._file = None
        self._pending: list[str] = []

    def attach(self, path: Path) -> None:
        if not self.enabled:
            return
        self._file = open(path, "a", encoding="utf-8")
        for line in self._pending:
            self._file.write(line + "\n")
        self._pending.clear()
        self._file.flush()

    def to_file(self, line: str) -> None:
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        if self._file is None:
            self._pending.append(line)
        else:
            self._file.write(line + "\n")
            self._file.flush()

    def info(self, msg: str) -> None:
        if self.enabled:
            self.stdout(msg)
            self.to_file(msg)

    def warning(self, msg: str) -> None:
        if self.enabled:
            try:
                sys.stderr.write(f"warning: {msg}\n")  # one write: a signal cannot split the line
                sys.stderr.flush()
            except (OSError, ValueError):  # stderr is gone too: the file keeps the warning
                pass
            self.to_file(f"warning: {msg}")

    @staticmethod
    def stdout(text: str, end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    @staticmethod
    def tty() -> bool:
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Progress:
    """The step lines: on a terminal one line redrawn in place (at most 5 times a second); else,
    and in the log file, a line at the first step, every log_interval steps and at the last.

    The ETA is the remaining steps at the rate measured since this run (or resumption) started,
    so it is meaningful from the first step on."""

    def __init__(self, max_steps: int, enabled: bool = True, *, start_step: int = 0, log_interval: int = 1,
                 log: RunLog | None = None) -> None:
        self.max_steps = max_steps
        self.log = log if log is not None else RunLog()
        self.enabled = enabled and self.log.enabled
        self.start_step, self.log_interval = start_step, log_interval
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = False  # a line is on screen without its newline

    def line(self, r: dict[str, Any], now: float) -> str:
        done = r["step"] - self.start_step
        rate = done / max(now - self.start, 1e-9)
        eta = (self.max_steps - r["step"]) / rate if rate > 0 else 0.0
        text = (f"step {r['step']}/{self.max_steps} | loss {r['loss']:.4f} | lr {r['lr']:.2e} | "
                f"{r['tokens_per_s']:,.0f} tok/s")
        if "mfu" in r:
            text += f" | MFU {100 * r['mfu']:.1f}%"
        return text + f" | ETA {_duration(eta)}"

    def update(self, r: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        step = r["step"]
        logged = step % self.log_interval == 0 or step == self.max_steps or step == self.start_step + 1
        text = self.line(r, now)
        if logged:
            self.log.to_file(text)
        if self.log.tty():
            if logged:  # kept on screen
                self.log.stdout("\r\033[K" + text)
                self.last_draw, self.drawn = now, False
            elif now - self.last_draw >= 0.2:  # redrawn in place
                self.log.stdout("\r\033[K" + text, end="")
                self.last_draw, self.drawn = now, True
        elif logged:
            self.log.stdout(text)

    def working(self, what: str) -> None:
        """A transient status (e.g. validation batch 3/20): on a terminal only."""
        if self.enabled and self.log.tty():
            now = time.perf_counter()
            if now - self.last_draw >= 0.2:
                self.last_draw = now
                self.log.stdout("\r\033[K" + what, end="")
                self.drawn = True

    def note(self, msg: str) -> None:
        if self.enabled:
            if self.drawn and self.log.tty():
                self.log.stdout("\r\033[K", end="")
            self.drawn = False
            self.log.info(msg)

    def close(self) -> None:
        if self.enabled and self.drawn and self.log.tty():
            self.log.stdout("")
        self.drawn = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def flops_per_token(config: GPT2Config, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward): 6 per weight of every matmul, the tied
    output head included, plus attention's 12 * layers * width * context (PaLM, appendix B)."""
    L, C, V = config.n_layer, config.n_embd, config.vocab_size
    matmul_weights = L * 12 * C * C + V * C
    return 6 * matmul_weights + 12 * L * C * seq_len


def measure_peak_flops(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """The measured bf16 matmul throughput of this device (the denominator of MFU)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)
