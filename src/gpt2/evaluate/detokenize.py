"""Detokenizers that undo the preprocessing of tokenized language-modelling benchmarks.

GPT-2 reads raw text, while WikiText and Penn Treebank ship tokenized text ("do n't",
"3 @.@ 5", "( like this )"). The paper (section 3.1) ran "invertible de-tokenizers to remove
as many of these tokenization / pre-processing artifacts as possible"; because they are
invertible, the log-probability of the detokenized text is still a log-probability of the
original dataset, and perplexity can be normalized by the original token count.

    wikitext_detokenize / wikitext_retokenize   paper-style, invertible: for text in WikiText's
                                                token conventions, retokenize(detokenize(x)) == x
    ptb_detokenize / ptb_retokenize             the same for Mikolov's Penn Treebank files
    wikitext_detokenize_harness                 lm-evaluation-harness's wikitext rules, verbatim
                                                (not invertible: it maps " N " to " 1 "); used by
                                                the `wikitext` task so that numbers agree with it
    cbt_detokenize                              light clean-up of the Children's Book Test

Detokenization works on space-separated tokens, line by line: it only removes spaces between
tokens (and writes WikiText's escaped "@-@" / "@,@" / "@.@" as "-" / "," / "."), so the inverse
is a tokenizer that splits each space-separated chunk back into tokens. Tokens that contain
those characters themselves (abbreviations such as "U.S." or "St.") are kept whole by the
inverse: dotted abbreviations and the short list in NONBREAKING are never split.
"""

from __future__ import annotations

import re

__all__ = [
    "wikitext_detokenize",
    "wikitext_retokenize",
    "wikitext_detokenize_harness",
    "ptb_detokenize",
    "ptb_retokenize",
    "cbt_detokenize",
    "DETOKENIZERS",
]

# Tokens glued to the token before them, and to the token after them.
_CLOSERS = (".", ",", ";", ":", "!", "?", ")", "]", "}", "'s", "n't", "'re", "'ve", "'ll", "'m", "'d")
_OPENERS = ("(", "[", "{")
_ESCAPED = {"@-@": "-", "@,@": ",", "@.@": "."}
# Tokens that end in "." yet are one token (the inverse does not split their dot).
NONBREAKING = frozenset(
    "Mr. Mrs. Ms. Dr. Prof. St. Jr. Sr. Mt. Ft. vs. etc. Co. Corp. Inc. Ltd. No. Nos. Vol. "
    "Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct. Nov. Dec. Gen. Col. Lt. Sgt. Capt. "
    "Rev. Gov. Sen. Rep. Hon. ed. eds. op. cit. c. ca. pp. p. v.".split()
)
_DOTTED = re.compile(r"[A-Za-z]\.[A-Za-z]")  # U.S., a.m., Ph.D.
_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'m", "'d")


# --------------------------------------------------------------------------- WikiText


def wikitext_detokenize(text: str) -> str:
    """WikiText's tokenized text as ordinary text (invertible; see wikitext_retokenize)."""
    return "\n".join(_wiki_line(line) for line in text.split("\n"))


def _wiki_line(line: str) -> str:
    tokens = line.split(" ")
    # drop[i]: remove the space between tokens[i-1] and tokens[i] (both non-empty).
    drop = [False] * len(tokens)
    quote_open = False
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i > 0 else ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _ESCAPED or tok in _CLOSERS or tok in _OPENERS or tok in ('"', "="):
            pass
        else:
            continue
        if tok in _ESCAPED and prev and nxt:
            drop[i] = drop[i + 1] = True
        elif tok in _CLOSERS and prev:
            drop[i] = True
        elif tok in _OPENERS and nxt:
            drop[i + 1] = True
        elif tok == '"':
            if quote_open and prev:
                drop[i] = True
            elif not quote_open and nxt:
                drop[i + 1] = True
            quote_open = not quote_open
        elif tok == "=" and prev == "=":
            drop[i] = True  # "= = =" -> "==="
    parts = [tokens[0]] if tokens else []
    for i in range(1, len(tokens)):
        tok = tokens[i]
        if tok in _ESCAPED and drop[i] and i + 1 < len(tokens) and drop[i + 1]:
            tok = _ESCAPED[tok]
        parts.append(("" if drop[i] else " ") + tok)
    return "".join(parts)


def wikitext_retokenize(text: str) -> str:
    """The inverse of wikitext_detokenize: WikiText's token conventions back."""
    return "\n".join(_retok_line(line, wiki=True) for line in text.split("\n"))


