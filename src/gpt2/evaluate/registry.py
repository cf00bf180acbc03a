"""The task registry and the one entry point, `evaluate`.

A task is data + a prompt + a metric, declared in one small module per family
(perplexity.py, lambada.py, cbt.py, winograd.py, multiple_choice.py, coqa.py,
summarization.py, translation.py, qa.py). Each module calls `register(Task(...))`:

    name         what --task takes
    run          run(ctx, docs) -> list[Metric]; ctx holds the model, tokenizer, scorer, settings
    read         read(path) -> docs, for the dataset's published file format
    hf           (path, config, split) of the Hugging Face dataset, when there is one
    from_hf      turns one Hugging Face record into a doc (default: the record itself)
    defaults     the task's settings (stride, shots, ...), overridable from Python or the CLI;
                 every name must have a rule in _SETTING_RULES (its type and range)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .errors import EvalDataError

_FAMILIES = (
    "perplexity", "lambada", "cbt", "winograd", "multiple_choice",
    "coqa", "summarization", "translation", "qa",
)


@dataclass(frozen=True)
class Metric:
    """One number of a report."""

    name: str
    value: float
    stderr: float | None
    n: int  # the number of units it averages over (examples, documents, tokens)
    higher_is_better: bool = True


@dataclass
class EvalContext:
    """What a task's run function gets besides its documents."""

    model: Any  # gpt2.GPT2
    tokenizer: Any  # gpt2.Tokenizer: encode / decode / eot_token
    scorer: Any  # scoring.Scorer
    settings: dict[str, Any]  # a task writes back the value it used for a defaulted one (stride)
    progress: bool = False

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of (context, continuation), split as lm-evaluation-harness does: trailing
        whitespace of the context moves to the continuation, the whole text is encoded and the
        context's tokens are cut off its front (so BPE merges across the seam are kept)."""
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        if not context:
            cont = self.encode(continuation)
            eot = self.tokenizer.eot_token
            return (cont[:1], cont[1:]) if cont and cont[0] == eot else ([], cont)
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx):]


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    description: str
    run: Callable[[EvalContext, list[dict]], list[Metric]]
    read: Callable[[Path], list[dict]]
    data_format: str  # one line: what --data takes
    hf: tuple[str, str | None, str] | None = None
    from_hf: Callable[[dict], dict] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalResult:
    """A task's report: the metrics plus everything needed to reproduce them."""

    task: str
    metrics: list[Metric]
    n: int
    model: str
    data: str
    data_hash: str
    settings: dict[str, Any]
    seconds: float
    tokens_scored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": [
                {"metric": m.name, "value": m.value, "stderr": m.stderr, "n": m.n,
                 "higher_is_better": m.higher_is_better}
                for m in self.metrics
            ],
            "n": self.n,
            "model": self.model,
            "data": self.data,
            "data_hash": self.data_hash,
            "settings": self.settings,
            "seconds": round(self.seconds, 3),
            "tokens_scored": self.tokens_scored,
        }

    def __getitem__(self, metric: str) -> float:
        for m in self.metrics:
            if m.name == metric:
                return m.value
        raise KeyError(f"{self.task} has no metric {metric!r}; it has {[m.name for m in self.metrics]}")


@dataclass(frozen=True)
class TaskData:
    """A task's documents, loaded (load_docs): what evaluate() takes in place of a path when the
    data must be read before the model loads (the CLI reads every task's data first)."""

    task: str
    docs: list[dict]
    source: str  # the file, or hf:PATH/NAME:SPLIT
    data_hash: str


_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} registered twice")
    _TASKS[task.name] = task
    return task


def _load_families() -> None:
    for family in _FAMILIES:
        importlib.import_module(f"{__package__}.{family}")


def tasks() -> dict[str, Task]:
    """Every registered task, by name."""
    _load_families()
    return dict(sorted(_TASKS.items()))


def get_task(name: str) -> Task:
    all_tasks = tasks()
    if name not in all_tasks:
        raise UsageError(f"unknown task {name!r}; choose one of: {', '.join(all_tasks)}")
    return all_tasks[name]


# --------------------------------------------------------------------------- data


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def docs_hash(docs: Sequence[dict]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps(d, sort_keys=True, ensure_ascii=False).encode())
    return "sha256:" + h.hexdigest()


