"""Translation, the paper's way (section 3.7): a context of example pairs
"english sentence = french sentence" (one per line), then "source sentence =", greedy
decoding (stopped at the first newline), the first generated sentence as the translation (the
sentence splitter summarization uses: metrics.first_sentences); corpus BLEU through sacrebleu
(its default 13a tokenization).

The first `shots` examples of the data are the context pairs and are not scored.
Data: JSONL with "en" and "fr" (or the hub's {"translation": {"en": ..., "fr": ...}}).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UsageError
from ..data import read_jsonl
from ...errors import EvalDataError
from ..generation import generate
from ..metrics import bleu, first_sentences
from ..options import max_new_tokens, shots
from ..types import EvalContext, Metric, Task


def _read(path: Path) -> list[dict]:
    out = []
    for i, d in enumerate(read_jsonl(path), 1):
        pair = d.get("translation", d)
        if not isinstance(pair, dict) or "en" not in pair or "fr" not in pair:
            raise EvalDataError(f"{path}:{i}: expected \"en\" and \"fr\" fields")
        out.append({"en": pair["en"], "fr": pair["fr"]})
    return out


def prompt_for(shots: list[dict], source: str, src: str, tgt: str) -> str:
    context = "".join(f"{d[src]} = {d[tgt]}\n" for d in shots)
    return f"{context}{source} ="


def _runner(src: str, tgt: str):
    def run(ctx: EvalContext, docs: list[dict]) -> list[Metric]:
        k = ctx.settings["shots"]
        if not 0 <= k < len(docs):
            raise UsageError(f"shots={k} leaves no examples to score among {len(docs)}")
        shots, rest = docs[:k], docs[k:]
        prompts = [prompt_for(shots, d[src], src, tgt) for d in rest]
        outs = generate(ctx, prompts, max_new_tokens=ctx.settings["max_new_tokens"], stop=["\n"],
                        desc=f"wmt14_{src}_{tgt}")
        hyps = [first_sentences(o, 1) for o in outs]
        return [Metric("bleu", bleu(hyps, [d[tgt] for d in rest]), None, len(rest))]

    return run


TASKS = [
    Task(
        name=f"wmt14_{_src}_{_tgt}", family="translation",
        description=f"WMT14 {_src}->{_tgt} (test): 'sentence = sentence' pairs, greedy, BLEU",
        run=_runner(_src, _tgt), read=_read, data_format="JSONL with en, fr",
        hf=("wmt/wmt14", "fr-en", "test"),
        from_hf=lambda r: {"en": r["translation"]["en"], "fr": r["translation"]["fr"]},
        settings={"shots": shots(5), "max_new_tokens": max_new_tokens(64)},
    )
    for _src, _tgt in (("en", "fr"), ("fr", "en"))
]
