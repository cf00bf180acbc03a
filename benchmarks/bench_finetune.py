"""Fine-tuning step speed: ours (gpt2.finetune) vs transformers' GPT2ForSequenceClassification,
full fine-tuning and LoRA (vs PEFT), and the optimizer-state memory LoRA saves.

One step = forward, classification loss (cross-entropy at each row's last token), backward,
gradient clipping at 1.0 (as both `gpt2 finetune` and transformers' Trainer do) and an AdamW
step (GPT-1's lr 6.25e-5, weight decay 0.01 on 2-D weights; the fused kernel on both sides where
torch has it). Same random weights: transformers' model is built from a GPT2Config and saved,
ours loaded from that directory (gpt2.finetune.checkpoint.load_task_model); same batch
(B x T tokens, none of them the pad id, so both pool at the last token). Ours is TaskModel +
compute_loss (lm_weight=0, the like-for-like row; lm_weight=0.5, GPT-1's auxiliary LM loss,
is an extra row of ours only: transformers' class has no such loss) + make_optimizer; LoRA is
apply_lora(r, alpha=2r, c_attn, head trainable) vs PEFT's get_peft_model(task_type="SEQ_CLS")
with the same A matrices. Before timing, both sides' losses are checked equal (<= 1e-4) on the
first step and on the second (so the optimizer steps did the same update too). Alternating
steps in one process, each timed step after an untimed one of the same contender; medians;
ratio = theirs / ours time (> 1: ours is faster). Also: the compute limit of each step at the
fp32 matmul rate measured in the same run. Issue targets (CPU, gpt2, 8 x 128): full step
>= 1.1x, LoRA step >= 1.1x; report the AdamW-state ratio full / LoRA r=8.

    python benchmarks/bench_finetune.py                          # gpt2, 8 x 128, CPU, fp32
    python benchmarks/bench_finetune.py --layers 2 --repeats 3   # a quick check of the script
    python benchmarks/bench_finetune.py --profile                # + where each step's time goes
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

from gpt2.cli.numbers import float_in, int_in  # noqa: E402

if TYPE_CHECKING:
    from gpt2.finetune.batching import Batch

EOT = 50256  # the pad id (GPT-2 has none): transformers needs one for a batch of more than 1 row
LR, BETAS, EPS, WEIGHT_DECAY, CLIP = 6.25e-5, (0.9, 0.999), 1e-8, 0.01, 1.0  # GPT-1's recipe defaults
TOLERANCE = 1e-4


@dataclass
class Contender:
    """A model, its optimizer and the loss of one batch: what one timed step runs."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[], torch.Tensor]
    lm_weight: float = 0.0  # > 0: the loss includes the LM head's loss (more work)

    def step(self) -> float:
        loss = self.loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def fused(device_type: str) -> bool:
    """Whether make_optimizer picks torch's fused AdamW kernel here (its default rule)."""
    return device_type in ("cpu", "cuda") and "fused" in inspect.signature(torch.optim.AdamW).parameters


def peer_adamw(model: torch.nn.Module, device_type: str) -> torch.optim.AdamW:
    """torch's AdamW as a hand-written loop would set it up, with our decay rule (2-D weights
    only) and, like ours, the fused kernel where torch has one."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, **({"fused": True} if fused(device_type) else {}))


def our_adamw(model: torch.nn.Module, device_type: str) -> torch.optim.AdamW:
    from gpt2.finetune.config import OptimConfig
    from gpt2.train.optim import make_optimizer

    cfg = OptimConfig(lr=LR, beta1=BETAS[0], beta2=BETAS[1], eps=EPS, weight_decay=WEIGHT_DECAY)
    return make_optimizer(model, cfg, device_type)


def adam_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of AdamW's moments (exp_avg + exp_avg_sq) over all parameters."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for key, t in state.items() if key in ("exp_avg", "exp_avg_sq"))


def build_checkpoint(args: argparse.Namespace, directory: str) -> int:
    """transformers' GPT2ForSequenceClassification with random weights, saved to `directory`;
    returns its number of layers."""
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2ForSequenceClassification

    from gpt2 import GPT2Config

    overrides = {"n_layer": args.layers} if args.layers else {}
    ours = GPT2Config.preset(args.preset, dropout=args.dropout, **overrides)
    # Labels named: transformers 5 leaves its default LABEL_0/LABEL_1 out of config.json.
    hf_config = HFConfig(**ours.to_hf_dict(), id2label={0: "negative", 1: "positive"}, pad_token_id=EOT)
    torch.manual_seed(0)
    GPT2ForSequenceClassification(hf_config).save_pretrained(directory)
    return ours.n_layer


def load_pair(directory: str, device: str, lora_r: int | None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ours (a TaskModel) and transformers' model (PEFT-wrapped when lora_r) from one checkpoint,
    in training mode; with LoRA, PEFT's A matrices are set to ours so both make the same update."""
    from transformers import GPT2ForSequenceClassification

    from gpt2.finetune.checkpoint import load_task_model

    ours = load_task_model(directory, device=device).train()
    theirs = GPT2ForSequenceClassification.from_pretrained(directory, attn_implementation="sdpa").to(device).train()
    if lora_r is None:
        return ours, theirs
    from peft import LoraConfig, get_peft_model

    from gpt2.finetune.lora import LoRAConfig, apply_lora

    apply_lora(ours, LoRAConfig(r=lora_r, alpha=2 * lora_r, targets=("c_attn",)), trainable=("heads",))
    with warnings.catch_warnings():  # PEFT notes that it sets fan_in_fan_out for GPT-2's Conv1D
        warnings.simplefilter("ignore")
        theirs = get_peft_model(theirs, LoraConfig(task_type="SEQ_CLS", r=lora_r, lora_alpha=2 * lora_r,
                                                   target_modules=["c_attn"]))
    with torch.no_grad():
        for ours_block, their_block in zip(ours.lm.transformer.h, theirs.base_model.model.transformer.h):
            their_block.attn.c_attn.lora_A["default"].weight.copy_(ours_block.attn.c_attn.lora_A.weight)
    n_ours = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    n_theirs = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    assert n_ours == n_theirs, f"trainable parameters differ: ours {n_ours:,}, PEFT {n_theirs:,}"
    return ours, theirs


