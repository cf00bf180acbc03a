"""Labelled task files: JSONL (one example a line) or GLUE's TSV (a header row, tab-separated,
no quoting), read into encoded examples with every problem named by file and line.

Labels of a classification task are strings or integers; the label set is the sorted set
seen in the training file, and its order is saved with the model (`id2label`). A
regression task (similarity with numeric labels) keeps floats.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from ..errors import FinetuneError
from ..validate import is_int, is_real
from .tasks import DEFAULT_FIELDS, Example, TaskTokens, transform

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

Label = str | int


HF_PREFIX = "hf:"


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each example of a .jsonl or .tsv file (blank lines skipped), or
    (row number, record) of a Hugging Face dataset named `hf:PATH[:CONFIG]:SPLIT` (e.g.
    hf:nyu-mll/glue:sst2:train; `datasets` and the hub or its local cache needed)."""
    if str(path).startswith(HF_PREFIX):
        yield from _hf_records(str(path))
        return
    path = Path(path)
    if not path.exists():
        raise FinetuneError(f"{path}: no such task file")
    if not path.is_file():
        raise FinetuneError(f"{path}: is not a file (a task file is JSONL or TSV)")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if path.suffix == ".tsv":
                reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                for row in reader:
                    if None in row or None in row.values():
                        raise FinetuneError(f"{path}, line {reader.line_num}: {len(reader.fieldnames or [])} "
                                            "columns in the header but a different number here")
                    yield reader.line_num, row
                return
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise FinetuneError(f"{path}, line {number}: not JSON ({e.msg})") from None
                if not isinstance(record, dict):
                    raise FinetuneError(f"{path}, line {number}: expected a JSON object, got "
                                        f"{type(record).__name__}")
                yield number, record
    except UnicodeDecodeError as e:
        raise FinetuneError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FinetuneError(f"{path}: cannot read ({e.strerror})") from None


