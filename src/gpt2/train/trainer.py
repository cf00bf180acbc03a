"""The training loop: pretraining and continued training, on a CPU, a GPU or many.

    trainer = Trainer(load_recipe("configs/demo.toml"))
    result = trainer.run()       # resumes from RUN_DIR's newest valid checkpoint, if any

Each optimizer step accumulates gradients over micro-batches (batch_size sequences over all
ranks), clips the global gradient norm, sets the scheduled learning rate and steps AdamW.
A step whose loss or gradient norm is not finite is skipped (and logged); too many in a row
abort the run. SIGINT/SIGTERM finish the current step (or cut a validation short), write a
checkpoint and stop cleanly. The log goes to stdout (looked up at each write, so the CLI's
guarded stdout applies) and to RUN_DIR/train.log; warnings to stderr and train.log.
A resumed run restores weights, optimizer, RNG and loader states, so its losses equal those
of an uninterrupted run bit for bit on CPU.

`Trainer._run` is the loop in a few named calls: a step, its record, then validation,
checkpoint and stop when due; each "when" is one `_due_for_*` method. The data and the loss
(`next_batch`, `compute_loss`) are the parts a different objective replaces.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.utils.checkpoint

from ..checkpoint import parse_dtype, write_checkpoint
from ..config import GPT2Config
from ..errors import TrainingError, UsageError
from ..fsutil import atomic_write_text
from ..model import GPT2
from ..settings import flatten
from . import checkpointing as ckpt
from . import distributed
from .config import RESUME_SENSITIVE, RunConfig
from .metrics import LOG_FILE, MetricsLogger, Progress, RunLog, flops_per_token, measure_peak_flops
from .optim import learning_rate, make_optimizer


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    interrupted: bool  # stopped by SIGINT/SIGTERM (a checkpoint was written)
    last_loss: float | None
    val_loss: float | None
    checkpoint: Path | None
    stop_signal: str | None = None  # "SIGINT" or "SIGTERM" when interrupted


class Trainer:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.max_steps = config.train.max_steps  # fine-tuning derives it from epochs in setup
        self._stop_requested = False
        self._stop_signal: str | None = None
        self.log = RunLog()

    # ----------------------------------------------------------------------------- setup

    def setup(self) -> None:
        """Check the inputs (cheap checks first: nothing is loaded or written before they pass),
        then load the data and build the model, optimizer and loaders."""
        c = self.config
        device = self._check_device()
        check_run_dir(self.run_dir)
        self._check_model_shape()
        self._init_processes(device)

        torch.manual_seed(c.train.seed)  # the same initial weights on every rank
        self.data = self._open_data()
        self.model = self._build_model()
        if self.model.config.vocab_size < self.data.vocab_size:
            raise TrainingError(
                f"{c.data.dir}: its tokenizer has {self.data.vocab_size} tokens but the model's "
                f"vocab_size is {self.model.config.vocab_size}"
            )
        self.seq_len = c.data.seq_len or self.model.config.n_ctx
        if self.seq_len > self.model.config.n_ctx:
            raise TrainingError(f"data.seq_len {self.seq_len} exceeds the model's n_ctx {self.model.config.n_ctx}")
        if c.train.activation_checkpointing:
            checkpoint_activations(self.model)
        self.model.to(self.device)
        self.wrapped = distributed.wrap(self.model, self.dist, c.train.distributed, self.device)
        self.compiled = torch.compile(self.wrapped) if c.train.compile else self.wrapped
        self.optimizer = make_optimizer(self.wrapped, c.optim, self.device.type)
        self.train_loader = self.data.train_loader(
            c.train.micro_batch_size, self.seq_len, c.train.seed, self.dist.rank, self.dist.world_size
        )
        self.step = 0
        self.tokens_seen = 0
        self.nonfinite_in_a_row = 0
        self.peak_flops = measure_peak_flops(self.device) if self.device.type == "cuda" else None
        self.flops_per_token = flops_per_token(self.model.config, self.seq_len)

    def _init_processes(self, device: torch.device) -> None:
        """Join the process group (under torchrun), take this rank's GPU, and derive the
        gradient accumulation and the autocast dtype from the batch and precision settings."""
        c = self.config
        self.dist = distributed.init(device.type)
        if device.type == "cuda" and device.index is None:  # one GPU per process under torchrun
            device = torch.device(f"cuda:{self.dist.local_rank}")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.device = device
        self.log.enabled = self.dist.is_main
        per_step = c.train.micro_batch_size * self.dist.world_size
        if c.train.batch_size % per_step:
            raise TrainingError(
                f"train.batch_size {c.train.batch_size} must be a multiple of micro_batch_size x "
                f"processes = {per_step}"
            )
        self.grad_accum = c.train.batch_size // per_step
        dtype = c.train.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.type == "cuda" else "float32"
        self.autocast_dtype = parse_dtype(dtype)

    def _check_device(self) -> torch.device:
        from ..devices import parse_device

        name = self.config.train.device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        return parse_device(name, "train.device")

    def _check_model_shape(self) -> None:
        """An unknown preset or an impossible shape, named before any data is read."""
        m = self.config.model
        if not m.init_from:
            shape = {k: v for k, v in (("n_layer", m.n_layer), ("n_head", m.n_head),
                                       ("n_embd", m.n_embd), ("n_ctx", m.n_ctx)) if v is not None}
            GPT2Config.preset(m.preset, dropout=m.dropout, bias=m.bias, **shape)

    def _open_data(self):
        from .data import TrainingData

        return TrainingData(self.config.data.dir)

    def _build_model(self) -> GPT2:
        m = self.config.model
        if m.init_from:  # continued training from a checkpoint directory or a hub name
            loaded = GPT2.from_pretrained(m.init_from)
            model = GPT2(loaded.config.replace(dropout=m.dropout))  # the recipe's dropout applies
            model.load_state_dict(loaded.state_dict())
            return model.train()
        shape = {k: v for k, v in (("n_layer", m.n_layer), ("n_head", m.n_head),
                                   ("n_embd", m.n_embd), ("n_ctx", m.n_ctx)) if v is not None}
        config = GPT2Config.preset(m.preset, dropout=m.dropout, bias=m.bias, vocab_size=self.data.vocab_size, **shape)
        return GPT2(config).train()

    # ----------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> Path | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        c = self.config
        if self.dist.is_main:
            ckpt.prepare_staging(self.run_dir, self.step)
        distributed.barrier(self.dist)
        staging = ckpt.staging_dir(self.run_dir, self.step)
        ckpt.write_rank_state(staging, self.dist.rank, {
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.empty(0),
            "loader": self.train_loader.state_dict(),
        })
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state, optim_state = get_state_dict(self.wrapped, self.optimizer, options=options)
        path = None
        if self.dist.is_main:
            path = ckpt.finish_checkpoint(
                self.run_dir, self.step, functools.partial(self.write_model, model_state=model_state),
                optim_state,
                {"step": self.step, "tokens_seen": self.tokens_seen, "world_size": self.dist.world_size,
                 "config": c.to_dict()},
                c.checkpoint.keep_last,
            )
        distributed.barrier(self.dist)
        return path or ckpt.checkpoints_dir(self.run_dir) / ckpt.step_dir_name(self.step)

    def write_model(self, directory: Path, model_state: dict[str, torch.Tensor]) -> None:
        """The model (gathered, full state) and its tokenizer into a checkpoint directory."""
        write_checkpoint(self.model.config, model_state, directory)
        if self.data.tokenizer is not None:
            self.data.tokenizer.save_pretrained(directory)

    def load_model_state(self, found: Path) -> dict[str, torch.Tensor]:
        """A checkpoint's model state for this run's model, on this process's device."""
        saved = GPT2.from_pretrained(found)
        if saved.config != self.model.config.replace(dropout=saved.config.dropout):
            raise TrainingError(
                f"{found}: its model shape differs from this config's; use another run_dir"
            )
        return {k: v.to(self.device) for k, v in saved.state_dict().items()}

    def maybe_resume(self) -> Path | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        found = ckpt.latest_valid(self.run_dir, log=self.log.warning)
        if found is None:
            return None
        state = ckpt.read_trainer_state(found)
        self._check_config_change(found, state.get("config") or {})
        if state.get("world_size", 1) != self.dist.world_size:
            raise TrainingError(
                f"{found}: written by {state['world_size']} processes; resume with that many "
                f"(got {self.dist.world_size})"
            )
        model_state = self.load_model_state(found)
        set_state_dict(self.wrapped, self.optimizer, model_state_dict=model_state,
                       optim_state_dict=ckpt.read_optimizer_state(found),
                       options=StateDictOptions(full_state_dict=True, strict=False))
        body = getattr(self.model, "lm", self.model)  # a GPT2, or a fine-tuning model around one
        body.lm_head.weight = body.transformer.wte.weight  # re-tie: set_state_dict replaced wte
        rank_state = ckpt.read_rank_state(found, self.dist.rank)
        torch.set_rng_state(rank_state["cpu_rng"])
        if self.device.type == "cuda" and rank_state["cuda_rng"].numel():
            torch.cuda.set_rng_state(rank_state["cuda_rng"], self.device)
        self.train_loader.load_state_dict(rank_state["loader"])
        self.step = state["step"]
        self.tokens_seen = state["tokens_seen"]
        return found

    def resume_sensitive(self) -> tuple[str, ...]:
        """Settings a resumed run may not change without train.allow_config_change."""
        return RESUME_SENSITIVE

    def _check_config_change(self, found: Path, saved: dict[str, Any]) -> None:
        """Name the settings that differ from the checkpoint's; refuse those that would make the
        resumed run another run (RESUME_SENSITIVE) unless train.allow_config_change is set."""
        c = self.config
        old, new = flatten(saved), flatten(c.to_dict())
        ignore = {"train.allow_config_change"}
        changed = [k for k in new if k in old and k not in ignore and old[k] != new[k]]
        if not changed:
            return
        sensitive = set(self.resume_sensitive()) | (
            {"train.max_steps"} if getattr(c.optim, "decay_steps", 0) is None else set())
        described = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
        refused = [k for k in changed if k in sensitive]
        if refused and not c.train.allow_config_change:
            raise TrainingError(
                f"{found}: this config changes {', '.join(f'{k} ({old[k]!r} -> {new[k]!r})' for k in refused)} "
                "since the checkpoint, so the resumed run would not continue the saved one; set "
                "train.allow_config_change=true to resume with the new values, or use another run_dir"
            )
        self.log.info(f"resuming with changed settings: {described}")

    # ----------------------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        try:
            self.setup()
            return self._run()
        finally:
            if hasattr(self, "dist"):  # a setup error after joining the process group leaves it too
                distributed.shutdown(self.dist)

    def _run(self) -> TrainResult:
        resumed = self.maybe_resume()  # reads only: a refused resume changes nothing in run_dir
        self._open_run_dir()
        c = self.config
        self.metrics = MetricsLogger(self.run_dir, enabled=self.dist.is_main, tensorboard=c.log.tensorboard)
        self.progress = Progress(self.max_steps, start_step=self.step, log_interval=c.log.interval,
                                 log=self.log)
        self._announce(resumed)
        previous_handlers = self._install_signal_handlers()
        loss = val_loss = None
        last_checkpoint = resumed
        interrupted = False
        try:
            while not self._finished():
                record = self._step()
                self._record(record)
                loss = record["loss"]
                if self._due_for_eval():
                    val_loss = self._validate()
                    self._write_samples()
                stop = self._stop_requested_anywhere()
                if self._due_for_checkpoint(stop):
                    last_checkpoint = self.save_checkpoint()
                if stop:
                    interrupted = True
                    self.progress.note(f"stopped at step {self.step}; checkpoint {last_checkpoint}; "
                                       "run the same command to resume")
                    break
            if not interrupted:
                self.finish()
        finally:
            self._restore_signal_handlers(previous_handlers)
            self.progress.close()
            self.metrics.close()
            self.log.close()
        return TrainResult(self.step, interrupted, loss, val_loss, last_checkpoint, self._stop_signal)

    def finish(self) -> None:
        """After the last step (not after a stop): nothing here; fine-tuning writes its model."""

    def _open_run_dir(self) -> None:
        """Rank 0 creates RUN_DIR, writes the run's config.json and opens train.log; all ranks wait."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
            self.log.attach(self.run_dir / LOG_FILE)
        distributed.barrier(self.dist)

    def _announce(self, resumed: Path | None) -> None:
        """The run's first log line: where it starts, the model, the processes, the batch."""
        c = self.config
        where = f"resuming from {resumed} (step {self.step})" if resumed else "starting"
        self.log.info(
            f"{where}: {self.model.num_parameters():,} parameters, {self.dist.world_size} process(es) "
            f"on {self.device.type}, {c.train.batch_size} x {self.seq_len} tokens per step "
            f"({self.grad_accum} micro-batches of {c.train.micro_batch_size} per process); log: "
            f"{self.run_dir / LOG_FILE}"
        )

    # The loop's decisions, each in one place.

    def _finished(self) -> bool:
        """Whether all max_steps steps are done (train.max_steps)."""
        return self.step >= self.max_steps

    def _due_for_log(self) -> bool:
        """Whether an applied step's record goes to metrics.jsonl: every log.interval steps, and the last."""
        return self.step % self.config.log.interval == 0 or self._finished()

    def _due_for_eval(self) -> bool:
        """Whether to validate and sample now: every eval.interval steps (0: never), and after
        the last step when eval.at_end."""
        e = self.config.eval
        return bool(e.interval) and (self.step % e.interval == 0 or (self._finished() and e.at_end))

    def _due_for_checkpoint(self, stop: bool) -> bool:
        """Whether to save now: every checkpoint.interval steps (0: never), after the last step, on a stop."""
        interval = self.config.checkpoint.interval
        return self._finished() or stop or bool(interval and self.step % interval == 0)

    def _stop_requested_anywhere(self) -> bool:
        """Whether any rank got SIGINT/SIGTERM; a collective, so every rank asks after every step."""
        return distributed.any_rank(self.dist, self._stop_requested, self.device)

    # One step and its report.

    def _step(self) -> dict[str, Any]:
        """One timed optimizer step; its metrics record, marked "skipped" when not applied."""
        c = self.config
        start = time.perf_counter()
        try:
            loss, grad_norm, applied = self.train_step()
        except torch.OutOfMemoryError:
            raise TrainingError(
                f"out of memory at train.micro_batch_size={c.train.micro_batch_size}: lower it "
                "(gradient accumulation keeps the batch size) or set "
                "train.activation_checkpointing=true"
            ) from None
        self.step += 1
        tokens_per_s = self.step_tokens / (time.perf_counter() - start)
        record = {"step": self.step, "loss": loss, "lr": self.optimizer.param_groups[0]["lr"],
                  "grad_norm": grad_norm, "tokens_per_s": tokens_per_s, "tokens": self.tokens_seen}
        if self.peak_flops:
            record["mfu"] = self.flops_per_token * tokens_per_s / self.dist.world_size / self.peak_flops
        if not applied:
            record["skipped"] = True
        return record

    def _record(self, record: dict[str, Any]) -> None:
        """Report a step: a skipped one always goes to metrics.jsonl and is counted; an applied one
        resets the count, goes to metrics.jsonl when due, and to the progress line."""
        if record.get("skipped"):
            self.metrics.write(record)
            self._count_nonfinite(record)
            return
        self.nonfinite_in_a_row = 0
        if self._due_for_log():
            self.metrics.write(record)
        self.progress.update(record)

    def _count_nonfinite(self, record: dict[str, Any]) -> None:
        """Warn of a skipped step; abort after train.max_nonfinite_steps of them in a row."""
        self.nonfinite_in_a_row += 1
        self.log.warning(f"step {self.step}: non-finite loss {record['loss']} or gradient norm "
                         f"{record['grad_norm']}; update skipped")
        if self.nonfinite_in_a_row >= self.config.train.max_nonfinite_steps:
            raise TrainingError(
                f"{self.nonfinite_in_a_row} non-finite losses in a row (last at step {self.step}); "
                "lower optim.lr or check the data; the last good checkpoint is kept"
            )

    def train_step(self) -> tuple[float, float, bool]:
        """One optimizer step; returns (loss, grad norm, whether the update was applied)."""
        c = self.config
        lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self._accumulate_gradients()
        max_norm = c.optim.grad_clip if c.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.wrapped.parameters(), max_norm).item()
        self.step_tokens = self.tokens_in_step()
        self.tokens_seen += self.step_tokens
        applied = math.isfinite(loss) and math.isfinite(grad_norm)
        if applied:  # else the step's gradients are dropped below, and the weights stay as they were
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm, applied

    def _accumulate_gradients(self) -> float:
        """Forward and backward passes over grad_accum micro-batches; their mean loss over all ranks."""
        total = torch.zeros((), device=self.device)
        for micro in range(self.grad_accum):
            batch = self.next_batch()
            with self._gradient_sync(last=micro == self.grad_accum - 1):
                loss = self.compute_loss(*batch)
                (loss / self.grad_accum).backward()
            total += loss.detach().float()
        return distributed.mean(self.dist, total / self.grad_accum).item()

    def _gradient_sync(self, last: bool) -> contextlib.AbstractContextManager:
        """DDP all-reduces the gradients on the last micro-batch only; the others accumulate locally."""
        if last or not hasattr(self.wrapped, "no_sync"):
            return contextlib.nullcontext()
        return self.wrapped.no_sync()

    # The data and the loss: what a different objective (fine-tuning) replaces.

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimizer step `step` (0-based): warm-up, cosine decay."""
        return learning_rate(step, self.config.optim, self.max_steps)

    def tokens_in_step(self) -> int:
        """Tokens one optimizer step trains on (over all ranks)."""
        return self.config.train.batch_size * self.seq_len

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next training micro-batch (inputs, targets), on this process's device."""
        x, y = self.train_loader.next_batch()
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Forward pass and mean cross-entropy of one micro-batch."""
        with self._autocast():
            _, loss = self.compiled(x, y)
        return loss

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision as train.dtype asks (bfloat16/float16); nothing for float32."""
        if self.autocast_dtype in (torch.bfloat16, torch.float16):
            return torch.autocast(self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    # Validation and samples.

    def _validate(self) -> float | None:
        """Validation loss at this step, logged with its duration and written to metrics.jsonl."""
        start = time.perf_counter()
        self.progress.note(f"step {self.step}: validation on the first "
                           f"{self.config.eval.batches * self.config.train.micro_batch_size} windows ...")
        val_loss = self.evaluate(self.progress)
        if val_loss is not None:
            self.metrics.write({"step": self.step, "val_loss": val_loss})
            self.progress.note(f"step {self.step}: validation loss {val_loss:.4f} "
                               f"({time.perf_counter() - start:.1f} s)")
        return val_loss

    def _write_samples(self) -> None:
        """Samples at this step, to samples.jsonl and the log (rank 0 writes; see sample())."""
        if self.dist.is_main or self.sharded:
            for text in self.sample():
                self.metrics.write_sample(self.step, text)
                self.progress.note(f"sample at step {self.step}: {text!r}")

    @torch.no_grad()
    def evaluate(self, progress: Progress | None = None) -> float | None:
        """Mean loss per target token over the first eval.batches x micro_batch_size windows of
        the validation split: the same windows, so the same number, whatever the number of ranks.
        None when there is no validation window, or when a stop was requested meanwhile."""
        c = self.config
        windows = c.eval.batches * c.train.micro_batch_size
        loader = self.data.val_loader(c.train.micro_batch_size, self.seq_len, self.dist.rank,
                                      self.dist.world_size, max_windows=windows)
        if loader is None:
            return None
        self.wrapped.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss x tokens, tokens
        try:
            for i, (x, y) in enumerate(loader):
                # Every rank runs every batch (FSDP needs all of them in each forward pass), so
                # they stop together, between batches, when any of them was asked to.
                if distributed.any_rank(self.dist, self._stop_requested, self.device):
                    return None
                if progress is not None:
                    progress.working(f"validation {i + 1}/{len(loader)}")
                x, y = x.to(self.device), y.to(self.device)
                loss = self.compute_loss(x, y).double()
                tokens = (y != loader.IGNORE_INDEX).sum()
                if tokens:  # a batch of padding rows only has a NaN mean
                    total += torch.stack([loss * tokens, tokens.double()])
        finally:
            self.wrapped.train()
        total = distributed.sum_over_ranks(self.dist, total)
        return (total[0] / total[1]).item() if total[1] else None

    def sample(self) -> list[str]:
        """A few samples from the model (top-k 40), to watch what it learns. Under FSDP every
        rank must call this (each forward pass all-gathers the sharded weights); the samples
        are the same on every rank (same weights, same seed), and only rank 0 writes them."""
        from ..generation import generate

        e = self.config.eval
        if not e.samples or self.data.tokenizer is None:
            return []
        self.model.eval()
        try:
            prompt = e.sample_prompt or None  # None: unconditional, from <|endoftext|>
            samples = generate(self.model, self.data.tokenizer, prompt, max_new_tokens=e.sample_tokens,
                               top_k=40, seed=self.config.train.seed + self.step, n_samples=e.samples)
            return [(e.sample_prompt or "") + s.text for s in samples]
        finally:
            self.model.train()

    @property
    def sharded(self) -> bool:
        """Whether the model's weights are split over the ranks (FSDP2)."""
        return self.dist.enabled and self.config.train.distributed == "fsdp"

    # ----------------------------------------------------------------------------- signals

    def _install_signal_handlers(self) -> dict:
        def request_stop(signum, frame):
            if self._stop_requested:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._stop_requested = True
            self._stop_signal = signal.Signals(signum).name
            self.log.warning(f"{self._stop_signal}: finishing this step, then saving a checkpoint")

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, request_stop)
            except ValueError:  # not the main thread
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_run_dir(run_dir: Path) -> None:
    """A run directory that is a file, lies under a file, or cannot be created is named before
    anything is loaded."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"run_dir {run_dir}: a file, not a directory; choose another run_dir")
    parent = run_dir
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent != run_dir and not parent.is_dir():
        raise UsageError(f"run_dir {run_dir}: {parent} is a file, so the directory cannot be created; "
                         "choose another run_dir")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"run_dir {run_dir}: {parent} is not writable; choose another run_dir")


def checkpoint_activations(model: GPT2) -> None:
    """Recompute each block's activations during backward instead of storing them: memory
    per layer drops to the block's input, for about a third more compute."""
    for block in model.transformer.h:
        block.forward = functools.partial(
            torch.utils.checkpoint.checkpoint, type(block).forward.__get__(block), use_reentrant=False
        )


def train(config: RunConfig) -> TrainResult:
    """Run (or resume) training as configured."""
    return Trainer(config).run()
