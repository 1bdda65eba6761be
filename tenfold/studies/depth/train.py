"""Training and evaluation of the depth study's classifiers, with per-epoch resumable checkpoints; the input
standardisation and the lr of each net."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tenfold.components import distributed
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import generator, seed_for


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel standardisation with the training images' mean and std (the official code's `Normalize` with the
    CIFAR-10 channel statistics); the test images use the training statistics."""
    axes = (0, *range(2, x_train.ndim))
    mean, std = x_train.mean(axis=axes, keepdims=True), x_train.std(axis=axes, keepdims=True)
    if not np.all(std > 0):
        raise ValueError("standardize: a channel of the training images is constant (std 0)")
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def learning_rate(family, recurrent: bool, cfg) -> float:
    """The lr of one net (`family`: a `Family`, `cfg`: a `DepthTrain`): the family's `recurrent_lr` for its
    recurrent nets, else the family's `lr`, else `train.recurrent_lr` for recurrent nets, else `train.lr`."""
    if recurrent and family.recurrent_lr:
        return family.recurrent_lr
    return family.lr or (cfg.recurrent_lr if recurrent and cfg.recurrent_lr else cfg.lr)


def lr_at(epoch: int, cfg, base_lr: float) -> float:
    """Exponential warmup (lr * (1 - exp(-(epoch+1)/w)), stepped per epoch) times 0.1 per passed milestone."""
    warm = 1 - math.exp(-(epoch + 1) / cfg.warmup_epochs) if cfg.warmup_epochs else 1.0
    decay = 0.1 ** sum(epoch >= round(m * cfg.epochs) for m in cfg.milestones)
    return base_lr * warm * decay


def _step_loss(model: nn.Module, xtr: torch.Tensor, ytr: torch.Tensor, idx: torch.Tensor) -> float:
    """Backward of one global batch `idx` (this rank's share under torchrun); returns the batch's mean loss."""
    if distributed.world_size() == 1:
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        loss.backward()
        return loss.item()
    mine = distributed.shard(idx)
    total = torch.zeros(())
    if len(mine):  # a rank without examples in a short last batch contributes zero gradients
        loss = F.cross_entropy(model(xtr[mine]), ytr[mine], reduction="sum") / len(idx)
        loss.backward()
        total = loss.detach().cpu()
    return float(distributed.all_sum(total))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model.eval()
    out = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    model.train()
    return out


def train(
    model: nn.Module,
    xtr: torch.Tensor,
    ytr: torch.Tensor,
    cfg,
    base_lr: float,
    seed: int,
    checkpoint: Checkpoint | None = None,
    on_epoch=None,
    stop_after: int | None = None,
) -> list[dict]:
    """SGD with the warmup/step schedule; checkpoint after every epoch, resume a matching checkpoint; `on_epoch(rec)`
    after every epoch trained here; `stop_after` ends the run after that epoch (the schedule stays `cfg.epochs`'s, as a
    run killed there).

    Under torchrun (`tenfold.components.distributed`) each rank takes its share of every global batch (the global
    batch stays `cfg.batch_size`), the loss is normalised by the global batch and gradients are summed over ranks
    before clipping and the step: the same update as one process, up to float summation order (BatchNorm, in
    `residual_bn` only, then sees per-rank batch statistics, as plain DDP). Rank 0 checkpoints and reports epochs.

    The shuffling generator of each epoch is seeded with `seed_for(seed, "depth", "epoch", epoch)`, so a resumed run
    gives the same weights as an uninterrupted one.
    """
    opt = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    start, history = 0, []
    state = checkpoint.load(map_location=xtr.device) if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["epoch"], list(state["history"])
    model.train()
    for epoch in range(start, min(cfg.epochs, stop_after or cfg.epochs)):
        for g in opt.param_groups:
            g["lr"] = lr_at(epoch, cfg, base_lr)
        perm = torch.randperm(len(xtr), generator=generator(seed_for(seed, "depth", "epoch", epoch))).to(xtr.device)
        losses = []
        for i in range(0, len(xtr), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            losses.append(_step_loss(model, xtr, ytr, idx))
            distributed.sum_gradients(model)
            if cfg.clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"]})
        if distributed.is_main():
            if checkpoint:
                checkpoint.save(epoch=epoch + 1, model=model.state_dict(), optimizer=opt.state_dict(), history=history)
            if on_epoch:
                on_epoch(history[-1])
    return history
