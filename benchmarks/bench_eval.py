"""Evaluation throughput: scored tokens/s of gpt2.evaluate's Scorer vs lm-evaluation-harness's
HF backend (HFLM), on the same checkpoint and the same requests, alternating in one process.

Two workloads:
  perplexity       loglikelihood_rolling over documents of varied lengths (disjoint n_ctx
                   windows, as lm-eval's wikitext); scored tokens = every token
  multiple choice  4 endings per question, HellaSwag-shaped (a ~60-token context, ~20-token
                   endings); scored tokens = the endings' tokens

The same numbers come out of both (checked on every run); the ratio ours / theirs is the
speed-up (issue target: >= 2x). lm-eval runs with the same --batch-size (and, for reference,
with its default batch size 1). Random weights: speed does not depend on them.

    python benchmarks/bench_eval.py                          # gpt2-mini, CPU
    python benchmarks/bench_eval.py --preset gpt2 --docs 16 --questions 64
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("the of and to in a is was for on that with as by at from his it an were are which this be "
         "lighthouse keeper harbour storm village river mill winter garden tower light island coast "
         "built stone cottage war museum lens north south engineer family novel critics story").split()


def make_text(rng: random.Random, n_words: int) -> str:
    out = []
    for i in range(n_words):
        w = rng.choice(WORDS)
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if rng.random() < 0.08:
            out[-1] += "."
    return " ".join(out) + "."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2-mini")
    p.add_argument("--docs", type=int, default=24, help="perplexity documents")
    p.add_argument("--questions", type=int, default=96, help="multiple-choice questions")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-bs1", action="store_true", help="skip lm-eval at batch size 1")
    args = p.parse_args()

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from gpt2 import GPT2, GPT2Config
    from gpt2.evaluate.scoring import Scorer
    from gpt2.tokenizer import Tokenizer

    torch.manual_seed(0)
    rng = random.Random(0)
    tok = Tokenizer.from_pretrained("gpt2")
    tmp = tempfile.TemporaryDirectory()
    GPT2(GPT2Config.preset(args.preset)).save_pretrained(tmp.name)
    tok.save_pretrained(tmp.name)
    ours_model = GPT2.from_pretrained(tmp.name).eval()
    theirs = HFLM(pretrained=tmp.name, device="cpu", batch_size=args.batch_size)
    theirs1 = None if args.skip_bs1 else HFLM(pretrained=theirs.model, tokenizer=theirs.tokenizer,
                                               device="cpu", batch_size=1)
    scorer = Scorer(ours_model, batch_size=args.batch_size)

    # --- perplexity: documents of 100 .. 1500 words (some span several windows)
    docs = [make_text(rng, rng.randint(100, 1500)) for _ in range(args.docs)]
    doc_ids = [tok.encode(d) for d in docs]
    ppl_tokens = sum(len(d) for d in doc_ids)
    roll_reqs = [Instance("loglikelihood_rolling", {}, (d,), i) for i, d in enumerate(docs)]

    # --- multiple choice: unique contexts (a question number), 4 endings each
    mc_pairs = []
    for q in range(args.questions):
        ctx = f"Question {q}. " + make_text(rng, rng.randint(35, 60))
        for _ in range(4):
            mc_pairs.append((ctx, " " + make_text(rng, rng.randint(10, 22))))
    mc_reqs = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(mc_pairs)]

    def encode_pair(ctx: str, cont: str) -> tuple[list[int], list[int]]:
        whole, c = tok.encode(ctx + cont), tok.encode(ctx)
        return c, whole[len(c):]

    mc_ids = [encode_pair(*pair) for pair in mc_pairs]
    mc_tokens = sum(len(c) for _, c in mc_ids)

    # Same numbers (checked once, outside the timing).
    a = [s.logprob for s in scorer.rolling(doc_ids)]
    b = theirs.loglikelihood_rolling(roll_reqs, disable_tqdm=True)
    assert max(abs(x - y) / abs(y) for x, y in zip(a, b)) < 1e-4, "perplexity disagrees"
    a = [s.logprob for s in scorer.loglikelihood(mc_ids)]
    b = [x for x, _ in theirs.loglikelihood(mc_reqs, disable_tqdm=True)]
    assert max(abs(x - y) / abs(y) for x, y in zip(a, b)) < 1e-4, "multiple choice disagrees"

    print(f"machine: {machine()}")
    print(f"model: {args.preset} (random weights), n_ctx {ours_model.config.n_ctx}, batch size {args.batch_size}")
    for name, n_tokens, fns in [
        ("perplexity", ppl_tokens, {
            "ours": lambda: scorer.rolling(doc_ids),
            "lm-eval": lambda: theirs.loglikelihood_rolling(roll_reqs, disable_tqdm=True),
            **({} if theirs1 is None else
               {"lm-eval bs1": lambda: theirs1.loglikelihood_rolling(roll_reqs, disable_tqdm=True)}),
        }),
        ("multiple choice", mc_tokens, {
            "ours": lambda: scorer.loglikelihood(mc_ids),
            "lm-eval": lambda: theirs.loglikelihood(mc_reqs, disable_tqdm=True),
            **({} if theirs1 is None else
               {"lm-eval bs1": lambda: theirs1.loglikelihood(mc_reqs, disable_tqdm=True)}),
        }),
    ]:
        times = interleaved(fns, repeats=args.repeats, warmup=1)
        ours_tps = n_tokens / median(times["ours"])
        line = [f"{name:<16} {n_tokens:>7,} scored tokens   ours {ours_tps:>9,.0f} tok/s"]
        for peer in fns:
            if peer == "ours":
                continue
            tps = n_tokens / median(times[peer])
            line.append(f"{peer} {tps:>9,.0f} tok/s ({ours_tps / tps:.2f}x)")
        print("   ".join(line))
    tmp.cleanup()


if __name__ == "__main__":
    main()
