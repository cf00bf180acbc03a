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


class Progress:
    """One live line on stderr (redrawn in place on a terminal, a line per update otherwise)."""

    def __init__(self, max_steps: int, enabled: bool = True) -> None:
        self.max_steps = max_steps
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()
        self.first_step: int | None = None
        self.last_print = 0.0

    def update(self, r: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.first_step is None:
            self.first_step, self.start = r["step"] - 1, now - 1e-9
        if self.tty and now - self.last_print < 0.2 and r["step"] != self.max_steps:
            return
        self.last_print = now
        rate = (r["step"] - self.first_step) / (now - self.start)
        eta = (self.max_steps - r["step"]) / rate if rate > 0 else 0
        line = (f"step {r['step']}/{self.max_steps} | loss {r['loss']:.4f} | lr {r['lr']:.2e} | "
                f"{r['tokens_per_s']:,.0f} tok/s")
        if "mfu" in r:
            line += f" | MFU {100 * r['mfu']:.1f}%"
        line += f" | ETA {_duration(eta)}"
        if self.tty:
            print("\r\033[K" + line, end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        if self.enabled:
            print(("\r\033[K" if self.tty else "") + msg, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


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
