"""Rebuild the bundled demo fine-tuning tasks (README.md beside this file) byte for byte.

Not imported by the package; kept so that the assets can be reproduced and audited:

    python build_tasks.py OUT_DIR                        # fetches chatterbot-corpus 1.3.3 with pip
    python build_tasks.py OUT_DIR --chatterbot FILE      # or reads a downloaded wheel / sdist:
        pip download --no-deps chatterbot-corpus==1.3.3

Five tasks come from the bundled corpus (../corpus/demo.jsonl.xz: Shakespeare's 42 works and the
66 books of the King James Bible); `chat` comes from chatterbot-corpus's English conversations
(BSD-3-Clause; NOTICE.txt). Every task is split by position: the last 10% of each work (of each
chatterbot file for `chat`) is `valid`, the rest `train`, so no passage is in both; a valid example
whose input equals a train example's is never drawn. Examples are sized in the demo model's tokens
so that fine-tuning it on a CPU takes minutes. Deterministic: one seed per task and split, stable
ordering, Python's `random` (its shuffle/choice/randint are stable across versions since 3.2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus" / "demo.jsonl.xz"

SEED = 20190214  # the day GPT-2 was announced
VALID_FRACTION = 0.1
# (train, valid) examples per corpus task, chosen so that every balanced share is whole.
SIZES = {
    "authorship": (3000, 480),
    "play": (2000, 400),
    "next_sentence": (1600, 400),
    "same_book": (1500, 300),
    "next_line": (1000, 320),
}
PLAYS = ("Hamlet", "Othello", "King Lear", "The Taming of the Shrew", "Much Ado About Nothing")
LABELS = {"shakespeare": "shakespeare", "kjv": "bible"}  # source -> authorship label

# Lengths in demo-model tokens (n_ctx 256): one text; each text of a pair; a multiple-choice
# context and each choice; all the messages of one conversation.
MAX_TEXT, MAX_PAIR, MAX_CONTEXT, MAX_CHOICE, MAX_CHAT = 100, 48, 64, 32, 160
MIN_WORDS = 4  # shorter speeches ("Ay.", "He.") say nothing about where they come from

CHATTERBOT = "chatterbot-corpus==1.3.3"
CHATTERBOT_SHA256 = {  # PyPI's wheel and sdist of 1.3.3
    "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
    "615b5c4c605154f60ae51d03ed918ed92e9d32bc2b144b759bbc64ecdbe18481",
}

Block = list[str]  # a speech, a stanza or a verse: its lines


@dataclass
class Work:
    title: str
    source: str  # "shakespeare" or "kjv"
    sections: list[list[Block]]  # scenes, poems or chapters


# ---------------------------------------------------------------- the corpus as works

_SCENE = re.compile(r"(ACT|Act|SCENE|Scene)[ .]+([IVXL]+|\d+|FIRST)\b")
_PART = re.compile(r"(PROLOGUE|Prologue|INDUCTION|Induction|EPILOGUE|Epilogue)\.?")
_SPEAKER_DOT = re.compile(r"[A-Z][A-Za-z'.\- ]*\.")  # "Ham.", "FIRST WITCH.", "MRS. PAGE."
_SPEAKER_CAPS = re.compile(r"[A-Z][A-Z'.\- ]*")  # A Midsummer Night's Dream: "THESEUS"
_ROMAN = re.compile(r"[IVXLC]+\.?")
_EXIT = re.compile(r"(Exit|Exeunt)\b")


def _is_speaker(line: str) -> bool:
    return len(line) <= 30 and len(line.split()) <= 4 and bool(
        _SPEAKER_DOT.fullmatch(line) or _SPEAKER_CAPS.fullmatch(line))


def _paragraphs(text: str) -> Iterator[list[str]]:
    """Blank-line separated paragraphs, stage directions ([...]) and exits removed, lines stripped."""
    for para in re.split(r"\n\s*\n", text):
        para = re.sub(r"\[[^\]]*(\]|$)", "", para)  # a direction may run to the paragraph's end
        lines = [" ".join(line.split()) for line in para.split("\n")]
        lines = [line for line in lines if line and not _EXIT.match(line)]
        if lines:
            yield lines


def _play(text: str) -> list[list[Block]]:
    """Scenes of speeches; the cast list and everything before the first act is skipped."""
    sections: list[list[Block]] = []
    for lines in _paragraphs(text):
        if _SCENE.match(lines[0]) or (len(lines) == 1 and _PART.fullmatch(lines[0])):
            sections.append([])
        elif sections and _is_speaker(lines[0]) and len(lines) > 1:
            sections[-1].append(lines[1:])
        elif sections and sections[-1]:  # the same speech after a stage direction
            sections[-1][-1].extend(lines)
    return [s for s in sections if s]


def _poem(text: str) -> list[list[Block]]:
    """Poems (a numbered sonnet, or the whole work) of stanzas; titles in capitals skipped."""
    sections: list[list[Block]] = [[]]
    for lines in _paragraphs(text):
        if len(lines) == 1 and _ROMAN.fullmatch(lines[0]):
            sections.append([])
        elif not all(line.isupper() or line == "by William Shakespeare" for line in lines):
            sections[-1].append(lines)
    return [s for s in sections if s]


def _bible(text: str) -> list[list[Block]]:
    """Chapters of verses, each verse one line without its "chapter:verse" number."""
    chapters: dict[str, list[Block]] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(\d+):\d+ (.*)", line)
        if m:
            chapters.setdefault(m.group(1), []).append([m.group(2).strip()])
    return list(chapters.values())


def read_corpus(path: Path = CORPUS) -> list[Work]:
    works = []
    with lzma.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            if doc["source"] == "kjv":
                sections = _bible(doc["text"])
            else:
                play = _play(doc["text"])
                sections = play if sum(map(len, play)) >= 100 else _poem(doc["text"])
            works.append(Work(doc["title"], doc["source"], sections))
    return works


def split_work(work: Work, fraction: float = VALID_FRACTION) -> tuple[Work, Work]:
    """(train, valid): a block whose first line lies in the last `fraction` of the work's lines
    goes to valid. A section cut in two keeps its identity on both sides."""
    total = sum(len(b) for s in work.sections for b in s)
    cut, seen = total * (1 - fraction), 0
    train, valid = [], []
    for section in work.sections:
        parts: tuple[list[Block], list[Block]] = ([], [])
        for block in section:
            parts[seen >= cut].append(block)
            seen += len(block)
        train += [parts[0]] if parts[0] else []
        valid += [parts[1]] if parts[1] else []
    return Work(work.title, work.source, train), Work(work.title, work.source, valid)


def runs(work: Work) -> Iterator[tuple[int, list[str]]]:
    """(section index, lines) of each stretch of consecutive lines in one voice: a speech or a
    stanza; for the Bible a whole chapter (its verses are one continuous text)."""
    for si, section in enumerate(work.sections):
        if work.source == "kjv":
            yield si, [line for block in section for line in block]
        else:
            yield from ((si, block) for block in section)


def chunks(work: Work, rng: random.Random, lo: int, hi: int, sep: str = "\n") -> Iterator[tuple[int, str]]:
    """(section index, text) of consecutive, non-overlapping passages of lo..hi lines."""
    for si, lines in runs(work):
        i = 0
        while True:
            k = rng.randint(lo, hi)
            if i + lo > len(lines):
                break
            yield si, sep.join(lines[i:i + k])
            i += k


# ---------------------------------------------------------------- the tasks

Count = Callable[[str], int]
Example = dict


class Seen:
    """Inputs already used (within a split, and the train inputs when drawing valid)."""

    def __init__(self, keys: Iterable[str] = ()):
        self.keys = set(keys)

    @staticmethod
    def key(example: Example) -> str:
        return json.dumps({k: v for k, v in example.items() if k != "label"}, sort_keys=True)

    def add(self, example: Example) -> bool:
        key = self.key(example)
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


def _take(examples: Callable[[list[Example]], Iterator[Example | None]], n: int, seen: Seen,
          what: str) -> list[Example]:
    """The first n new examples of `examples(drawn)`, which sees what has been drawn so far (a
    label that alternates or follows a plan counts what was drawn, not what was tried; None is a
    candidate that failed)."""
    drawn: list[Example] = []
    for example in examples(drawn):
        if example is not None and seen.add(example):
            drawn.append(example)
            if len(drawn) == n:
                return drawn
    raise SystemExit(f"{what}: only {len(drawn)} of {n} examples can be drawn")


def _words(text: str) -> int:
    return len(text.split())


def authorship(works: list[Work], n: int, rng: random.Random, count: Count, seen: Seen) -> list[Example]:
    """A passage of 2-4 lines or verses -> "shakespeare" or "bible"; half each. A verse of the
    Bible is about three lines of Shakespeare long: so that neither the length nor the number
    of lines gives the answer away, the lines are joined by spaces and the passages are drawn
    in pairs, one of each source from the same 10-token length band."""
    bands: dict[str, dict[int, list[str]]] = {}
    for source in LABELS:
        cands = [text for w in works if w.source == source for _, text in chunks(w, rng, 2, 4, " ")]
        rng.shuffle(cands)
        bands[source] = {}
        for text in cands:
            if count(text) <= MAX_TEXT:
                bands[source].setdefault(count(text) // 10, []).append(text)
    shared = sorted(set.intersection(*(set(b) for b in bands.values())))

    def new(texts: list[str], label: str) -> Example | None:
        while texts:
            example = {"text": texts.pop(), "label": label}
            if seen.add(example):
                return example
        return None

    out: list[Example] = []
    while len(out) < n:  # one pair from each band in turn, while the band lasts
        before = len(out)
        for band in shared:
            pair = [new(bands[source][band], label) for source, label in LABELS.items()]
            if len(out) < n and all(pair):
                out += pair
        if len(out) == before:
            raise SystemExit(f"authorship: only {len(out)} of {n} examples can be drawn")
    rng.shuffle(out)
    return out


def _prefix(lines: list[str], limit: int, count: Count) -> str | None:
    """The longest run of whole leading lines within `limit` tokens (None if not even one)."""
    text = None
    for k in range(1, len(lines) + 1):
        candidate = "\n".join(lines[:k])
        if count(candidate) > limit:
            break
        text = candidate
    return text


def play(works: list[Work], n: int, rng: random.Random, count: Count, seen: Seen) -> list[Example]:
    """A speech (its first lines, up to MAX_TEXT tokens) -> which of PLAYS; equal shares."""
    out = []
    for title in PLAYS:
        (work,) = [w for w in works if w.title == title]
        speeches = [block for section in work.sections for block in section]
        rng.shuffle(speeches)
        texts = (_prefix(s, MAX_TEXT, count) for s in speeches)
        out += _take(lambda _: ({"text": t, "label": title} for t in texts if t and _words(t) >= MIN_WORDS),
                     n // len(PLAYS), seen, f"play/{title}")
    rng.shuffle(out)
    return out


def _pick(rng: random.Random, items: list, ok: Callable[[object], bool], tries: int = 200):
    """A random item that passes `ok`, or None after `tries` misses. Rejection sampling, so that
    only the items looked at are tokenized."""
    for _ in range(tries):
        item = rng.choice(items)
        if ok(item):
            return item
    return None


def _pair_ok(text: str, count: Count) -> bool:
    return _words(text) >= MIN_WORDS and count(text) <= MAX_PAIR


def next_sentence(works: list[Work], n: int, rng: random.Random, count: Count, seen: Seen) -> list[Example]:
    """Speech/stanza/verse A, then B: the block that follows A ("follows") or one from another
    work of the same source ("random"), half each within each source."""
    out = []
    for source in LABELS:
        ws = [w for w in works if w.source == source]
        blocks = [(wi, "\n".join(b)) for wi, w in enumerate(ws) for s in w.sections for b in s]
        pairs = [(wi, "\n".join(a), "\n".join(b)) for wi, w in enumerate(ws) for s in w.sections
                 for a, b in zip(s, s[1:])]
        rng.shuffle(pairs)

        def examples(drawn: list[Example]) -> Iterator[Example | None]:
            for wi, a, b in pairs:
                if not (_pair_ok(a, count) and _pair_ok(b, count)):
                    continue
                if len(drawn) % 2 == 0:
                    yield {"text_a": a, "text_b": b, "label": "follows"}
                else:
                    other = _pick(rng, blocks, lambda x: x[0] != wi and _pair_ok(x[1], count))
                    yield other and {"text_a": a, "text_b": other[1], "label": "random"}

        out += _take(examples, n // 2, seen, f"next_sentence/{source}")
    rng.shuffle(out)
    return out


SIMILARITY = (1.0, 0.5, 0.0)  # same scene/chapter/poem, same work, another work of the source


def same_book(works: list[Work], n: int, rng: random.Random, count: Count, seen: Seen) -> list[Example]:
    """Two passages of 2-3 lines -> 1.0 same section, 0.5 same work, 0.0 another work of the
    same source; a third each within each source."""
    out = []
    for source in LABELS:
        ws = [w for w in works if w.source == source]
        cands = [(wi, si, t) for wi, w in enumerate(ws) for si, t in chunks(w, rng, 2, 3)]
        by_work: dict[int, list[tuple[int, int, str]]] = {}
        by_section: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
        for c in cands:
            by_work.setdefault(c[0], []).append(c)
            by_section.setdefault(c[:2], []).append(c)
        for label in SIMILARITY:
            anchors = cands[:]
            rng.shuffle(anchors)

            def examples(_: list[Example]) -> Iterator[Example | None]:
                for wi, si, a in anchors:
                    if count(a) > MAX_PAIR:
                        continue
                    if label == 1.0:
                        pool, same = by_section[wi, si], lambda c: c[2] != a
                    elif label == 0.5:
                        pool, same = by_work[wi], lambda c: c[1] != si
                    else:
                        pool, same = cands, lambda c: c[0] != wi
                    b = _pick(rng, pool, lambda c: same(c) and count(c[2]) <= MAX_PAIR, tries=20)
                    yield b and {"text_a": a, "text_b": b[2], "label": label}

            out += _take(examples, n // 2 // len(SIMILARITY), seen, f"same_book/{source}/{label}")
    rng.shuffle(out)
    return out


def next_line(works: list[Work], n: int, rng: random.Random, count: Count, seen: Seen) -> list[Example]:
    """2-3 consecutive lines/verses, then four choices: the line that follows and three lines
    from elsewhere in the same work; the answer's index uniform over 0-3 (equal shares)."""
    out = []
    for source in LABELS:
        ws = [w for w in works if w.source == source]
        lines_of = [[x for _, lines in runs(w) for x in lines] for w in ws]
        cands = []
        for wi, w in enumerate(ws):
            for _, lines in runs(w):
                i = 0
                while True:
                    c = rng.randint(2, 3)
                    if i + c >= len(lines):
                        break
                    cands.append((wi, lines[i:i + c], lines[i + c]))
                    i += c + 1
        rng.shuffle(cands)

        def choice_ok(line: str) -> bool:
            return _words(line) >= 3 and count(line) <= MAX_CHOICE

        per = n // 2
        labels = [i % 4 for i in range(per)]
        rng.shuffle(labels)

        def examples(drawn: list[Example]) -> Iterator[Example | None]:
            for wi, context, answer in cands:
                text = "\n".join(context)
                if count(text) > MAX_CONTEXT or answer in context or not choice_ok(answer):
                    continue  # (a refrain: the answer already in the context)
                choices = [answer]
                for _ in range(3):
                    other = _pick(rng, lines_of[wi], lambda x: x not in choices and x not in context
                                  and choice_ok(x))
                    if other is None:
                        break
                    choices.append(other)
                if len(choices) < 4:
                    yield None
                    continue
                label = labels[len(drawn)]
                choices = choices[1:]
                choices.insert(label, answer)
                yield {"context": text, "choices": choices, "label": label}

        out += _take(examples, per, seen, f"next_line/{source}")
    rng.shuffle(out)
    return out


