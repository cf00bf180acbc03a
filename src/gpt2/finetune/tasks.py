"""GPT-1's task input transformations (Radford et al. 2018, Figure 1): each labelled example
becomes one or more token sequences the pre-trained model reads left to right.

    classification    [start] text [extract]
    entailment        [start] a [delim] b [extract]                  (any sentence pair)
    similarity        [start] a [delim] b [extract]  and  [start] b [delim] a [extract]
                      (no natural order: both are read and their extract states added)
    multiple_choice   [start] context [delim] choice_i [extract]     one sequence per choice
    lm                text <|endoftext|>                              (continued pre-training)

The head reads the final hidden state at the extract token. start/delim/extract are new
vocabulary entries (GPT-1 adds them; see `task_tokens`), or `<|endoftext|>` for all three
when a recipe says `new_tokens = false`. User text is always encoded as ordinary text, so a
"<|endoftext|>" typed into a task file never becomes the special token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import FinetuneError

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

# Types whose examples carry a label read by a head, and the number of sequences per example.
HEAD_TYPES = ("classification", "entailment", "similarity", "multiple_choice")
TASK_TYPES = HEAD_TYPES + ("lm", "instruct")

START, DELIM, EXTRACT = "<|start|>", "<|delim|>", "<|extract|>"
SPECIAL_TOKENS = (START, DELIM, EXTRACT)

# Default field names per task type (a recipe may map other names onto them).
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "classification": {"text": "text", "label": "label"},
    "entailment": {"text_a": "text_a", "text_b": "text_b", "label": "label"},
    "similarity": {"text_a": "text_a", "text_b": "text_b", "label": "label"},
    "multiple_choice": {"context": "context", "choices": "choices", "label": "label"},
    "lm": {"text": "text"},
    "instruct": {"instruction": "instruction", "input": "input", "output": "output", "messages": "messages"},
}


@dataclass(frozen=True)
class TaskTokens:
    """The ids of the three task tokens in one tokenizer."""

    start: int
    delim: int
    extract: int

    @classmethod
    def of(cls, tokenizer: Tokenizer, *, new_tokens: bool = True) -> TaskTokens:
        if not new_tokens:
            eot = tokenizer.eot_token
            return cls(eot, eot, eot)
        specials = tokenizer.special_tokens
        missing = [t for t in SPECIAL_TOKENS if t not in specials]
        if missing:
            raise FinetuneError(f"tokenizer {tokenizer.name} has no {missing[0]} token: add the task "
                                "tokens first (gpt2.finetune.tasks.with_task_tokens)")
        return cls(*(specials[t] for t in SPECIAL_TOKENS))


def with_task_tokens(tokenizer: Tokenizer, *, new_tokens: bool = True) -> tuple[Tokenizer, TaskTokens]:
    """The tokenizer with start/delim/extract as special tokens (the next free ids; unchanged
    when they exist already, as in a model fine-tuned before), and their ids. new_tokens false:
    <|endoftext|> plays all three and the tokenizer is unchanged. The model's embedding must
    then grow to the tokenizer's size (GPT2.resize_token_embeddings: new rows from N(0, 0.02))."""
    if new_tokens:
        tokenizer = tokenizer.add_special_tokens(SPECIAL_TOKENS)
    return tokenizer, TaskTokens.of(tokenizer, new_tokens=new_tokens)


@dataclass
class Example:
    """One encoded example: its sequences (1, 2 for similarity, one per choice for multiple
    choice) and its label (a class index, a float for regression, None for lm). `predict`
    (instruct: the response tokens), when set, marks per sequence which tokens the language-
    model loss is on; else every token after the first."""

    sequences: list[list[int]]
    label: int | float | None = None
    predict: list[list[bool]] | None = None
    soft: list[float] | float | None = None  # distillation: the teachers' soft target


def _fit(parts: list[list[int]], budget: int, keep_end: Sequence[bool]) -> list[list[int]]:
    """Cut the longest part one token at a time until all fit in `budget` tokens (transformers'
    "longest_first"; a tie cuts the later part). A part with keep_end loses tokens from its
    start (a context whose end leads into the answer), the others from their end."""
    lengths = [len(p) for p in parts]
    if budget < len(parts):
        raise FinetuneError(f"max_length leaves no room for the text: raise it above {budget}")
    while sum(lengths) > budget:  # lengths only: the lists are sliced once, below
        longest = max(lengths)
        i = len(lengths) - 1 - lengths[::-1].index(longest)
        lengths[i] -= 1
    return [p[len(p) - n:] if keep and n < len(p) else p[:n] for p, n, keep in zip(parts, lengths, keep_end)]


def transform(
    task_type: str,
    fields: dict[str, Any],
    tokenizer: Tokenizer,
    tokens: TaskTokens,
    max_length: int,
) -> list[list[int]]:
    """The token sequences of one example (its fields already read and checked), each at most
    `max_length` tokens; text is cut, never the task tokens."""
    enc = tokenizer.encode  # ordinary text only: special-token text stays text
    s, d, e = tokens.start, tokens.delim, tokens.extract
    if task_type == "classification":
        (text,) = _fit([enc(fields["text"])], max_length - 2, [False])
        return [[s, *text, e]]
    if task_type in ("entailment", "similarity"):
        a, b = _fit([enc(fields["text_a"]), enc(fields["text_b"])], max_length - 3, [False, False])
        first = [s, *a, d, *b, e]
        return [first] if task_type == "entailment" else [first, [s, *b, d, *a, e]]
    if task_type == "multiple_choice":
        context = enc(fields["context"])
        sequences = []
        for choice in fields["choices"]:
            ctx, ch = _fit([context, enc(choice)], max_length - 3, [True, False])
            sequences.append([s, *ctx, d, *ch, e])
        return sequences
    raise FinetuneError(f"task type {task_type!r} has no input transformation; "
                        f"choose one of: {', '.join(HEAD_TYPES)}")