def check_data_source(task: Task, data: str | Path | None) -> None:
    """Refuse, before any model loads, a data source that cannot work: a --data path that is
    missing or not a file, a task with no hub dataset and no --data, no `datasets` package, or
    a hub that cannot be reached (one quick try, not huggingface_hub's half a minute of retries)."""
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise EvalDataError(f"{path}: no such data file; pass --data PATH ({task.data_format})")
        if path.is_dir():
            raise EvalDataError(f"{path}: a directory; pass the data file itself ({task.data_format})")
        return
    if task.hf is None:
        raise EvalDataError(f"task {task.name} needs --data PATH ({task.data_format})")
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise EvalDataError(
            f"task {task.name}: no --data given and the `datasets` package is not installed; "
            f"pass --data PATH ({task.data_format}) or pip install datasets"
        ) from None
    if _hub_offline() is None and not _hub_reachable():
        from huggingface_hub import constants

        raise EvalDataError(f"task {task.name}: no --data given and the Hugging Face hub "
                            f"({constants.ENDPOINT}) cannot be reached; pass --data PATH ({task.data_format})")


def _hub_offline() -> str | None:
    """The variable that puts the hub offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), if one does."""
    import os

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return name
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within `timeout` seconds. With a
    proxy configured the answer is left to huggingface_hub (a direct connection proves nothing)."""
    import os
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        return True
    ok: list[bool] = []

    def attempt() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(ok)


def load_docs(task: Task, data: str | Path | None) -> TaskData:
    """The task's documents from a local file (data) or its Hugging Face dataset."""
    check_data_source(task, data)
    if data is not None:
        path = Path(data).expanduser()
        docs = task.read(path)
        if not docs:
            raise EvalDataError(f"{path}: no examples in the file ({task.data_format})")
        return TaskData(task.name, docs, str(path), file_hash(path))
    import datasets

    hf_path, hf_name, split = task.hf
    try:
        ds = datasets.load_dataset(hf_path, hf_name, split=split)
    except Exception as e:  # network, missing dataset, offline mode
        offline = _hub_offline()
        if offline:  # only the local cache was tried
            raise EvalDataError(f"task {task.name}: {hf_path} is not in the local Hugging Face cache and "
                                f"{offline} is set; pass --data PATH ({task.data_format})") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EvalDataError(
            f"task {task.name}: cannot load {hf_path} from the Hugging Face hub ({first}); "
            f"pass --data PATH ({task.data_format})"
        ) from None
    convert = task.from_hf or (lambda r: dict(r))
    docs = [convert(dict(r)) for r in ds]
    source = f"hf:{hf_path}" + (f"/{hf_name}" if hf_name else "") + f":{split}"
    return TaskData(task.name, docs, source, docs_hash(docs))


def read_jsonl(path: Path, required: Sequence[str] = ()) -> list[dict]:
    """Records of a JSON Lines file; each must be an object holding the `required` keys."""
    docs = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    raise EvalDataError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line") from None
                if not isinstance(doc, dict):
                    raise EvalDataError(f"{path}:{lineno}: expected a JSON object per line")
                missing = [k for k in required if k not in doc]
                if missing:
                    raise EvalDataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
                docs.append(doc)
    except UnicodeDecodeError:
        raise EvalDataError(f"{path}: not UTF-8 text") from None
    return docs


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EvalDataError(f"{path}: not UTF-8 text") from None


# --------------------------------------------------------------------------- settings


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_in(v: Any, lo: int, hi: int | None = None) -> bool:
    return _is_int(v) and lo <= v and (hi is None or v <= hi)


# Upper bounds of settings that the model does not bound (documented in the CLI's help).
MAX_STRIDE = 1_000_000  # until the model is loaded; then n_ctx
MAX_NEW_TOKENS = 1_000_000  # likewise; then n_ctx - 1
MAX_SHOTS = 10_000
MAX_TOP_K = 1_000_000  # any k >= the vocabulary keeps every token
MAX_SENTENCES = 1_000
MAX_SEED = 2**32 - 1  # generation seeds each batch with seed + index: headroom below 2**63

# name -> (is the value valid, given n_ctx or None when no model is loaded yet; what it must be).
# `--set shots=x` arrives as the string "x": it must be refused, not run.
_SETTING_RULES: dict[str, tuple[Callable[[Any, int | None], bool], Callable[[int | None], str]]] = {
    "stride": (lambda v, n: v is None or _int_in(v, 1, n or MAX_STRIDE),
               lambda n: f"an integer in [1, {n or 'n_ctx'}] (unset: n_ctx // 2)"),
    "max_new_tokens": (lambda v, n: _int_in(v, 1, n - 1 if n else MAX_NEW_TOKENS),
                       lambda n: f"an integer in [1, {n - 1 if n else 'n_ctx - 1'}] "
                                 "(the prompt needs room in the context)"),
    "shots": (lambda v, n: _int_in(v, 0, MAX_SHOTS), lambda n: f"an integer in [0, {MAX_SHOTS}]"),
    "top_k": (lambda v, n: _int_in(v, 0, MAX_TOP_K), lambda n: f"an integer in [0, {MAX_TOP_K}] (0: no top-k)"),
    "sentences": (lambda v, n: _int_in(v, 1, MAX_SENTENCES), lambda n: f"an integer in [1, {MAX_SENTENCES}]"),
    "seed": (lambda v, n: _int_in(v, 0, MAX_SEED), lambda n: f"an integer in [0, {MAX_SEED}]"),
    "detokenize": (lambda v, n: isinstance(v, bool), lambda n: "true or false"),
    "join": (lambda v, n: isinstance(v, bool), lambda n: "true or false"),
}
_OWN_FLAGS = ("stride", "shots", "seed")  # settings with their own CLI option