CORPUS_TASKS = {"authorship": authorship, "play": play, "next_sentence": next_sentence,
                "same_book": same_book, "next_line": next_line}


def demo_token_counter() -> Count:
    """Token counts in the demo model's vocabulary, the model these tasks are sized for."""
    from gpt2.loading import load_tokenizer

    tok = load_tokenizer("demo")
    return lru_cache(maxsize=None)(lambda text: len(tok.encode(text)))


def build_corpus_tasks(corpus: Path = CORPUS, count: Count | None = None) -> dict[str, bytes]:
    """{file name: JSONL bytes} of the five corpus tasks."""
    count = count or demo_token_counter()
    works = read_corpus(corpus)
    halves = [split_work(w) for w in works]
    train_works, valid_works = [t for t, _ in halves], [v for _, v in halves]
    files = {}
    for name, build in CORPUS_TASKS.items():
        n_train, n_valid = SIZES[name]
        seen = Seen()
        train = build(train_works, n_train, random.Random(f"{SEED}/{name}/train"), count, seen)
        valid = build(valid_works, n_valid, random.Random(f"{SEED}/{name}/valid"), count,
                      Seen(seen.keys))  # never an input that train has
        files[f"{name}.train.jsonl"] = jsonl(train)
        files[f"{name}.valid.jsonl"] = jsonl(valid)
    return files


