"""The evaluation package's types: a task's declaration (Task), what its run function gets
(EvalContext) and returns (Metric), its loaded data (TaskData) and the report (EvalResult).
Light (no torch): the model, tokenizer and scorer types are for the type checker only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import Setting, Value

if TYPE_CHECKING:
    from ..model import GPT2
    from ..tokenizer import Tokenizer
    from .scoring import Scorer

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

    model: GPT2
    tokenizer: Tokenizer
    scorer: Scorer
    settings: dict[str, Any]  # a task writes back the value it used for a defaulted one (stride)
    progress: bool = False
    source: str | None = None  # the name or directory the model was loaded from (None: an instance)

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
    """A task: data + a prompt + a metric, declared in one module of gpt2.evaluate.tasks.

    run        run(ctx, docs) -> list[Metric]
    read       read(path) -> docs, for the dataset's published file format
    hf         (path, config, split) of the Hugging Face dataset, when there is one
    from_hf    turns one Hugging Face record into a doc (default: the record itself)
    settings   the settings it takes (stride, shots, ...), each with its default and range
    """

    name: str
    family: str
    description: str
    run: Callable[[EvalContext, list[dict]], list[Metric]]
    read: Callable[[Path], list[dict]]
    data_format: str  # one line: what --data takes
    hf: tuple[str, str | None, str] | None = None
    from_hf: Callable[[dict], dict] | None = None
    settings: Mapping[str, Setting] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Value]:
        return {name: s.default for name, s in self.settings.items()}


@dataclass(frozen=True)
class TaskData:
    """A task's documents, loaded (data.load_docs): what evaluate() takes in place of a path when
    the data must be read before the model loads (the CLI reads every task's data first)."""

    task: str
    docs: list[dict]
    source: str  # the file, or hf:PATH/NAME:SPLIT
    data_hash: str


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
