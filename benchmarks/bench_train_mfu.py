"""Training throughput and MFU of `gpt2 train`'s step on one device, and its scaling with n_ctx.

For a GPU (the issue's measurement): the gpt2 preset (124M) at n_ctx 1024, bf16 autocast,
torch.compile, fused AdamW; tokens/s, model FLOPs utilisation against the measured bf16
matmul peak of the device (gpt2.train.metrics.measure_peak_flops), peak memory, and step time
at n_ctx 256/512/1024 with the same tokens per step. Runs on CPU too, for a smoke test
(MFU needs the GPU's measured peak and is left out there).

    python benchmarks/bench_train_mfu.py --device cuda --micro-batch 16 --compile
    python benchmarks/bench_train_mfu.py --preset gpt2-nano --device cpu --micro-batch 2 --seq-lens 64 128
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, median  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--micro-batch", type=int, default=16, help="sequences of 1024 tokens per step (scaled for shorter n_ctx)")
    p.add_argument("--seq-lens", type=int, nargs="+", default=[1024, 512, 256])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()

    from gpt2 import GPT2, GPT2Config
    from gpt2.train.config import OptimConfig
    from gpt2.train.metrics import flops_per_token, measure_peak_flops
    from gpt2.train.optim import make_optimizer

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = measure_peak_flops(device) if cuda else None
    print(f"# machine: {machine()}")
    if peak:
        print(f"# measured bf16 matmul peak: {peak / 1e12:.0f} TFLOP/s")
    print(f"# {args.preset}, {'bf16 autocast' if cuda else 'fp32'}, compile={args.compile}, fused AdamW; "
          f"{args.micro_batch} x 1024 tokens per step; median of {args.steps} steps after warmup")
    print("| n_ctx | batch | ms/step | tokens/s | MFU | peak memory GiB |")
    print("|---|---|---|---|---|---|")
    for seq in args.seq_lens:
        torch.manual_seed(0)
        config = GPT2Config.preset(args.preset, n_ctx=max(seq, 1024))
        model = GPT2(config).to(device).train()
        opt = make_optimizer(model, OptimConfig(), device.type)
        step_model = torch.compile(model) if args.compile else model
        batch = max(1, args.micro_batch * 1024 // seq)
        x = torch.randint(0, config.vocab_size, (batch, seq + 1), device=device)
        inputs, targets = x[:, :-1], x[:, 1:]

        def step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                _, loss = step_model(inputs, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(3):  # warmup (and compilation)
            step()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        t = median(times)
        tokens_per_s = batch * seq / t
        mfu = f"{100 * flops_per_token(config, seq) * tokens_per_s / peak:.1f}%" if peak else "n/a"
        mem = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if cuda else "n/a"
        print(f"| {seq} | {batch} | {t * 1e3:.1f} | {tokens_per_s:,.0f} | {mfu} | {mem} |")
        del model, opt, step_model


if __name__ == "__main__":
    main()