# ---------------------------------------------------------------- chat (chatterbot-corpus)

def chatterbot_archive(directory: Path) -> Path:
    """Download chatterbot-corpus with pip (the one network step of the build)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(directory),
                    CHATTERBOT], check=True)
    (archive,) = [p for p in directory.iterdir() if p.name.startswith("chatterbot")]
    return archive


def read_chatterbot(archive: Path) -> list[tuple[str, list[list[str]]]]:
    """(file name, conversations) of each English YAML file, in name order, from the wheel or
    the sdist of chatterbot-corpus 1.3.3."""
    import yaml  # PyYAML: needed only here, to rebuild chat

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest not in CHATTERBOT_SHA256:
        raise SystemExit(f"{archive}: not PyPI's {CHATTERBOT} (sha256 {digest})")
    pattern = re.compile(r"(.*/)?chatterbot_corpus/data/english/([a-z_]+\.yml)")
    files: dict[str, bytes] = {}
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if m := pattern.fullmatch(name):
                    files[m.group(2)] = z.read(name)
    else:
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                if m := pattern.fullmatch(member.name):
                    files[m.group(2)] = t.extractfile(member).read()
    out = []
    for name in sorted(files):
        conversations = yaml.safe_load(files[name].decode("utf-8"))["conversations"]
        # one "conversation" of trivia.yml is a mis-indented string, not a list of turns
        out.append((name, [c for c in conversations if isinstance(c, list)]))
    return out


def conversations(turns: list[str], count: Count) -> Iterator[list[dict[str, str]]]:
    """Chatterbot's turns (user, bot, user, ...) as chat messages, cut between exchanges into
    conversations of at most MAX_CHAT tokens; an exchange longer than that is dropped."""
    messages: list[dict[str, str]] = []
    size = 0
    for user, bot in zip(turns[0::2], turns[1::2]):
        user, bot = str(user).strip(), str(bot).strip()
        n = count(user) + count(bot)
        if messages and size + n > MAX_CHAT:
            yield messages
            messages, size = [], 0
        if n <= MAX_CHAT and user and bot:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": bot}]
            size += n
    if messages:
        yield messages


def build_chat(archive: Path, count: Count | None = None) -> dict[str, bytes]:
    """{file name: JSONL bytes} of the chat task: the last 10% of each file's conversations are
    valid; repeated conversations are kept once."""
    count = count or demo_token_counter()
    train_seen = Seen()
    splits: tuple[list[Example], list[Example]] = ([], [])
    for _, convs in read_chatterbot(archive):
        cut = len(convs) * (1 - VALID_FRACTION)
        for i, turns in enumerate(convs):
            for messages in conversations(turns, count):
                splits[i >= cut].append({"messages": messages})
    train = [e for e in splits[0] if train_seen.add(e)]
    valid_seen = Seen(train_seen.keys)
    valid = [e for e in splits[1] if valid_seen.add(e)]
    for name, examples in (("train", train), ("valid", valid)):
        random.Random(f"{SEED}/chat/{name}").shuffle(examples)
    return {"chat.train.jsonl": jsonl(train), "chat.valid.jsonl": jsonl(valid)}


# ---------------------------------------------------------------- output

def jsonl(examples: list[Example]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--chatterbot", type=Path, help="chatterbot-corpus 1.3.3 wheel or sdist "
                        "(default: downloaded with pip)")
    args = parser.parse_args(argv)
    count = demo_token_counter()
    files = build_corpus_tasks(count=count)
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.chatterbot or chatterbot_archive(Path(tmp))
        files |= build_chat(archive, count)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items()):
        (args.out_dir / name).write_bytes(data)
        print(f"{args.out_dir / name}: {len(data.splitlines()):,} examples, {len(data):,} bytes")


if __name__ == "__main__":
    main()
