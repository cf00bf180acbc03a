"""Greedy decoding speed: ours (gpt2.generation) vs transformers' generate with its KV cache.

Same random weights (ours saved, theirs loaded from that directory), same threads, same
prompts, alternating runs in one process; medians. Also: time per token against position
(flat = no quadratic recompute), peak memory, and on CUDA the fraction of the memory-bandwidth
limit reached at batch 1 (bytes of weights read per token / measured copy bandwidth), on CPU too:
there, batch-1 decoding of fp32 weights is bound by memory bandwidth, which caps any speed-up.
Issue targets: CPU, gpt2 preset, batch 1: ours >= 1.3x transformers; CUDA batch 1 >= 50% of
the bandwidth limit.

    python benchmarks/bench_generate.py                                   # CPU: batch 1 and 8, fp32
    python benchmarks/bench_generate.py --device cuda --dtype bfloat16 --batches 1,32
    python benchmarks/bench_generate.py --device cuda --dtype bfloat16 --batches 1,32 --compile
    python benchmarks/bench_generate.py --preset gpt2-mini --new 64 --repeats 2   # a quick look
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

EOT = 50256


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--batches", default=None, help="comma-separated (default: 1,8 on CPU, 1,32 on CUDA)")
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens (default 32)")
    p.add_argument("--new", type=int, default=256, help="new tokens (default 256)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                   help="default float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (dynamic shapes)")
    p.add_argument("--no-transformers", action="store_true", help="time ours only")
    p.add_argument("--positions", type=int, default=None,
                   help="decode to this length for the time-per-position table (default n_ctx; 0 = skip)")
    args = p.parse_args()

    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from gpt2 import GPT2, GPT2Config
    from gpt2.generation import SamplingOptions, decode_tokens

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    batches = [int(b) for b in (args.batches or ("1,32" if cuda else "1,8")).split(",")]
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    torch.manual_seed(0)
    ours = GPT2(GPT2Config.preset(args.preset))
    theirs = None
    if not args.no_transformers:
        with tempfile.TemporaryDirectory() as d:
            ours.save_pretrained(d)
            theirs = GPT2LMHeadModel.from_pretrained(d, attn_implementation="sdpa")
        theirs = theirs.to(args.device, dtype).eval()
    ours = ours.to(args.device, dtype).eval()
    decoder = ours
    if args.compile:
        decoder = torch.compile(ours, dynamic=True)

    greedy = SamplingOptions(max_new_tokens=args.new, temperature=0, stop_token_ids=())

    def run_ours(prompts: list[list[int]]) -> list[list[int]]:
        steps = list(decode_tokens(decoder, prompts, greedy))  # type: ignore[arg-type]
        return [list(r) for r in zip(*steps)]

    def run_theirs(x: torch.Tensor) -> list[list[int]]:
        out = theirs.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                              max_new_tokens=args.new, min_new_tokens=args.new,
                              pad_token_id=EOT, eos_token_id=None)
        return out[:, x.shape[1]:].tolist()

    print(f"# greedy decoding, {args.preset}, {args.prompt}-token prompts, {args.new} new tokens, "
          f"{str(dtype).removeprefix('torch.')}, {args.device}{', torch.compile' if args.compile else ''}")
    print(f"# machine: {machine()}")
    print(f"# {args.repeats} alternating repeats per batch size, medians; tokens/s = batch x new tokens / time")
    print("| batch | ours tokens/s | transformers tokens/s | ours / transformers | same tokens | peak memory ours |")
    print("|---|---|---|---|---|---|")
    per_token_b1 = per_token_theirs_b1 = None
    g = torch.Generator().manual_seed(0)
    for batch in batches:
        x = torch.randint(0, EOT, (batch, args.prompt), generator=g)
        prompts = x.tolist()
        xd = x.to(args.device)
        fns = {"ours": lambda: run_ours(prompts)}
        if theirs is not None:
            fns["transformers"] = lambda: run_theirs(xd)
        with torch.inference_mode():
            same = "-"
            if theirs is not None:
                same = "yes" if run_ours(prompts) == run_theirs(xd) else "NO"
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            times = interleaved(fns, repeats=args.repeats, sync=sync)
        memory = _peak_memory(cuda)
        o = median(times["ours"])
        t = median(times["transformers"]) if theirs is not None else float("nan")
        tokens = batch * args.new
        print(f"| {batch} | {tokens / o:,.1f} | {tokens / t:,.1f} | {t / o:.2f}x | {same} | {memory} |")
        if batch == 1:
            per_token_b1 = o / args.new
            per_token_theirs_b1 = t / args.new if theirs is not None else None

    positions = ours.config.n_ctx if args.positions is None else args.positions
    if positions:
        _position_table(decoder, args.prompt, positions, sync)
    if per_token_b1 is not None:
        _bandwidth(ours, per_token_b1, per_token_theirs_b1, args.device, sync)


def _peak_memory(cuda: bool) -> str:
    if cuda:
        return f"{torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB allocated"
    # ru_maxrss is KiB on Linux; the process holds both models, so this bounds ours from above.
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB process RSS"


def _position_table(model, prompt: int, length: int, sync) -> None:
    """Milliseconds per decoding step, batch 1, by position: flat means no recompute."""
    from gpt2.generation import SamplingOptions, decode_tokens

    new = length - prompt
    options = SamplingOptions(max_new_tokens=new, temperature=0, stop_token_ids=())
    x = torch.randint(0, EOT, (1, prompt), generator=torch.Generator().manual_seed(1)).tolist()
    steps: list[float] = []
    with torch.inference_mode():
        last = time.perf_counter()
        for _ in decode_tokens(model, x, options):  # each yield follows one forward + choice
            sync()
            now = time.perf_counter()
            steps.append(now - last)
            last = now
    steps = steps[1:]  # the first includes the prefill
    bucket = max(1, len(steps) // 8)
    print(f"\n# time per token against position (ours, batch 1, {prompt}-token prompt, to {length} tokens)")
    print("| positions | median ms / token |")
    print("|---|---|")
    for i in range(0, len(steps), bucket):
        chunk = steps[i:i + bucket]
        lo = prompt + 1 + i
        print(f"| {lo}-{lo + len(chunk) - 1} | {statistics.median(chunk) * 1e3:.2f} |")


def _bandwidth(model, seconds_per_token: float, theirs_per_token: float | None, device: str, sync) -> None:
    """Batch-1 decoding as a fraction of the memory-bandwidth limit: each token reads every
    weight once, so weight bytes / measured copy bandwidth is the fastest a token can be."""
    wpe = model.transformer.wpe.weight
    # Every weight is read once per token, the tied head once; of wpe only one row.
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) - wpe.numel() * wpe.element_size()
    n = 1 << 29  # 512 MiB: far larger than any cache
    a = torch.ones(n // 4, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    sync()
    times = []
    for _ in range(10):
        start = time.perf_counter()
        b.copy_(a)
        sync()
        times.append(time.perf_counter() - start)
    bandwidth = 2 * n / statistics.median(times)  # read + write
    limit = weight_bytes / bandwidth
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"\n# batch-1 decoding against the memory-bandwidth limit ({name})")
    print(f"weights read per token: {weight_bytes / 2**20:,.1f} MiB; measured copy bandwidth "
          f"{bandwidth / 1e9:,.1f} GB/s; limit {limit * 1e3:,.2f} ms/token; measured "
          f"{seconds_per_token * 1e3:,.2f} ms/token: {limit / seconds_per_token:.0%} of the limit")
    if theirs_per_token:
        print(f"transformers: {theirs_per_token * 1e3:,.2f} ms/token: {limit / theirs_per_token:.0%} of the limit")


if __name__ == "__main__":
    main()
