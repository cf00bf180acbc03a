"""`gpt2 finetune`: the training loop of `gpt2 train` (checkpoints with exact resume, SIGINT /
SIGTERM, DDP/FSDP2 under torchrun, metrics.jsonl, progress) with labelled tasks in place of
token shards: a TaskModel (one body, a head per task), a TaskSampler that draws each step's
task and examples, GPT-1's loss (task loss + lm_weight x LM loss) and per-task validation
metrics. The loop itself is the base Trainer's; this class supplies the parts it names.

    RUN_DIR/checkpoints/step-N/   a training checkpoint (model + heads, optimizer, RNG, sampler)
    RUN_DIR/final/                the fine-tuned model: loadable by transformers (see checkpoint.py)
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from .. import loading
from ..errors import FinetuneError, GPT2Error, TrainingError
from ..fsutil import atomic_write_files
from ..model import GPT2
from ..tokenizer import Tokenizer
from ..train import checkpointing as ckpt
from ..train import distributed
from ..train.optim import make_optimizer
from ..train.trainer import Trainer, check_run_dir
from .batching import Batch
from .checkpoint import load_task_model, save_task_model, task_state_parts
from .config import RESUME_SENSITIVE, FinetuneConfig
from .data import HF_PREFIX, TaskData, read_records, read_task
from .instruct import PLAIN_TEMPLATE, chat_tokenizer, read_instruct
from .distill import teacher_lm_probs
from .model import TaskInfo, TaskModel, compute_loss
from .predict import predict, score
from .sampler import TaskSampler, total_steps
from .tasks import HEAD_TYPES, TaskTokens, with_task_tokens
from .lora import PREFIX, WEIGHTS_FILE, LoRAConfig, apply_lora, merge_lora, save_adapter

FINAL_DIR = "final"
FINAL_ADAPTER_DIR = "final-adapter"
TASKS_FILE = "tasks.json"  # beside a LoRA checkpoint's adapter: the tasks its heads are for
HEADS_FILE = "heads.safetensors"


def linear_schedule(step: int, lr: float, warmup_steps: int, max_steps: int) -> float:
    """GPT-1's schedule: linear warm-up to lr over warmup_steps, then linear decay to 0."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))


def _is_regression(config_value: bool | None, task_type: str, path: str, label_key: str) -> bool:
    """Similarity tasks regress when their labels are numbers, unless the recipe says."""
    if task_type != "similarity":
        return False
    if config_value is not None:
        return config_value
    for _, record in read_records(path):
        value = record.get(label_key)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False


def _kept(key: str, layers: list[int]) -> bool:
    parts = key.split(".")
    return not key.startswith("transformer.h.") or int(parts[2]) in layers


def _renumber(key: str, layers: list[int]) -> str:
    if not key.startswith("transformer.h."):
        return key
    parts = key.split(".")
    parts[2] = str(layers.index(int(parts[2])))
    return ".".join(parts)


