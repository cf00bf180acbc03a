"""Language-model perplexity on text: WikiText-2/103, PTB, enwik8, text8, One Billion Word,
LAMBADA as a language-modelling set, and any text file.

The method is the paper's (section 3.1): detokenize the dataset with an invertible
detokenizer, score every BPE token once in windows of n_ctx tokens that slide by `stride`
(each window after the first conditions on the n_ctx - stride tokens before the ones it
scores), and normalize the summed negative log-likelihood by the dataset's ORIGINAL units:

    ppl              exp(NLL / original tokens) — "perplexity per original token", as OpenAI
                     explained in openai/gpt-2 issue 78; the original tokens are the dataset's
                     whitespace-separated tokens plus one end-of-line token per line, the last
                     line too when the file does not end in a newline (the <eos> that
                     word-level language modelling appends to every line it reads)
    bits_per_byte    NLL / ln 2 / original bytes (enwik8)
    bits_per_char    NLL / ln 2 / characters (text8)
    ppl_bpe          exp(NLL / BPE tokens), next to them

enwik8 and text8 are scored byte for byte: the file's bytes are decoded as UTF-8, and a byte
that is not valid UTF-8 (none expected; cutting a file inside a character makes some) is
scored as its own byte token instead of being replaced, so the model scores exactly the bytes
that bits_per_byte divides by; their number is reported as invalid_utf8_bytes.

`wikitext` is lm-evaluation-harness's task of that name, kept number for number: documents
scored separately, its (non-invertible) detokenizer, disjoint windows (stride = n_ctx), and
its word_perplexity (words = len(re.split(r"\\s+", page)) of the original page),
byte_perplexity and bits_per_byte.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data import read_jsonl, read_text
from ..detokenize import ptb_detokenize, wikitext_detokenize, wikitext_detokenize_harness
from ...errors import EvalDataError
from ..metrics import ratio_stderr
from ..options import flag, stride
from ..types import EvalContext, Metric, Task

_HEADING = re.compile(r"^ = [^=].* = $")


def split_wikitext_documents(text: str) -> list[str]:
    """WikiText's raw/tokens file as articles: a new one at each top-level heading
    (" = Title = "), each article keeping its lines and their newlines."""
    docs: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if _HEADING.match(line.rstrip("\n")) or not docs:
            docs.append([])
        docs[-1].append(line)
    return ["".join(d) for d in docs]


def _read_pages(path: Path) -> list[dict]:
    """JSONL with a "page" (lm-eval's wikitext_document_level) or "text" field per document,
    or a raw WikiText file (wiki.test.raw / wiki.test.tokens) split into articles."""
    if path.suffix in (".jsonl", ".json"):
        docs = read_jsonl(path)
        for i, d in enumerate(docs, 1):
            if "page" not in d and "text" not in d:
                raise EvalDataError(f"{path}:{i}: each line needs a \"page\" or \"text\" field")
        return [{"page": d.get("page", d.get("text"))} for d in docs]
    return [{"page": p} for p in split_wikitext_documents(read_text(path))]


def _read_lines_file(path: Path) -> list[dict]:
    """A text file as one document (PTB, One Billion Word, any text); JSONL "text" fields too."""
    if path.suffix in (".jsonl", ".json"):
        return [{"page": d["text"]} for d in read_jsonl(path, required=["text"])]
    return [{"page": read_text(path)}]


def _read_bytes_file(path: Path) -> list[dict]:
    """enwik8 / text8: the file's bytes as text, each invalid UTF-8 byte kept as a lone
    surrogate (errors="surrogateescape"), so that the text still holds every byte."""
    return [{"page": path.read_bytes().decode("utf-8", errors="surrogateescape")}]


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an invalid byte under surrogateescape


def _n_bytes(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogateescape"))


def _n_lines(text: str) -> int:
    """Lines as `for line in file` reads them: a last line without its newline counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _count_original_tokens(text: str) -> int:
    return len(text.split()) + _n_lines(text)


def _join(pages: list[str]) -> str:
    """Documents as one stream, a newline after each that lacks one (no words glued together)."""
    return "".join(p if p.endswith("\n") else p + "\n" for p in pages[:-1]) + pages[-1]


def encode_exact(ctx: EvalContext, text: str) -> list[int]:
    """Token ids whose bytes are exactly the text's: the BPE on each valid run, and each invalid
    byte (a surrogateescape character) as its own byte token."""
    ids: list[int] = []
    start = 0
    for m in _ESCAPED_BYTE.finditer(text):
        if m.start() > start:
            ids.extend(ctx.encode(text[start : m.start()]))
        ids.append(ctx.tokenizer.encoding.encode_single_token(bytes([ord(m.group()) - 0xDC00])))
        start = m.end()
    if start < len(text):
        ids.extend(ctx.encode(text[start:]))
    return ids


@dataclass(frozen=True)
class _Corpus:
    name: str
    description: str
    detokenize: Callable[[str], str]
    unit: str  # "token", "byte" or "char": what the headline metric normalizes by
    read: Callable[[Path], list[dict]]
    data_format: str
    hf: tuple[str, str | None, str] | None = None
    from_hf: Callable[[dict], dict] | None = None
    join: bool = True  # score the documents as one stream (the whole test file)


def _run_paper(corpus: _Corpus) -> Callable[[EvalContext, list[dict]], list[Metric]]:
    def run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
        if ctx.settings["stride"] is None:  # checked to be in [1, n_ctx] otherwise
            ctx.settings["stride"] = ctx.model.config.n_ctx // 2  # the report shows what ran
        stride = ctx.settings["stride"]
        pages = [d["page"] for d in docs]
        if corpus.join and ctx.settings["join"]:
            pages = [_join(pages)]
        n_bytes = [_n_bytes(p) for p in pages]
        detok = [corpus.detokenize(p) if ctx.settings["detokenize"] else p for p in pages]
        if corpus.unit in ("byte", "char"):
            ids = [encode_exact(ctx, t) for t in detok]
        else:
            ids = _encode_all(ctx, detok)
        scores = ctx.scorer.rolling(ids, stride=stride, desc=corpus.name)
        nll = [-s.logprob for s in scores]
        n_bpe = [s.n_tokens for s in scores]
        metrics = []
        if corpus.unit == "token":
            units = [_count_original_tokens(p) for p in pages]
            metrics.append(_ppl("ppl", nll, units))
        elif corpus.unit == "byte":
            metrics.append(_bits("bits_per_byte", nll, n_bytes))
        elif corpus.unit == "char":
            metrics.append(_bits("bits_per_char", nll, [len(p) for p in pages]))
        elif corpus.unit == "word":
            metrics.append(_ppl("ppl_word", nll, [len(p.split()) for p in pages]))
        if corpus.unit != "byte":
            metrics.append(_bits("bits_per_byte", nll, n_bytes))
        metrics.append(_ppl("ppl_bpe", nll, n_bpe))
        if corpus.unit in ("byte", "char"):
            invalid = sum(len(_ESCAPED_BYTE.findall(p)) for p in pages)
            metrics.append(Metric("invalid_utf8_bytes", float(invalid), None, sum(n_bytes),
                                  higher_is_better=False))
        return metrics

    return run


def _ppl(name: str, nll: list[float], units: list[int]) -> Metric:
    total = sum(units)
    value = math.exp(math.fsum(nll) / total) if total else float("nan")
    se = value * ratio_stderr(nll, units) if len(nll) > 1 else None
    return Metric(name, value, se, total, higher_is_better=False)


def _bits(name: str, nll: list[float], units: list[int]) -> Metric:
    total = sum(units)
    value = math.fsum(nll) / total / math.log(2) if total else float("nan")
    se = ratio_stderr(nll, units) / math.log(2) if len(nll) > 1 else None
    return Metric(name, value, se, total, higher_is_better=False)


def _encode_all(ctx: EvalContext, texts: list[str]) -> list[list[int]]:
    enc = getattr(ctx.tokenizer, "encode_batch", None)
    if enc is not None and len(texts) > 1:
        return [list(t) for t in enc(texts)]
    return [ctx.encode(t) for t in texts]


def _run_harness_wikitext(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
    """lm-evaluation-harness's `wikitext`: per document, its detokenizer, disjoint windows."""
    pages = [d["page"] for d in docs]
    ids = _encode_all(ctx, [wikitext_detokenize_harness(p) for p in pages])
    scores = ctx.scorer.rolling(ids, stride=ctx.model.config.n_ctx, desc="wikitext")
    nll = [-s.logprob for s in scores]
    words = [len(re.split(r"\s+", p)) for p in pages]
    n_bytes = [len(p.encode("utf-8")) for p in pages]
    byte_ppl = _ppl("byte_perplexity", nll, n_bytes)
    return [
        _ppl("word_perplexity", nll, words),
        byte_ppl,
        _bits("bits_per_byte", nll, n_bytes),
        _ppl("ppl_bpe", nll, [s.n_tokens for s in scores]),
    ]


_WIKI_FORMAT = 'JSONL with a "page" field per article, or wiki.test.tokens / wiki.test.raw'
_CORPORA = [
    _Corpus("wikitext2", "WikiText-2 test, paper-style (invertible detokenizer, per original token)",
            wikitext_detokenize, "token", _read_pages, _WIKI_FORMAT,
            ("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test")),
    _Corpus("wikitext103", "WikiText-103 test, paper-style (same test text as WikiText-2's larger sibling)",
            wikitext_detokenize, "token", _read_pages, _WIKI_FORMAT,
            ("EleutherAI/wikitext_document_level", "wikitext-103-raw-v1", "test")),
    _Corpus("ptb", "Penn Treebank (Mikolov's ptb.test.txt), paper-style; not redistributable: --data",
            ptb_detokenize, "token", _read_lines_file, "ptb.test.txt (one sentence per line)",
            ("ptb_text_only", "penn_treebank", "test"),
            lambda r: {"page": r["sentence"] + "\n"}),
    _Corpus("enwik8", "enwik8 test (the last 5M bytes), bits per byte",
            lambda t: t, "byte", _read_bytes_file, "the test bytes of enwik8 (a file)"),
    _Corpus("text8", "text8 test (the last 5M characters), bits per character",
            lambda t: t, "char", _read_bytes_file, "the test characters of text8 (a file)"),
    _Corpus("1bw", "One Billion Word held-out sentences, per original token",
            wikitext_detokenize, "token", _read_lines_file,
            "news.en.heldout-00000-of-00050 (one tokenized sentence per line)"),
    _Corpus("lambada_lm", "LAMBADA passages as language modelling, per word",
            lambda t: t, "word", lambda p: [{"page": d["text"] + "\n"} for d in read_jsonl(p, ["text"])],
            'JSONL with a "text" field per passage (lambada_test.jsonl)',
            ("EleutherAI/lambada_openai", "default", "test"), lambda r: {"page": r["text"] + "\n"}),
    _Corpus("text", "any text file: per BPE token, per whitespace word, bits per byte",
            lambda t: t, "word", _read_lines_file, "a UTF-8 text file (or JSONL with \"text\")",
            join=True),
]

TASKS = [
    Task(
        name=_c.name, family="perplexity", description=_c.description, run=_run_paper(_c),
        read=_c.read, data_format=_c.data_format, hf=_c.hf, from_hf=_c.from_hf,
        settings={"stride": stride(), "detokenize": flag(True), "join": flag(_c.join)},
    )
    for _c in _CORPORA
] + [Task(
    name="wikitext", family="perplexity",
    description="lm-evaluation-harness's wikitext: word/byte perplexity, bits per byte",
    run=_run_harness_wikitext, read=_read_pages, data_format=_WIKI_FORMAT,
    hf=("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test"),
)]
