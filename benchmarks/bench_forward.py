"""Model forward latency: ours vs transformers' GPT2LMHeadModel (sdpa attention).

Same weights (ours saved, theirs loaded from that directory), same threads, same input,
alternating runs in one process; prints the medians and the ratio (theirs / ours: > 1 means
ours is faster). Issue target: ours >= 1.0x for the gpt2 preset at 1 x 1024 tokens on CPU.

    python benchmarks/bench_forward.py                      # gpt2, 1 x 1024, CPU, fp32
    python benchmarks/bench_forward.py --preset gpt2-mini --repeats 10
    python benchmarks/bench_forward.py --device cuda --dtype bfloat16 --batch 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = p.parse_args()

    from transformers import GPT2LMHeadModel

    from gpt2 import GPT2, GPT2Config

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    ours = GPT2(GPT2Config.preset(args.preset))
    with tempfile.TemporaryDirectory() as d:
        ours.save_pretrained(d)
        theirs = GPT2LMHeadModel.from_pretrained(d, attn_implementation="sdpa")
    ours = ours.to(args.device, dtype).eval()
    theirs = theirs.to(args.device, dtype).eval()
    x = torch.randint(0, 50257, (args.batch, args.seq), device=args.device)

    with torch.inference_mode():
        diff = (ours(x).float() - theirs(x).logits.float()).abs().max().item()
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        times = interleaved({"ours": lambda: ours(x), "transformers": lambda: theirs(x).logits},
                            repeats=args.repeats, sync=sync)

    o, t = median(times["ours"]), median(times["transformers"])
    tokens = args.batch * args.seq
    print(f"# forward latency, {args.preset}, {args.batch} x {args.seq} tokens, {args.dtype}, {args.device}")
    print(f"# machine: {machine()}")
    print(f"# max |logits ours - transformers| = {diff:.2e}; {args.repeats} alternating repeats, medians")
    print("| model | median ms | tokens/s |")
    print("|---|---|---|")
    print(f"| ours | {o * 1e3:.1f} | {tokens / o:,.0f} |")
    print(f"| transformers GPT2LMHeadModel (sdpa) | {t * 1e3:.1f} | {tokens / t:,.0f} |")
    print(f"ratio (transformers / ours time): {t / o:.2f}x")


if __name__ == "__main__":
    main()
