"""Data-parallel training under `torchrun` (gloo on CPU, NCCL on GPU), for the studies' own training loops.

Every rank runs the same loop on its share of each global batch (the global batch stays the single-process one:
rank r takes every W-th example of it, as DistributedSampler shards an epoch), the per-rank losses are normalised
by the global count, and gradients are summed over ranks with `all_reduce` before the optimizer step (the
arithmetic of DistributedDataParallel, without its bucketing, so any forward path works, the recurrent nets'
progressive loss included). Checkpoints and logging happen on rank 0 only. Outside torchrun everything here is a
no-op (world size 1).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init() -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT); False when not under it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def finish() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(indices, r: int | None = None, w: int | None = None):
    """This rank's share of one global batch of indices."""
    r, w = rank() if r is None else r, world_size() if w is None else w
    return indices[r::w] if w > 1 else indices


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (a copy; `t` unchanged)."""
    out = t.detach().clone()
    if world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def sum_gradients(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient over ranks (a rank whose share was empty contributes zeros)."""
    if world_size() <= 1:
        return
    for p in model.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
