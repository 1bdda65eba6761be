"""Training and evaluation of maze nets: masked per-pixel loss, progressive loss, warmup, resumable checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.components import distributed
from tenfold.components.models.recurrent import SegmentNet
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_for
from tenfold.studies.maze.generate import _PALETTE, WALL
from tenfold.studies.maze.params import MazeTrain

_PAL = torch.from_numpy(_PALETTE)


def batch_tensors(
    codes: np.ndarray, targets: np.ndarray, idx, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = torch.from_numpy(codes[idx]).long()
    x = _PAL[c].permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(targets[idx]).long().to(device)
    mask = (c != WALL).to(device)
    return x, y, mask


def masked_ce(
    logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, denom: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pixel cross-entropy averaged over the open (non-wall) pixels (of the global batch when `denom`, the
    global count, is given: data-parallel ranks then sum to the single-process loss)."""
    loss = F.cross_entropy(logits, y, reduction="none")
    m = mask.float()
    return (loss * m).sum() / (m.sum().clamp_min(1.0) if denom is None else denom)


def make_optimizer(model: SegmentNet, cfg: MazeTrain) -> torch.optim.Optimizer:
    rec = list(model.recurrent_parameters()) if model.recurrent else []
    rec_ids = {id(p) for p in rec}
    rest = [p for p in model.parameters() if id(p) not in rec_ids]
    groups = [{"params": rest, "lr": cfg.lr}]
    if rec:
        scale = model.iters if cfg.recurrent_lr_by_iters else 1
        groups.append({"params": rec, "lr": cfg.lr / scale})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, cfg: MazeTrain) -> float:
    """Linear warmup for `warmup_epochs`, then cosine decay to 0 at the last step."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def train_step(
    model: SegmentNet, x, y, mask, cfg: MazeTrain, gen: torch.Generator, denom: torch.Tensor | None = None
) -> torch.Tensor:
    """The progressive loss of Bansal et al.: (1-alpha) * loss at train_iters + alpha * loss after
    k iterations started from a detached state of n iterations (recurrent nets only)."""
    T = model.iters
    loss = x.new_zeros(())
    if cfg.alpha < 1 or not model.recurrent:
        loss = loss + (1 - (cfg.alpha if model.recurrent else 0)) * masked_ce(model(x), y, mask, denom)
    if cfg.alpha > 0 and model.recurrent:
        n = int(torch.randint(0, T, (1,), generator=gen))
        k = int(torch.randint(1, T - n + 1, (1,), generator=gen))
        with torch.no_grad():
            h = model.initial_state(x)
            for i in range(n):
                h = model.step(h, x, i)
        out = model(x, iters=k, state=h.detach(), start=n)
        loss = loss + cfg.alpha * masked_ce(out, y, mask, denom)
    return loss


def train(
    model: SegmentNet,
    codes: np.ndarray,
    targets: np.ndarray,
    cfg: MazeTrain,
    device: torch.device,
    seed: int,
    checkpoint: Checkpoint | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> list[dict]:
    """Train in place; save `checkpoint` after every epoch and resume from it when it matches.

    Shuffling and the progressive-loss draws use generators seeded per epoch, so a resumed run gives the
    same weights as an uninterrupted one (see `tenfold.core.checkpoints` for what a mismatch does). Under torchrun
    (`tenfold.components.distributed`) each rank trains on its share of every global batch, gradients are summed
    over ranks, and only rank 0 writes the checkpoint.
    """
    parallel = distributed.world_size() > 1
    epochs = cfg.epochs if epochs is None else epochs
    model.to(device)
    opt = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in opt.param_groups]
    n = len(codes)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    history: list[dict] = []
    start_epoch = 0
    state = checkpoint.load(map_location=device) if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = list(state["history"])
        start_epoch = min(int(state["epoch"]), epochs)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, epochs):
        model.train()
        gen = torch.Generator().manual_seed(seed_for(seed, "maze", "epoch", epoch))
        perm = torch.randperm(n, generator=gen).numpy()
        tot, cnt = 0.0, 0
        it = range(0, n, cfg.batch_size)
        if progress and distributed.is_main():
            from tqdm import tqdm

            it = tqdm(it, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=False)  # asked for
        for lo in it:
            f = lr_factor(step, steps_per_epoch, cfg)
            for g, b in zip(opt.param_groups, base_lrs):
                g["lr"] = b * f
            batch = perm[lo : lo + cfg.batch_size]
            x, y, mask = batch_tensors(codes, targets, distributed.shard(batch), device)
            denom = distributed.all_sum(mask.float().sum()).clamp_min(1.0) if parallel else None
            loss = train_step(model, x, y, mask, cfg, gen, denom)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            distributed.sum_gradients(model)
            if cfg.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            tot += float(distributed.all_sum(loss) if parallel else loss.detach()) * len(batch)
            cnt += len(batch)
            step += 1
        rec = {"epoch": epoch + 1, "loss": tot / max(cnt, 1), "lr": opt.param_groups[0]["lr"]}
        history.append(rec)
        if checkpoint and distributed.is_main():
            checkpoint.save(epoch=epoch + 1, model=model.state_dict(), optimizer=opt.state_dict(), history=history)
        distributed.barrier()
        if on_epoch:
            on_epoch(rec)
    return history


@torch.no_grad()
def evaluate(
    model: SegmentNet, codes: np.ndarray, targets: np.ndarray, iter_list: list[int], device, batch_size: int = 256
) -> dict[int, float]:
    """Whole-maze exact match (walls masked) after each iteration count in `iter_list`."""
    model.eval().to(device)
    correct = {k: 0 for k in iter_list}
    for lo in range(0, len(codes), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(codes)))
        x, y, mask = batch_tensors(codes, targets, idx, device)
        for k, pred in model.predict_iters(x, iter_list).items():
            ok = ((pred * mask) == (y * mask)).flatten(1).all(1)
            correct[k] += int(ok.sum())
    return {k: correct[k] / max(1, len(codes)) for k in iter_list}


@torch.no_grad()
def predict(model: SegmentNet, codes: np.ndarray, iters: int, device) -> np.ndarray:
    model.eval().to(device)
    x, _, mask = batch_tensors(codes, np.zeros_like(codes), np.arange(len(codes)), device)
    return (model.predict_iters(x, [iters])[iters] * mask).cpu().numpy().astype(np.uint8)