def make_batch(args: argparse.Namespace) -> Batch:
    from gpt2.finetune.batching import collate
    from gpt2.finetune.tasks import Example

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, EOT, (args.batch, args.seq), generator=g)  # never the pad id
    labels = torch.randint(0, 2, (args.batch,), generator=g)
    return collate([Example([row.tolist()], int(y)) for row, y in zip(ids, labels)], pad_id=EOT).to(args.device)


def contenders(ours: torch.nn.Module, theirs: torch.nn.Module, batch: Batch, device_type: str,
               lm_weights: tuple[float, ...], peer: str) -> dict[str, Contender]:
    """Ours at each lm_weight (one model and optimizer: the timing does not depend on the
    weights' values), then transformers' model under the name `peer`."""
    from gpt2.finetune.model import compute_loss

    info = next(iter(ours.tasks.values()))
    ours_opt = our_adamw(ours, device_type)
    runs = {f"ours, lm_weight={w:g}":
            Contender(ours, ours_opt, lambda w=w: compute_loss(ours, info, batch, lm_weight=w)[0], w)
            for w in lm_weights}
    runs[peer] = Contender(theirs, peer_adamw(theirs, device_type),
                           lambda: theirs(batch.input_ids, labels=batch.labels).loss)
    return runs


def check_equal_work(ours: Contender, theirs: Contender) -> tuple[float, float]:
    """Two steps of each with dropout off: the losses before and after the first update must
    agree, so the forward passes and the updates are the same computation. Returns the two
    differences."""
    diffs = []
    for model in (ours.model, theirs.model):
        model.eval()
    for step in (1, 2):
        a, b = ours.step(), theirs.step()
        assert abs(a - b) <= TOLERANCE, f"step {step}: loss ours {a:.6f} vs theirs {b:.6f}: not the same work"
        diffs.append(abs(a - b))
    for model in (ours.model, theirs.model):
        model.train()
    return diffs[0], diffs[1]