def _hf_records(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    parts = source.removeprefix(HF_PREFIX).split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise FinetuneError(f"{source}: a Hugging Face dataset is hf:PATH:SPLIT or hf:PATH:CONFIG:SPLIT, "
                            "e.g. hf:nyu-mll/glue:sst2:train")
    name, config, split = (parts[0], None, parts[1]) if len(parts) == 2 else parts
    try:
        import datasets
    except ImportError:
        raise FinetuneError(f"{source}: Hugging Face datasets need `datasets`: pip install 'gpt2[data]'") from None
    try:
        rows = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # offline, no such dataset, config or split: the library's own words
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FinetuneError(f"{source}: cannot load it ({first}); or pass a local JSONL/TSV file") from None
    for number, row in enumerate(rows, 1):
        yield number, dict(row)


def _get(record: dict[str, Any], name: str, key: str, where: str) -> Any:
    if key not in record:
        raise FinetuneError(f"{where}: missing field {key!r}" + (f" (the task's {name})" if key != name else ""))
    return record[key]


def _text(record: dict[str, Any], name: str, key: str, where: str) -> str:
    value = _get(record, name, key, where)
    if not isinstance(value, str):
        raise FinetuneError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


@dataclass
class TaskData:
    """The encoded examples of one task file, with the label set they are indexed by."""

    examples: list[Example]
    labels: list[Label] | None = None  # class index -> label; None for regression and lm
    label_counts: dict[int, int] = field(default_factory=dict)


def raw_label(record: dict[str, Any], key: str, where: str, regression: bool) -> Label | float:
    value = _get(record, "label", key, where)
    if regression:
        if isinstance(value, str):  # TSV cells are text
            try:
                value = float(value)
            except ValueError:
                raise FinetuneError(f"{where}: label {value!r} is not a number (a regression task)") from None
        if not is_real(value) or not math.isfinite(value):
            raise FinetuneError(f"{where}: label {value!r} must be a finite number (a regression task)")
        return float(value)
    if isinstance(value, str) or is_int(value):
        return value
    raise FinetuneError(f"{where}: label {value!r} must be a string or an integer")


def label_set(labels: Sequence[Label], source: str) -> list[Label]:
    """The sorted distinct labels (integers numerically, strings alphabetically)."""
    distinct = set(labels)
    if not distinct:
        raise FinetuneError(f"{source}: no examples")
    if len({type(x) for x in distinct}) > 1:
        raise FinetuneError(f"{source}: labels mix strings and integers; use one kind")
    if len(distinct) < 2:
        raise FinetuneError(f"{source}: every example has the label {next(iter(distinct))!r}; "
                            "a classifier needs at least two")
    return sorted(distinct)


def read_task(path: str | Path, task_type: str, tokenizer: Tokenizer, tokens: TaskTokens, max_length: int,
              **options: Any) -> TaskData:
    """Read and encode a task file (options as for encode_records: fields, labels, regression,
    need_labels). The training file gives the label set; other files must use its labels."""
    assert task_type != "instruct", "instruct.read_instruct reads chats"
    if task_type == "lm":
        names = DEFAULT_FIELDS["lm"] | (options.get("fields") or {})
        return _read_lm(path, tokenizer, max_length, names["text"])
    unit = "row" if str(path).startswith(HF_PREFIX) else "line"
    records = ((f"{path}, {unit} {number}", record) for number, record in read_records(path))
    return encode_records(records, str(path), task_type, tokenizer, tokens, max_length, **options)


def encode_records(
    records: Iterable[tuple[str, dict[str, Any]]],
    source: str,
    task_type: str,
    tokenizer: Tokenizer,
    tokens: TaskTokens,
    max_length: int,
    *,
    fields: dict[str, str] | None = None,
    labels: list[Label] | None = None,
    regression: bool = False,
    need_labels: bool = True,
) -> TaskData:
    """Encode records already read: (where, record) pairs, `where` naming the line. `labels`
    None: these are the training examples and the label set comes from them; else the training
    file's labels, and an unseen label is an error. need_labels false (predictions): labels
    are not read at all. regression: numeric labels (similarity)."""
    names = DEFAULT_FIELDS[task_type] | (fields or {})
    examples: list[Example] = []
    raw: list[tuple[str, Label | float]] = []
    n_choices: int | None = None
    for where, record in records:
        if task_type == "classification":
            values: dict[str, Any] = {"text": _text(record, "text", names["text"], where)}
        elif task_type == "multiple_choice":
            values = {"context": _text(record, "context", names["context"], where)}
            choices = _get(record, "choices", names["choices"], where)
            if isinstance(choices, str):  # TSV: a JSON list in one cell
                try:
                    choices = json.loads(choices)
                except json.JSONDecodeError:
                    pass
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise FinetuneError(f"{where}: field {names['choices']!r} must be a list of at least two strings")
            if n_choices is None:
                n_choices = len(choices)
            elif len(choices) != n_choices:
                raise FinetuneError(f"{where}: {len(choices)} choices, but the first example has {n_choices}; "
                                    "every example of a task needs the same number")
            values["choices"] = choices
        else:
            values = {k: _text(record, k, names[k], where) for k in ("text_a", "text_b")}
        if not need_labels:
            label = None
        elif task_type == "multiple_choice":
            label = _get(record, "label", names["label"], where)
            if isinstance(label, str) and label.strip().lstrip("-").isdigit():
                label = int(label)
            if not is_int(label) or not 0 <= label < len(values["choices"]):
                raise FinetuneError(f"{where}: label {label!r} must be the index of the right choice "
                                    f"(0 to {len(values['choices']) - 1})")
        else:
            label = raw_label(record, names["label"], where, regression)
        examples.append(Example(transform(task_type, values, tokenizer, tokens, max_length), None))
        raw.append((where, label))
    if not examples:
        raise FinetuneError(f"{source}: no examples (the file is empty)")
    if not need_labels:
        return TaskData(examples, labels)
    if task_type == "multiple_choice" or regression:
        for example, (_, label) in zip(examples, raw):
            example.label = label
        return TaskData(examples, None)
    if labels is None:
        labels = label_set([label for _, label in raw], source)
    index = {label: i for i, label in enumerate(labels)}
    counts: dict[int, int] = {}
    for example, (where, label) in zip(examples, raw):
        if label not in index and str(label) in index:  # a checkpoint transformers saved: "0", "1"
            label = str(label)
        if label not in index:
            shown = ", ".join(map(repr, labels[:10])) + (" ..." if len(labels) > 10 else "")
            raise FinetuneError(f"{where}: label {label!r} never appears in the training data ({shown})")
        example.label = index[label]
        counts[example.label] = counts.get(example.label, 0) + 1
    return TaskData(examples, list(labels), counts)


def _read_lm(path: str | Path, tokenizer: Tokenizer, max_length: int, key: str) -> TaskData:
    """Continued pre-training: each text + <|endoftext|>, cut into windows of max_length tokens."""
    examples = []
    for number, record in read_records(path):
        ids = tokenizer.encode(_text(record, "text", key, f"{path}, line {number}")) + [tokenizer.eot_token]
        examples += [Example([ids[i : i + max_length]]) for i in range(0, len(ids), max_length)
                     if len(ids[i : i + max_length]) > 1]  # one token has no next token to predict
    if not examples:
        raise FinetuneError(f"{path}: no text (the file is empty)")
    return TaskData(examples)
