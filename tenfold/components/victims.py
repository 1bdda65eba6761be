"""Victims of the security benchmark: a small ConvNet (GroupNorm, so opacus can compute per-example gradients),
trained from scratch or fine-tuned (last layer only, the transfer setting of the poisoning benchmark), with the
training-time defenses plugged in as a `Trainer` hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvNet(nn.Module):
    """Two conv blocks (conv-GroupNorm-ReLU-maxpool), a ReLU feature layer of `4 * width` units and a linear head;
    `features` (the penultimate layer) is what feature-collision attacks and the filters work on."""

    def __init__(self, in_ch: int = 1, num_classes: int = 10, width: int = 16, side: int = 28):
        super().__init__()
        w = width

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(min(4, o), o), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(
            *block(in_ch, w), *block(w, 2 * w), nn.Flatten(), nn.Linear(2 * w * (side // 4) ** 2, 4 * w), nn.ReLU()
        )
        self.head = nn.Linear(4 * w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    momentum: float = 0.9
    finetune: bool = False  # train only the head (features frozen), the transfer-learning victim


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Step decay x0.1 at 3/8, 5/8 and 7/8 of training (the lab's 'conservative' milestones, rounded)."""
    drops = sum(epoch >= int(cfg.epochs * f) for f in (0.375, 0.625, 0.875)) if cfg.epochs >= 4 else 0
    return cfg.lr * (0.1**drops)


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against hard labels (int) or soft labels (float, one row per example), per example."""
    if target.dtype.is_floating_point:
        return -(target * F.log_softmax(logits, 1)).sum(1)
    return F.cross_entropy(logits, target, reduction="none")


BatchHook = Callable[[nn.Module, torch.Tensor, torch.Tensor, int, torch.Generator], torch.Tensor]


def plain_loss(model, x, y, epoch, gen) -> torch.Tensor:
    return soft_ce(model(x), y).mean()


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    device,
    seed: int,
    loss_fn: BatchHook = plain_loss,
    step_hook: Callable | None = None,
) -> nn.Module:
    """Minibatch SGD (nesterov) with step decay. `loss_fn` carries augmentation defenses (mixup, CutMix, ...);
    `step_hook(model)` runs between backward and the optimizer step (batch-level clip-and-noise)."""
    model.to(device).train()
    params = list(model.head.parameters()) if cfg.finetune else list(model.parameters())
    if cfg.finetune:
        for p in model.body.parameters():
            p.requires_grad_(False)
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for epoch in range(cfg.epochs):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, epoch)
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = loss_fn(model, xt[idx].to(device), yt[idx].to(device), epoch, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step_hook is not None:
                step_hook(model, gen)
            opt.step()
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x, device, batch: int = 512) -> np.ndarray:
    model.eval()
    out = [model(torch.as_tensor(x[i : i + batch]).to(device)).argmax(1).cpu() for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def features(model: ConvNet, x, device, batch: int = 512) -> np.ndarray:
    model.eval()
    return torch.cat(
        [model.features(torch.as_tensor(x[i : i + batch]).to(device)).cpu() for i in range(0, len(x), batch)]
    ).numpy()


def accuracy(model, x, y, device) -> float:
    return float((predict(model, x, device) == np.asarray(y)).mean())
