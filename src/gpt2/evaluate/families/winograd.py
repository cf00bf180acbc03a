"""The Winograd Schema Challenge (WSC273): which of two noun phrases a pronoun refers to.

Each option is substituted for the pronoun and the sentence is scored two ways
(Trinh & Le, 2018, as the paper's section 3.4 does):

    acc_full     the log-probability of the whole substituted sentence
    acc_partial  the log-probability of the words after the pronoun, given the sentence up to
                 and including the substituted option (lm-evaluation-harness's wsc273 way)

Before substitution, text and options are normalized as lm-evaluation-harness's wsc273 does
(tasks/wsc273/utils.py): double spaces in the text become single; an option gets "'s" when
the pronoun is possessive (my, his, her, our, their); an option's first word that is one of
A, An, The, She, He, It, They, My, His, Her, Their is lowercased unless the character two
before the pronoun is "." (the pronoun starts a sentence). Three corner cases are handled
where lm-eval's code slips, none of which changes an ordinary example: pronoun_loc is moved
back by the spaces removed before it (lm-eval keeps it, so its cut lands off by one); a
pronoun at the very start of the text starts a sentence (lm-eval reads text[-2] there); only
the first word is lowercased (lm-eval's str.replace also lowercases later copies of it).

Data: JSONL in the hub's winograd_wsc format: "text", "pronoun", "pronoun_loc" (character
offset of the pronoun), "options" (2 or more), "label" (index of the right option).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..data import read_jsonl
from ...errors import EvalDataError
from ..metrics import mean, mean_stderr
from ..types import EvalContext, Metric, Task

_FORMAT = "JSONL with text, pronoun, pronoun_loc, options, label (winograd_wsc format)"
# lm-evaluation-harness's wsc273 utils: upper_pronouns, and the possessive pronouns.
UPPER_WORDS = frozenset(["A", "An", "The", "She", "He", "It", "They", "My", "His", "Her", "Their"])
POSSESSIVE = frozenset(["my", "his", "her", "our", "their"])


def read_wsc(path: Path) -> list[dict]:
    docs = read_jsonl(path, required=["text", "pronoun", "pronoun_loc", "options", "label"])
    for i, d in enumerate(docs, 1):
        _check(d, f"{path}:{i}")
    return docs


def _check(d: dict, where: str) -> None:
    text, pron, loc, options, label = (d[k] for k in ("text", "pronoun", "pronoun_loc", "options", "label"))
    if not isinstance(text, str) or not isinstance(pron, str) or not pron or pron != pron.strip():
        raise EvalDataError(f"{where}: text and pronoun must be strings, the pronoun a word without spaces")
    if not isinstance(loc, int) or isinstance(loc, bool):
        raise EvalDataError(f"{where}: pronoun_loc must be an integer character offset, got {loc!r}")
    if loc < 0 or text[loc : loc + len(pron)] != pron:
        raise EvalDataError(f"{where}: text at pronoun_loc={loc} is not the pronoun {pron!r}")
    if not text[loc + len(pron):].strip():
        raise EvalDataError(f"{where}: nothing follows the pronoun; partial scoring needs the words after it")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise EvalDataError(f"{where}: options must be a list of 2 or more non-empty strings")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(options):
        raise EvalDataError(f"{where}: label must be an index of options, got {label!r}")


def normalize(doc: dict) -> dict:
    """The doc with lm-evaluation-harness's wsc273 normalization (see the module docstring)."""
    text, loc = doc["text"], doc["pronoun_loc"]
    new_loc = len(re.sub(" {2,}", " ", text[:loc]))  # no run of spaces straddles loc: text[loc] is the pronoun
    text = re.sub(" {2,}", " ", text)
    starts_sentence = new_loc < 2 or text[new_loc - 2] == "."
    options = []
    for option in doc["options"]:
        if doc["pronoun"].lower() in POSSESSIVE:
            option += "'s"
        first = option.split()[0]
        if not starts_sentence and first in UPPER_WORDS:
            i = option.index(first)
            option = option[:i] + first.lower() + option[i + len(first):]
        options.append(option)
    return doc | {"text": text, "pronoun_loc": new_loc, "options": options}


def substitute(doc: dict, option: str) -> tuple[str, str]:
    """(sentence up to and including the option, the rest of the sentence)."""
    loc = doc["pronoun_loc"]
    return doc["text"][:loc] + option, doc["text"][loc + len(doc["pronoun"]):]


def sentences(doc: dict) -> list[tuple[str, str]]:
    """(head, rest) of each option, after normalization: head + rest is the full sentence."""
    d = normalize(doc)
    return [substitute(d, option) for option in d["options"]]


def _run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    full, partial = [], []
    for d in docs:
        for head, rest in sentences(d):
            full.append(([], ctx.encode(head + rest)))
            partial.append(ctx.encode_pair(head, rest))
    sf = ctx.scorer.loglikelihood(full, desc="winograd (full)")
    sp = ctx.scorer.loglikelihood(partial, desc="winograd (partial)")
    acc_full, acc_partial = [], []
    i = 0
    for d in docs:
        k = len(d["options"])
        lf = [s.logprob for s in sf[i : i + k]]
        lp = [s.logprob for s in sp[i : i + k]]
        acc_full.append(float(max(range(k), key=lf.__getitem__) == d["label"]))
        acc_partial.append(float(max(range(k), key=lp.__getitem__) == d["label"]))
        i += k
    n = len(docs)
    return [
        Metric("acc_partial", mean(acc_partial), mean_stderr(acc_partial), n),
        Metric("acc_full", mean(acc_full), mean_stderr(acc_full), n),
    ]


TASKS = [Task(
    name="winograd", family="winograd",
    description="Winograd Schema Challenge (WSC273), full and partial scoring",
    run=_run, read=read_wsc, data_format=_FORMAT,
    hf=("ErnestSDavis/winograd_wsc", "wsc273", "test"),
    from_hf=lambda r: {k: r[k] for k in ("text", "pronoun", "pronoun_loc", "options", "label")},
)]
