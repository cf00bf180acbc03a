"""One process, or many under torchrun: process-group setup, model wrapping, collectives.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (and handles multi-node rendezvous); we read
them, pick the backend (NCCL on CUDA, gloo on CPU), and wrap the model in
DistributedDataParallel, or shard it with FSDP2 (`fully_shard`) when it does not fit one device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(device_type: str) -> Dist:
    """Join the process group torchrun set up; a plain `python`/`gpt2` run is one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def mean(d: Dist, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar tensor over ranks."""
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= d.world_size
    return value


def sum_over_ranks(d: Dist, value: torch.Tensor) -> torch.Tensor:
    """The elementwise sum of a tensor over ranks."""
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def any_rank(d: Dist, flag: bool, device: torch.device) -> bool:
    """True when `flag` is true on any rank (so every rank takes the same branch)."""
    if not d.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def wrap(model: torch.nn.Module, d: Dist, strategy: str, device: torch.device, *,
         find_unused_parameters: bool = False) -> torch.nn.Module:
    """DDP (replicated weights, averaged gradients) or FSDP2 (sharded weights and optimizer).
    find_unused_parameters: some parameters get no gradient in a step (a multi-task model's
    other heads), which DDP must be told."""
    if not d.enabled:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.transformer.h:
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=find_unused_parameters)
