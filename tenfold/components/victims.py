"""Victims of the security benchmark, trained from scratch or fine-tuned (last layer only, the transfer setting of
the poisoning benchmark), with the training-time defenses plugged in as hooks.

Architectures (GroupNorm everywhere, so opacus can compute per-example gradients), both with `body` (features) and
`head` (linear classifier):
* `ResNet`: a small residual network for 32x32 RGB (input normalisation, 3x3 stem, stages of basic blocks of
  widths w, 2w, 4w..., global average pooling), the CIFAR-10 victim sized for 2 CPU cores;
* `ConvNet`: two conv blocks and a feature layer, the digits victim.

The recipe has the shape of the poisoning benchmark's victim training (and the lab's "conservative" strategy): SGD
with Nesterov momentum and weight decay, step decay x0.1 at 3/8, 5/8 and 7/8 of training, random crop (zero padding)
and horizontal flip, plus a linear learning-rate warm-up so that every seed of a small GroupNorm net trains. The
schedule can instead be a per-epoch cosine (`schedule="cosine"`): at 10 epochs the step decay leaves 3 epochs at the
full rate, and the same victim ends 4-5 points less accurate than under the cosine (`benchmarks/bench_victim_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel, inside the network: attacks and defenses work in [0, 1] pixel space."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _gn(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, c), c)


class BasicBlock(nn.Module):
    """Two 3x3 conv-GroupNorm layers with a residual connection (1x1 conv-GroupNorm when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _gn(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _gn(cout, groups)
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _gn(cout, groups))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.skip(x))


class ResNet(nn.Module):
    """A small ResNet (He et al.) with GroupNorm: normalisation, 3x3 stem of `width` channels, then one stage per
    entry of `blocks` (basic blocks of width `width * 2**i`, stride 2 from the second stage on and `first_stride` in
    the first: 2 halves the resolution early, 4x cheaper on CPU), global average pooling (`features`,
    `width * 2**(len(blocks)-1)` units) and a linear head. `blocks=(1, 1, 1)` is a ResNet-8, `(2, 2, 2, 2)` with
    width 64 is ResNet-18's layout."""

    def __init__(
        self,
        in_ch: int = 3,
        num_classes: int = 10,
        width: int = 16,
        blocks: tuple[int, ...] = (1, 1, 1),
        mean=None,
        std=None,
        groups: int = 4,
        first_stride: int = 1,
    ):
        super().__init__()
        mean = [0.0] * in_ch if mean is None else mean
        std = [1.0] * in_ch if std is None else std
        layers: list[nn.Module] = [
            Normalize(mean, std),
            nn.Conv2d(in_ch, width, 3, 1, 1, bias=False),
            _gn(width, groups),
            nn.ReLU(),
        ]
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            for j in range(n):
                stride = (2 if i > 0 else first_stride) if j == 0 else 1
                layers.append(BasicBlock(cin, cout, stride, groups))
                cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


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
    augment: bool = False  # random crop (zero padding `crop_pad`) + horizontal flip (if `flip`) per image
    flip: bool = True
    crop_pad: int = 4
    warmup_epochs: float = 0.0  # linear learning-rate warm-up from lr/steps over this many epochs
    schedule: str = "step"  # "step" (x0.1 at 3/8, 5/8, 7/8) or "cosine" (per epoch, from lr towards 0)


SCHEDULES = ("step", "cosine")


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch `epoch`. "step": x0.1 at 3/8, 5/8 and 7/8 of training (the lab's 'conservative'
    milestones, rounded); "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, one value per epoch."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    if cfg.schedule != "step":
        raise ValueError(f"unknown victim schedule {cfg.schedule!r} (known: {', '.join(SCHEDULES)})")
    drops = sum(epoch >= int(cfg.epochs * f) for f in (0.375, 0.625, 0.875)) if cfg.epochs >= 4 else 0
    return cfg.lr * (0.1**drops)


def lr_step(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """`lr_at` times the linear warm-up factor of optimizer step `step` of epoch `epoch`."""
    warm = cfg.warmup_epochs * steps_per_epoch
    done = epoch * steps_per_epoch + step + 1
    return lr_at(cfg, epoch) * (min(1.0, done / warm) if warm > 0 else 1.0)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """The benchmark's training augmentation: a random crop of the zero-padded image (shift of up to `pad` pixels
    each way) and a horizontal flip with probability 1/2, drawn per image from `gen`."""
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        crop = padded[i, :, dy : dy + h, dx : dx + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


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
    epoch_hook: Callable[[nn.Module, int], None] | None = None,
) -> nn.Module:
    """Minibatch SGD (nesterov) with warm-up and step decay, and the standard augmentation when `cfg.augment`
    (before the defense's mixing, as in the lab). `loss_fn` carries augmentation defenses (mixup, CutMix, ...);
    `step_hook(model)` runs between backward and the optimizer step (batch-level clip-and-noise); `epoch_hook(model,
    epoch)` after every epoch (a measurement: it must not change the model; training mode is restored after it)."""
    model.to(device).train()
    params = list(model.head.parameters()) if cfg.finetune else list(model.parameters())
    if cfg.finetune:
        for p in model.body.parameters():
            p.requires_grad_(False)
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    steps = (len(xt) + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for step, i in enumerate(range(0, len(order), cfg.batch_size)):
            for g in opt.param_groups:
                g["lr"] = lr_step(cfg, epoch, step, steps)
            idx = order[i : i + cfg.batch_size]
            xb = augment_batch(xt[idx], gen, cfg.crop_pad, cfg.flip) if cfg.augment else xt[idx]
            loss = loss_fn(model, xb.to(device), yt[idx].to(device), epoch, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step_hook is not None:
                step_hook(model, gen)
            opt.step()
        if epoch_hook is not None:
            epoch_hook(model, epoch)
            model.train()
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


def input_std(model: nn.Module) -> tuple[float, ...] | None:
    """The per-channel std of the model's input normalisation (its first `Normalize` layer), None if it has none."""
    for m in model.modules():
        if isinstance(m, Normalize):
            return tuple(float(s) for s in m.std.flatten())
    return None