def matmul_rate(device: str, sync: Callable[[], None], n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large fp32 matmul on this device: the machine's practical compute peak."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(model: torch.nn.Module, batch_size: int, seq: int, *, lora: bool, lm: bool) -> float:
    """Matmul FLOPs of one step: forward 2 x tokens x body weights + attention's two T x T
    products (+ the LM head's tokens x n_embd x vocab when the LM loss is on); backward twice
    the forward when every weight gets a gradient, once (the activations' gradients only) when
    LoRA freezes them. The embedding lookups, the head (n_embd x 2) and LoRA's rank-r products
    are left out (< 1%)."""
    config = model.config
    L, C, tokens = config.n_layer, config.n_embd, batch_size * seq
    forward = 2 * tokens * L * 12 * C * C + 2 * 2 * batch_size * L * seq * seq * C
    if lm:
        forward += 2 * tokens * C * config.vocab_size
    return forward * (2 if lora else 3)


def profile(runs: dict[str, Contender], rows: int) -> None:
    """Print the operators that take the most time in one step of each contender."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name, run in runs.items():
        run.step()  # outside the profile: the allocations of a step of another contender
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            run.step()
        print(f"\n## profile of one step: {name}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def bench(title: str, directory: str, batch: Batch, args: argparse.Namespace, lora_r: int | None,
          lm_weights: tuple[float, ...], peak: float) -> tuple[int, int]:
    """Time one kind of step; print its table; return the bytes of ours' and theirs' AdamW state."""
    ours, theirs = load_pair(directory, args.device, lora_r)
    device_type = torch.device(args.device).type
    peer = "transformers GPT2ForSequenceClassification" + (" + PEFT LoRA" if lora_r else "")
    runs = contenders(ours, theirs, batch, device_type, lm_weights, peer)
    first = next(iter(runs))
    d1, d2 = check_equal_work(runs[first], runs[peer])
    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    # Each timed step follows an untimed step of the same contender (as in bench_train.py: a step
    # right after another contender's pays for that one's freed allocations); that untimed step
    # also serves as the warm-up.
    times = interleaved({name: run.step for name, run in runs.items()}, repeats=args.repeats, warmup=0,
                        sync=sync, settle=1)

    tokens = args.batch * args.seq
    limits = {name: step_flops(ours, args.batch, args.seq, lora=lora_r is not None, lm=run.lm_weight > 0) / peak
              for name, run in runs.items()}
    t_peer = median(times[peer])
    trainable = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    print(f"\n# {title}: {trainable:,} trainable parameters; |loss ours - theirs| = {d1:.1e} "
          f"(step 1), {d2:.1e} (step 2)")
    print("| implementation | median s/step | tokens/s | ours faster by (theirs / ours) "
          "| compute limit: s/step, reached |")
    print("|---|---|---|---|---|")
    for name in runs:
        t = median(times[name])
        ratio = "" if name == peer else f"**{t_peer / t:.2f}x**" if name == first else f"{t_peer / t:.2f}x (more work)"
        print(f"| {name} | {t:.3f} | {tokens / t:,.0f} | {ratio} | {limits[name]:.3f} s: {limits[name] / t:.0%} |")
    if args.profile:
        profile({first: runs[first], peer: runs[peer]}, args.profile_rows)
    return adam_state_bytes(runs[first].optimizer), adam_state_bytes(runs[peer].optimizer)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--layers", type=int_in(1, 1000), default=None, help="override the preset's n_layer (a quick run)")
    p.add_argument("--batch", type=int_in(1, 4096), default=8)
    p.add_argument("--seq", type=int_in(2, 1024), default=128, help="tokens per row (at most n_ctx, 1024)")
    p.add_argument("--repeats", type=int_in(1, 1000), default=5)
    p.add_argument("--lora-r", type=int_in(1, 4096), default=8)
    p.add_argument("--dropout", type=float_in(0, 1, high_open=True), default=0.1,
                   help="body dropout on both sides while timed (default 0.1, GPT-1's; the loss check runs without)")
    p.add_argument("--threads", type=int_in(1, 4096), default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", action="store_true", help="also profile one step of each (torch.profiler)")
    p.add_argument("--profile-rows", type=int_in(1, 1000), default=15)
    args = p.parse_args()

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "Some weights ... newly initialized" and the like
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device_type = torch.device(args.device).type
    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    peak = matmul_rate(args.device, sync)
    batch = make_batch(args)
    with tempfile.TemporaryDirectory() as directory:
        n_layer = build_checkpoint(args, directory)
        print(f"# fine-tuning step, {args.preset} ({n_layer} layers), {args.batch} x {args.seq} tokens, "
              f"float32, {args.device}, dropout {args.dropout:g}")
        print(f"# machine: {machine()}; fp32 matmul rate {peak / 1e9:,.0f} GFLOP/s")
        print(f"# AdamW: {'fused' if fused(device_type) else 'for-each'} kernel on both sides; "
              f"{args.repeats} alternating steps each, medians")
        full = bench("full fine-tuning", directory, batch, args, None, (0.0, 0.5), peak)
        lora = bench(f"LoRA r={args.lora_r} on c_attn, head trainable", directory, batch, args, args.lora_r,
                     (0.0,), peak)
    print(f"\n# AdamW state (exp_avg + exp_avg_sq) after the steps, full / LoRA r={args.lora_r}")
    print("| implementation | full | LoRA | full / LoRA |")
    print("|---|---|---|---|")
    for i, name in enumerate(("ours", "transformers (+ PEFT)")):
        print(f"| {name} | {full[i] / 2**20:,.1f} MiB | {lora[i] / 2**20:,.2f} MiB | {full[i] / lora[i]:,.0f}x |")


if __name__ == "__main__":
    main()
