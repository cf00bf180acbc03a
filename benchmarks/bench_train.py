"""Training throughput: ours vs transformers' GPT2LMHeadModel (sdpa), one optimizer step each.

Both do the same work on the same batch and the same initial weights: forward, mean
cross-entropy, backward, gradient clipping at 1.0 and an AdamW step (weight decay 0.1 on 2-D
weights). Ours is what `gpt2 train` runs (its model and its optimizer settings: the fused AdamW
kernel); transformers is measured with torch's default AdamW (as a hand-written loop over
GPT2LMHeadModel would use) and with the fused kernel, so the ratio shows where the gain comes
from. Alternating steps in one process; medians. Issue target: ours >= 1.2x on CPU.

    python benchmarks/bench_train.py                          # gpt2 and gpt2-mini, 1 x 256 tokens
    python benchmarks/bench_train.py --presets gpt2 --batch 4 --seq 1024 --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402


def adamw(model: torch.nn.Module, fused: bool) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), **({"fused": True} if fused else {}))


def bench(preset: str, args) -> None:
    from transformers import GPT2LMHeadModel

    from gpt2 import GPT2, GPT2Config
    from gpt2.train.config import OptimConfig
    from gpt2.train.optim import make_optimizer

    torch.manual_seed(0)
    ours = GPT2(GPT2Config.preset(preset))
    with tempfile.TemporaryDirectory() as d:
        ours.save_pretrained(d)
        hf = GPT2LMHeadModel.from_pretrained(d, attn_implementation="sdpa")
        hf_fused = GPT2LMHeadModel.from_pretrained(d, attn_implementation="sdpa")
    dtype = getattr(torch, args.dtype)
    models = {"ours": ours, "transformers": hf, "transformers + fused AdamW": hf_fused}
    for m in models.values():
        m.to(args.device).train()
    device_type = torch.device(args.device).type
    optimizers = {
        "ours": make_optimizer(ours, OptimConfig(lr=1e-4, weight_decay=0.1), device_type),
        "transformers": adamw(hf, fused=False),
        "transformers + fused AdamW": adamw(hf_fused, fused=True),
    }
    x = torch.randint(0, 50257, (args.batch, args.seq + 1), device=args.device)
    inputs, targets = x[:, :-1], x[:, 1:]

    def autocast():
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    def step(name: str):
        model, opt = models[name], optimizers[name]
        with autocast():
            if name == "ours":
                _, loss = model(inputs, targets)
            else:  # the same tokens and the same loss (float32 cross-entropy, mean over tokens)
                logits = model(inputs).logits
                loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    # Contenders alternate, but each timed step follows an untimed step of the same contender:
    # a step right after another contender's pays for that one's allocations (hundreds of MB of
    # gradients and optimizer temporaries freed and re-faulted), which measured up to 25%
    # depending only on the order in which the contenders run.
    times = interleaved({name: (lambda n=name: step(n)) for name in models}, repeats=args.repeats,
                        sync=sync, settle=1)
    tokens = args.batch * args.seq
    o = median(times["ours"])
    print(f"\n# training step, {preset}, {args.batch} x {args.seq} tokens, {args.dtype}, {args.device}")
    print("| implementation | median s/step | tokens/s | ours faster by |")
    print("|---|---|---|---|")
    for name in models:
        t = median(times[name])
        print(f"| {name} | {t:.3f} | {tokens / t:,.0f} | {t / o:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["gpt2", "gpt2-mini"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = p.parse_args()
    print(f"# machine: {machine()}; {args.repeats} alternating steps each, medians")
    for preset in args.presets:
        bench(preset, args)


if __name__ == "__main__":
    main()