def check_settings(settings: dict[str, Any], n_ctx: int | None = None) -> None:
    """Refuse a setting of the wrong type or range (n_ctx: the model's, once it is loaded)."""
    for key, value in settings.items():
        valid, want = _SETTING_RULES[key]
        if not valid(value, n_ctx):
            flag = f"--{key}" if key in _OWN_FLAGS else f"--set {key}"
            raise UsageError(f"{flag} must be {want(n_ctx)}, got {value!r}")


# --------------------------------------------------------------------------- the entry point


def evaluate(
    model: Any,
    task: str,
    data: str | Path | TaskData | None = None,
    *,
    tokenizer: Any = None,
    limit: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    dtype: str | None = None,
    progress: bool = False,
    **settings: Any,
) -> EvalResult:
    """Evaluate a model on one task and return its report.

    model: a gpt2.GPT2, or a name gpt2.load takes: "demo" (the bundled demo model), a
    checkpoint directory or a hub name. tokenizer: defaults to the one gpt2.load finds beside
    the checkpoint (GPT-2's for a GPT2 instance). data: a local file in the
    dataset's published format (default: the Hugging Face dataset, when a network exists), or
    what load_docs returned for this task.
    limit: evaluate the first N examples only. settings: the task's options (e.g. stride=512
    for perplexity, shots=5 for QA); unknown names are refused.
    """
    from ..model import GPT2
    from .scoring import Scorer

    spec = get_task(task)
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise UsageError(f"--limit must be a positive integer, got {limit!r}")
    if not _is_int(batch_size) or batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer, got {batch_size!r}")
    unknown = sorted(set(settings) - set(spec.defaults))
    if unknown:
        allowed = ", ".join(spec.defaults) or "none"
        raise UsageError(f"task {task} has no setting {', '.join(unknown)} (its settings: {allowed})")
    merged = dict(spec.defaults) | settings
    # Before loading a model (a typo must not cost a download); the caller's settings first.
    check_settings(settings | merged, model.config.n_ctx if isinstance(model, GPT2) else None)
    if not isinstance(data, TaskData):
        data = load_docs(spec, data)  # a data mistake costs no model loading either
    elif data.task != spec.name:
        raise UsageError(f"data loaded for task {data.task} given to task {spec.name}")
    docs, source, data_hash = data.docs, data.source, data.data_hash
    if limit is not None:
        docs = docs[:limit]

    model_name = getattr(model, "name_or_path", None) or "GPT2 instance"
    if not isinstance(model, GPT2):
        from ..loading import load

        model_name = str(model)
        model, loaded_tokenizer = load(model, device=device, dtype=dtype)
        tokenizer = loaded_tokenizer if tokenizer is None else tokenizer
    elif device is not None or dtype is not None:
        from ..checkpoint import parse_dtype
        from ..devices import parse_device

        model = model.to(device=None if device is None else parse_device(device, "device"),
                         dtype=parse_dtype(dtype))
    if tokenizer is None:  # a GPT2 instance says nothing of its vocabulary: GPT-2's
        from ..tokenizer import Tokenizer

        tokenizer = Tokenizer.from_pretrained("gpt2")
    model.eval()
    check_settings(settings | merged, model.config.n_ctx)

    scorer = Scorer(model, batch_size=batch_size, progress=progress, eot=tokenizer.eot_token)
    ctx = EvalContext(model=model, tokenizer=tokenizer, scorer=scorer, settings=merged, progress=progress)
    start = time.perf_counter()
    metrics = spec.run(ctx, docs)  # may write effective values of defaulted settings into merged
    seconds = time.perf_counter() - start
    return EvalResult(
        task=task,
        metrics=metrics,
        n=len(docs),
        model=model_name,
        data=source,
        data_hash=data_hash,
        settings=merged | {"batch_size": batch_size, "limit": limit,
                           "dtype": str(next(model.parameters()).dtype).replace("torch.", "")},
        seconds=seconds,
        tokens_scored=scorer.tokens_scored,
    )
