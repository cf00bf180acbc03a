"""The bundled demo fine-tuning tasks (gpt2/assets/tasks): well-formed files in each task type's
default fields, balanced labels, train and valid disjoint, every example within the demo model's
budget, the README's table true, and build_tasks.py reproducing the files byte for byte."""

from __future__ import annotations

import collections
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

import gpt2

TASKS_DIR = Path(gpt2.__file__).resolve().parent / "assets" / "tasks"
TYPES = {"authorship": "classification", "play": "classification", "next_sentence": "entailment",
         "same_book": "similarity", "next_line": "multiple_choice", "chat": "instruct"}
FIELDS = {"classification": {"text", "label"}, "entailment": {"text_a", "text_b", "label"},
          "similarity": {"text_a", "text_b", "label"}, "multiple_choice": {"context", "choices", "label"},
          "instruct": {"messages"}}
SPLITS = ("train", "valid")
CORPUS_TASKS = [t for t in TYPES if t != "chat"]


@lru_cache(maxsize=None)
def read(task: str, split: str) -> tuple[dict, ...]:
    path = TASKS_DIR / f"{task}.{split}.jsonl"
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def build():
    """build_tasks.py as a module (it is a script beside the assets, not part of the package)."""
    spec = importlib.util.spec_from_file_location("gpt2_build_tasks", TASKS_DIR / "build_tasks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def count(build):
    return build.demo_token_counter()


def inputs(example: dict) -> str:
    return json.dumps({k: v for k, v in example.items() if k != "label"}, sort_keys=True)


def test_the_files_are_the_tasks_and_small():
    names = sorted(p.name for p in TASKS_DIR.glob("*.jsonl"))
    assert names == sorted(f"{t}.{s}.jsonl" for t in TYPES for s in SPLITS)
    assert sum((TASKS_DIR / n).stat().st_size for n in names) < 3_000_000
    for name in names:  # one JSON object a line, UTF-8, a newline after the last
        data = (TASKS_DIR / name).read_bytes()
        assert data.endswith(b"\n") and b"\r" not in data and b"\n\n" not in data


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("task", TYPES)
def test_fields_and_types(task, split):
    kind = TYPES[task]
    rows = read(task, split)
    assert rows
    for row in rows:
        assert set(row) == FIELDS[kind]
        if kind == "instruct":
            messages = row["messages"]
            assert messages and len(messages) % 2 == 0
            for i, m in enumerate(messages):
                assert set(m) == {"role", "content"}
                assert m["role"] == ("user", "assistant")[i % 2]
                assert isinstance(m["content"], str) and m["content"].strip() == m["content"] != ""
            continue
        texts = [row[k] for k in ("text", "text_a", "text_b", "context") if k in row]
        assert all(isinstance(t, str) and t.strip() == t != "" for t in texts)
        if kind == "similarity":
            assert isinstance(row["label"], float) and 0.0 <= row["label"] <= 1.0
        elif kind == "multiple_choice":
            choices = row["choices"]
            assert isinstance(choices, list) and len(choices) == 4 == len(set(choices))
            assert all(isinstance(c, str) and c.strip() == c != "" for c in choices)
            assert type(row["label"]) is int and 0 <= row["label"] < 4
            assert choices[row["label"]] not in row["context"].split("\n")
        else:
            assert isinstance(row["label"], str)


@pytest.mark.parametrize("task", CORPUS_TASKS)
def test_labels_balanced(task):
    """Every label has the same share in train and in valid (exactly, by construction), and
    labels never seen in training do not appear in valid."""
    counts = {s: collections.Counter(r["label"] for r in read(task, s)) for s in SPLITS}
    assert set(counts["train"]) == set(counts["valid"])
    n_labels = {"authorship": 2, "play": 5, "next_sentence": 2, "same_book": 3, "next_line": 4}[task]
    for split, c in counts.items():
        assert len(c) == n_labels
        share = len(read(task, split)) / n_labels
        assert all(math.isclose(v, share, rel_tol=0.02) for v in c.values()), (split, c)


@pytest.mark.parametrize("task", TYPES)
def test_train_and_valid_disjoint(task):
    """No input (the example without its label) is in both splits, or twice in one."""
    train, valid = ({inputs(r) for r in read(task, s)} for s in SPLITS)
    assert len(train) == len(read(task, "train")) and len(valid) == len(read(task, "valid"))
    assert not train & valid


def test_held_out_by_position(build):
    """An example of a split is cut from that split's part of a work (valid: the last tenth):
    each play speech from its own play's part, each next_line context and answer from
    consecutive lines of a part."""
    halves = [build.split_work(w) for w in build.read_corpus()]
    for i, split in enumerate(SPLITS):
        parts = [h[i] for h in halves]
        speeches = {w.title: ["\n".join(b) for s in w.sections for b in s] for w in parts}
        for row in read("play", split):
            assert any(s.startswith(row["text"]) for s in speeches[row["label"]])
        windows = {tuple(lines[j:j + k]) for w in parts for _, lines in build.runs(w)
                   for k in (3, 4) for j in range(len(lines) - k + 1)}
        for row in read("next_line", split):
            assert (*row["context"].split("\n"), row["choices"][row["label"]]) in windows


def test_fits_the_demo_model(build, count):
    """The README's budget in demo-model tokens: a text at most 100, a pair or a context and
    choice at most 96, a conversation's messages at most 160."""
    for split in SPLITS:
        for row in read("authorship", split) + read("play", split):
            assert count(row["text"]) <= build.MAX_TEXT == 100
        for row in read("next_sentence", split) + read("same_book", split):
            assert max(count(row["text_a"]), count(row["text_b"])) <= build.MAX_PAIR == 48
        for row in read("next_line", split):
            assert count(row["context"]) <= build.MAX_CONTEXT == 64
            assert max(map(count, row["choices"])) <= build.MAX_CHOICE == 32
        for row in read("chat", split):
            assert sum(count(m["content"]) for m in row["messages"]) <= build.MAX_CHAT == 160


def test_authorship_pairs_by_length(count):
    """Each 10-token length band holds as many Shakespeare passages as Bible ones, so length in
    tokens tells nothing; the README's figure for character length (68% on valid) holds."""
    for split in SPLITS:
        bands = collections.Counter((count(r["text"]) // 10, r["label"]) for r in read("authorship", split))
        for band in {b for b, _ in bands}:
            assert bands[band, "shakespeare"] == bands[band, "bible"]
        assert all("\n" not in r["text"] for r in read("authorship", split))

    def accuracy(rows, threshold):
        return sum((len(r["text"]) > threshold) == (r["label"] == "bible") for r in rows) / len(rows)

    train, valid = read("authorship", "train"), read("authorship", "valid")
    best = max(range(0, 500, 5), key=lambda t: accuracy(train, t))
    assert round(accuracy(valid, best), 2) == 0.68


def test_next_line_has_no_length_cue():
    for split in SPLITS:
        rows = read("next_line", split)
        for pick in (max, min):
            hits = sum(pick(range(4), key=lambda i: len(r["choices"][i])) == r["label"] for r in rows)
            assert hits / len(rows) < 0.3


def test_readme_table():
    """The README's table gives each task's type and the sizes of both splits."""
    readme = (TASKS_DIR / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| ([\w ()]+?) \| [^|]+ \| (\d+) \| (\d+) \|", readme, re.M)
    assert {r[0] for r in rows} == set(TYPES)
    for task, kind, n_train, n_valid in rows:
        assert kind.split()[0] == TYPES[task]
        assert (len(read(task, "train")), len(read(task, "valid"))) == (int(n_train), int(n_valid))


def test_corpus_tasks_rebuild_byte_for_byte(build, count):
    files = build.build_corpus_tasks(count=count)
    assert sorted(files) == sorted(f"{t}.{s}.jsonl" for t in CORPUS_TASKS for s in SPLITS)
    for name, data in files.items():
        assert data == (TASKS_DIR / name).read_bytes(), name


def _chatterbot_archive(tmp_path: Path) -> Path:
    given = os.environ.get("GPT2_CHATTERBOT")  # a downloaded wheel or sdist of chatterbot-corpus 1.3.3
    if given:
        return Path(given)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                           str(tmp_path), "chatterbot-corpus==1.3.3"], capture_output=True)
    if done.returncode != 0:
        pytest.skip("chatterbot-corpus 1.3.3 cannot be downloaded here (set GPT2_CHATTERBOT)")
    return next(tmp_path.glob("chatterbot*"))


@pytest.mark.slow
def test_chat_rebuilds_byte_for_byte(build, count, tmp_path):
    pytest.importorskip("yaml")  # PyYAML reads chatterbot's files; not a dependency of gpt2
    archive = _chatterbot_archive(tmp_path)
    conversations = build.read_chatterbot(archive)
    # the README's figures
    assert len(conversations) == 21 and sum(len(c) for _, c in conversations) == 2025
    tech = dict(conversations)["tech_support.yml"]
    assert len(tech) == 1050 and len({tuple(c) for c in tech}) == 10
    exchanges = [(str(u).strip(), str(b).strip()) for _, cs in conversations for c in cs
                 for u, b in zip(c[0::2], c[1::2])]
    assert sum(count(u) + count(b) > build.MAX_CHAT for u, b in exchanges) == 46
    files = build.build_chat(archive, count)
    for name, data in files.items():
        assert data == (TASKS_DIR / name).read_bytes(), name