class FinetuneTrainer(Trainer):
    def __init__(self, config: FinetuneConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self.config: FinetuneConfig = config

    # ----------------------------------------------------------------------------- setup

    def setup(self) -> None:
        """The checks that need nothing loaded, then the base model, the tokenizer with what the
        tasks need, the task files, the model with its heads (and adapters), the optimizer."""
        c = self.config
        device = self._check_device()
        check_run_dir(self.run_dir)
        self._check_task_files()
        self._init_processes(device)
        torch.manual_seed(c.train.seed)
        lm, tokenizer = self._load_base()
        self.tokenizer, tokens = self._task_tokenizer(tokenizer)
        if self.tokenizer.vocab_size > lm.config.vocab_size:  # rows for the tokens just added
            lm.resize_token_embeddings(self.tokenizer.vocab_size)
        self.train_data, self.valid_data, infos = self._read_tasks(tokens, lm.config.n_ctx)
        self.model = TaskModel(lm, infos, head_dropout=c.model.head_dropout).train()
        self._heads_from_base()
        self.teachers = self._load_teachers(infos[0]) if c.distill.teachers else []
        if self.uses_lora:
            apply_lora(self.model, LoRAConfig(r=c.lora.r, alpha=c.lora.alpha, dropout=c.lora.dropout,
                                              targets=tuple(c.lora.targets)),
                       trainable=("heads",) if len(self.model.heads) else ())
        self.model.to(self.device)
        self.wrapped = distributed.wrap(self.model, self.dist, c.train.distributed, self.device,
                                        find_unused_parameters=len(infos) > 1)  # other tasks' heads
        self.compiled = self.wrapped
        self.optimizer = make_optimizer(self.wrapped, c.optim, self.device.type)
        self.train_loader = TaskSampler(
            {name: data.examples for name, data in self.train_data.items()},
            batch_size=c.train.batch_size, micro_batch_size=c.train.micro_batch_size, rank=self.dist.rank,
            world_size=self.dist.world_size, seed=c.train.seed, pad_id=self.tokenizer.eot_token,
            mode=c.train.task_sampling, temperature=c.train.sampling_temperature, left_pad=c.train.left_pad)
        n_examples = sum(len(d.examples) for d in self.train_data.values())
        self.max_steps = c.train.max_steps or total_steps(n_examples, c.train.batch_size, c.train.epochs)
        self.warmup_steps = math.ceil(c.optim.warmup_fraction * self.max_steps)
        self.steps_per_epoch = max(1, round(n_examples / c.train.batch_size))
        self.seq_len = max(len(s) for d in self.train_data.values() for e in d.examples for s in e.sequences)
        self.step = 0
        self.tokens_seen = 0
        self.nonfinite_in_a_row = 0
        self.peak_flops = None
        self.flops_per_token = 0.0
        self._step_tokens = 0

    def _heads_from_base(self) -> None:
        """MT-DNN's second stage: starting from a fine-tuned checkpoint (a multi-task one), a task
        it already has (same name, type and labels) keeps its trained head."""
        try:
            base = load_task_model(self.config.model.init_from)
        except GPT2Error:  # a plain language model (or a hub name): no heads to take
            return
        for name, info in self.model.tasks.items():
            old = base.tasks.get(name)
            if old is not None and old.has_head and (old.type, old.labels, old.regression) == \
                    (info.type, info.labels, info.regression):
                self.model.heads[name].load_state_dict(base.heads[name].state_dict())
                self.log.info(f"task {name}: its head starts from {self.config.model.init_from}'s")

    def _check_task_files(self) -> None:
        for task in self.config.tasks:
            for path in filter(None, (task.train, task.valid)):
                if path.startswith(HF_PREFIX):  # read (and checked) with the other data
                    continue
                if Path(path).is_dir():
                    raise FinetuneError(f"task {task.name}: {path} is a directory, not a task file")
                if not Path(path).is_file():
                    raise FinetuneError(f"task {task.name}: {path}: no such file")

    def _task_tokenizer(self, tokenizer: Tokenizer) -> tuple[Tokenizer, TaskTokens]:
        """The tokenizer with the chat template (instruct) and GPT-1's task tokens (heads)."""
        c = self.config
        if any(t.type == "instruct" for t in c.tasks):
            # LoRA keeps the base's vocabulary (an adapter cannot carry new rows): a base model
            # without a template gets the plain transcript template, which needs no new tokens.
            tokenizer = chat_tokenizer(tokenizer) if not self.uses_lora or tokenizer.chat_template \
                else tokenizer.with_chat_template(PLAIN_TEMPLATE)
        self.new_tokens = bool(c.model.new_tokens) and any(t.type in HEAD_TYPES for t in c.tasks)
        return with_task_tokens(tokenizer, new_tokens=self.new_tokens)

    def _load_base(self) -> tuple[GPT2, Any]:
        """The pre-trained model (with the recipe's dropout) and its tokenizer."""
        m = self.config.model
        loaded, tokenizer = loading.load(m.init_from)
        state = loaded.state_dict()
        config = loaded.config.replace(dropout=m.dropout)
        if m.layers:  # a student made of some of the teacher's blocks, renumbered 0, 1, ...
            if max(m.layers) >= config.n_layer:
                raise FinetuneError(f"model.layers {m.layers}: {m.init_from} has blocks 0 to {config.n_layer - 1}")
            config = config.replace(n_layer=len(m.layers))
            state = {_renumber(k, m.layers): v for k, v in state.items() if _kept(k, m.layers)}
        model = GPT2(config)
        model.load_state_dict(state)
        return model, tokenizer

    def _read_tasks(self, tokens: TaskTokens, n_ctx: int
                    ) -> tuple[dict[str, TaskData], dict[str, TaskData], list[TaskInfo]]:
        train, valid, infos = {}, {}, []
        for t in self.config.tasks:
            max_length = min(t.max_length or n_ctx, n_ctx)
            regression = _is_regression(t.regression, t.type, t.train, t.fields.get("label", "label"))
            if t.type == "instruct":  # a chat template; the loss on the responses only
                data = TaskData(read_instruct(t.train, self.tokenizer, max_length, t.fields))
            else:
                data = read_task(t.train, t.type, self.tokenizer, tokens, max_length, fields=t.fields,
                                 regression=regression)
            train[t.name] = data
            if t.valid and t.type == "instruct":
                valid[t.name] = TaskData(read_instruct(t.valid, self.tokenizer, max_length, t.fields))
            elif t.valid:
                valid[t.name] = read_task(t.valid, t.type, self.tokenizer, tokens, max_length, fields=t.fields,
                                          labels=data.labels, regression=regression)
            infos.append(TaskInfo(t.name, t.type, data.labels, regression,
                                  {"max_length": max_length, "new_tokens": self.new_tokens}))
        return train, valid, infos

    def _announce(self, resumed: Path | None) -> None:
        c = self.config
        where = f"resuming from {resumed} (step {self.step})" if resumed else "starting"
        tasks = ", ".join(f"{name} ({self.model.tasks[name].type}, {len(d.examples):,} examples)"
                          for name, d in self.train_data.items())
        trainable = self.model.num_parameters(trainable_only=True)
        self.log.info(
            f"{where}: {self.max_steps} steps of {c.train.batch_size} examples on {tasks}; "
            f"{trainable:,} of {self.model.num_parameters():,} parameters trained, "
            f"{self.dist.world_size} process(es) on {self.device.type}; log: {self.run_dir / 'train.log'}"
        )

    def resume_sensitive(self) -> tuple[str, ...]:
        return RESUME_SENSITIVE

    def _load_teachers(self, student: TaskInfo) -> list[TaskModel]:
        """The distillation teachers, checked against the student; for a task with a head, their
        soft targets attached to the training examples (computed once, cached in RUN_DIR)."""
        from .distill import cached_soft_targets, check_teacher

        c = self.config
        teachers = []
        for source in c.distill.teachers:
            teacher = load_task_model(source, device=self.device)
            check_teacher(source, teacher, loading.load_tokenizer(source), student, self.tokenizer)
            teachers.append(teacher)
        if student.has_head:
            examples = self.train_data[student.name].examples
            soft = cached_soft_targets(self.run_dir, c.distill.teachers, teachers, student, examples,
                                       temperature=c.distill.temperature, batch_size=c.train.micro_batch_size,
                                       pad_id=self.tokenizer.eot_token)
            for example, target in zip(examples, soft.tolist()):
                example.soft = target
            return []  # their work is done
        return teachers

    # ----------------------------------------------------------------------------- steps

    def learning_rate(self, step: int) -> float:
        return linear_schedule(step, self.config.optim.lr, self.warmup_steps, self.max_steps)

    def next_batch(self) -> tuple[str, Batch]:
        name, batch = self.train_loader.next_batch()
        self._step_tokens += int((batch.lm_targets != -100).sum()) + batch.input_ids.shape[0]
        return name, batch.to(self.device)

    def compute_loss(self, task: str, batch: Batch) -> torch.Tensor:  # type: ignore[override]
        c = self.config
        info = self.model.tasks[task]
        distill = (c.distill.alpha, c.distill.temperature) if c.distill.teachers else None
        with self._autocast():
            teacher_lm = None
            if self.teachers:
                teacher_lm = teacher_lm_probs(self.teachers, batch.input_ids, temperature=c.distill.temperature)
            loss, parts = compute_loss(self.compiled, info, batch, lm_weight=c.train.lm_weight,
                                       distill=distill, teacher_lm=teacher_lm)
        self._last_task, self._last_parts = task, parts
        return loss

    def tokens_in_step(self) -> int:
        tokens, self._step_tokens = self._step_tokens, 0
        return tokens

    def _step(self) -> dict[str, Any]:
        record = super()._step()
        record["task"] = self._last_task
        record |= self._last_parts
        record["epoch"] = round(self.step / self.steps_per_epoch, 3)
        return record

    # ----------------------------------------------------------------------------- evaluation

    def _due_for_eval(self) -> bool:
        interval = self.config.eval.interval or self.steps_per_epoch
        return bool(self.valid_data) and (self.step % interval == 0 or (self._finished() and self.config.eval.at_end))

    def _validate(self) -> float | None:
        """Each task's validation metrics (accuracy, F1, MCC / Pearson, Spearman) to metrics.jsonl."""
        start = time.perf_counter()
        losses = []
        for name, data in self.valid_data.items():
            preds = predict(self.model, name, data.examples, batch_size=self.config.train.micro_batch_size,
                            pad_id=self.tokenizer.eot_token)
            if not self.model.tasks[name].has_head:
                continue
            metrics = score(self.model, name, preds, data.examples)
            metrics["val_loss"] = self._task_loss(name, data)
            losses.append(metrics["val_loss"])
            self.metrics.write({"step": self.step, "task": name, **{f"val_{k}" if k != "val_loss" else k: v
                                                                    for k, v in metrics.items()}})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            self.progress.note(f"step {self.step}: {name}: {shown}")
        self.progress.note(f"step {self.step}: validation took {time.perf_counter() - start:.1f} s")
        return sum(losses) / len(losses) if losses else None

    @torch.no_grad()
    def _task_loss(self, name: str, data: TaskData) -> float:
        from .batching import collate

        was = self.model.training
        self.model.eval()
        try:
            total, n = 0.0, 0
            size = self.config.train.micro_batch_size
            for i in range(0, len(data.examples), size):
                chunk = data.examples[i : i + size]
                batch = collate(chunk, self.tokenizer.eot_token).to(self.device)
                loss, _ = compute_loss(self.model, self.model.tasks[name], batch)
                total += float(loss) * len(chunk)
                n += len(chunk)
            return total / n
        finally:
            self.model.train(was)

    def _write_samples(self) -> None:
        """Fine-tuning writes no samples."""

    # ----------------------------------------------------------------------------- checkpoints

    @property
    def uses_lora(self) -> bool:
        return self.config.lora.r > 0

    def write_model(self, directory: Path, model_state: dict[str, torch.Tensor]) -> None:
        """A checkpoint: the whole model (HF layout + heads); with LoRA, the adapter in PEFT's
        format over the recipe's base model, and the heads beside it."""
        if not self.uses_lora:
            lm_state, head_state = task_state_parts(model_state)
            save_task_model(self.model, directory, self.tokenizer, lm_state=lm_state, head_state=head_state)
            return
        from safetensors.torch import save

        save_adapter(self.model, directory, base_model_name_or_path=self.config.model.init_from)
        heads = {k: v.detach().cpu().contiguous() for k, v in model_state.items() if k.startswith("heads.")}
        files = {TASKS_FILE: (json.dumps([t.to_dict() for t in self.model.tasks.values()], indent=2) + "\n").encode()}
        if heads:
            files[HEADS_FILE] = save(heads, metadata={"format": "pt"})
        atomic_write_files(directory, files)
        self.tokenizer.save_pretrained(directory)

    def load_model_state(self, found: Path) -> dict[str, torch.Tensor]:
        if self.uses_lora:
            return self._load_lora_state(found)
        saved = load_task_model(found)
        if list(saved.tasks) != list(self.model.tasks):
            raise TrainingError(f"{found}: its tasks {list(saved.tasks)} are not this recipe's "
                                f"{list(self.model.tasks)}; use another run_dir")
        if saved.lm.config != self.model.lm.config.replace(dropout=saved.lm.config.dropout):
            raise TrainingError(f"{found}: its model shape differs from this recipe's; use another run_dir")
        return {k: v.to(self.device) for k, v in saved.state_dict().items()}

    def _load_lora_state(self, found: Path) -> dict[str, torch.Tensor]:
        """This model's state with the checkpoint's adapters and heads (the base is frozen, so
        the recipe's base model is the checkpoint's)."""
        from safetensors.torch import load_file

        state = {k: v.clone() for k, v in self.model.state_dict().items()}
        loaded = {"lm." + k.removeprefix(PREFIX): v for k, v in load_file(found / WEIGHTS_FILE).items()}
        if (found / HEADS_FILE).is_file():
            loaded |= load_file(found / HEADS_FILE)
        missing = sorted(k for k in state if ("lora_" in k or k.startswith("heads.")) and k not in loaded)
        unknown = sorted(loaded.keys() - state.keys())
        if missing or unknown:
            raise TrainingError(f"{found}: its adapter does not fit this recipe's model "
                                f"({'missing ' + missing[0] if missing else 'unknown ' + unknown[0]}); "
                                "use another run_dir")
        for key, tensor in loaded.items():
            state[key] = tensor.to(state[key].dtype)
        return {k: v.to(self.device) for k, v in state.items()}

    def finish(self) -> None:
        """After the last step: the fine-tuned model in RUN_DIR/final (rank 0); with LoRA, the
        adapters merged into it there, and the adapter alone in RUN_DIR/final-adapter."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(self.wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.dist.is_main:
            if self.uses_lora:
                self.write_model(self.run_dir / FINAL_ADAPTER_DIR, state)
                merged = copy.deepcopy(self.model).cpu()
                merge_lora(merged)
                save_task_model(merged, self.run_dir / FINAL_DIR, self.tokenizer)
            else:
                self.write_model(self.run_dir / FINAL_DIR, state)
        distributed.barrier(self.dist)


def finetune(config: FinetuneConfig):
    """Run (or resume) a fine-tuning recipe."""
    return FinetuneTrainer(config).run()