def _retok_line(line: str, wiki: bool) -> str:
    return " ".join(" ".join(_split_chunk(c, wiki)) if c else c for c in line.split(" "))


def _split_chunk(chunk: str, wiki: bool) -> list[str]:
    """Split one space-free chunk of detokenized text into the original tokens."""
    if not wiki:
        return _split_clitics(chunk)
    if set(chunk) == {"="}:  # "===" -> "= = ="
        return list(chunk)
    head: list[str] = []
    tail: list[str] = []
    while len(chunk) > 1 and chunk[0] in '([{"':
        head.append(chunk[0])
        chunk = chunk[1:]
    while len(chunk) > 1:
        if set(chunk) == {"."}:  # an ellipsis token
            break
        if chunk.endswith("..") and _keeps_dot(chunk[:-1]):  # "U.S." + "."
            tail.insert(0, ".")
            chunk = chunk[:-1]
            break
        if _keeps_dot(chunk):
            break
        for closer in ("n't", "'s", "'re", "'ve", "'ll", "'m", "'d", ".", ",", ";", ":", "!", "?", ")", "]", "}", '"'):
            if chunk.endswith(closer) and len(chunk) > len(closer):
                tail.insert(0, closer)
                chunk = chunk[: -len(closer)]
                break
        else:
            break
    middle = re.sub(r"(?<=\d)([.,])(?=\d)", r" @\1@ ", chunk)
    middle = re.sub(r"(?<=[^\s\-])-(?=[^\s\-])", " @-@ ", middle)
    return head + middle.split(" ") + tail


def _keeps_dot(chunk: str) -> bool:
    """A token whose final "." is its own: "Mr.", "U.S.", "a.m."."""
    return chunk in NONBREAKING or (chunk.endswith(".") and _DOTTED.search(chunk) is not None)


def wikitext_detokenize_harness(text: str) -> str:
    """lm-evaluation-harness's wikitext_detokenizer (tasks/wikitext/preprocess_wikitext.py),
    rule for rule, so that the `wikitext` task scores the same text as lm-eval."""
    string = text
    # contractions
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    # number separators
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    # punctuation
    string = string.replace(" : ", ": ")
    string = string.replace(" ; ", "; ")
    string = string.replace(" . ", ". ")
    string = string.replace(" ! ", "! ")
    string = string.replace(" ? ", "? ")
    string = string.replace(" , ", ", ")
    # double brackets
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    # miscellaneous
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string


# --------------------------------------------------------------------------- Penn Treebank


def ptb_detokenize(text: str) -> str:
    """Mikolov's Penn Treebank text (lowercase, no punctuation, numbers as N, <unk>) with its
    split contractions joined again: "do n't" -> "don't", "it 's" -> "it's" (invertible)."""
    out = []
    for line in text.split("\n"):
        tokens = line.split(" ")
        words: list[str] = []
        for i, tok in enumerate(tokens):
            if tok in _CLITICS and words and words[-1] not in ("", *_CLITICS) and i > 0:
                words[-1] += tok
            else:
                words.append(tok)
        out.append(" ".join(words))
    return "\n".join(out)


def ptb_retokenize(text: str) -> str:
    """The inverse of ptb_detokenize."""
    return "\n".join(_retok_line(line, wiki=False) for line in text.split("\n"))


def _split_clitics(chunk: str) -> list[str]:
    tail: list[str] = []
    while True:
        for clitic in _CLITICS:
            if chunk.endswith(clitic) and len(chunk) > len(clitic):
                tail.insert(0, clitic)
                chunk = chunk[: -len(clitic)]
                break
        else:
            return [chunk] + tail


# --------------------------------------------------------------------------- Children's Book Test


def cbt_detokenize(text: str) -> str:
    """The Children's Book Test's Gutenberg-style tokens as text: `` and '' become ",
    punctuation and clitics are joined to the word before them (one-way)."""
    text = text.replace("``", '"').replace("''", '"')
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'m|'d)\b", r"\1", text)
    text = re.sub(r" ([.,;:!?)\]])", r"\1", text)
    text = re.sub(r"([(\[]) ", r"\1", text)
    text = re.sub(r'"\s*([^"]*?)\s*"', r'"\1"', text)
    return text


DETOKENIZERS = {
    "wikitext": wikitext_detokenize,
    "wikitext_harness": wikitext_detokenize_harness,
    "ptb": ptb_detokenize,
    "cbt": cbt_detokenize,
    "none": lambda text: text,
}
