"""Training the surrogates: the MS1M MobileFaceNet's architecture with an ArcFace or CosFace head, on aligned
CelebA crops of identities disjoint from the evaluation ones, fine-tuned from the MS1M weights or trained from
scratch. SGD with momentum, linear warm-up then cosine decay, flips and small alignment jitter; every draw from
the surrogate's own generator; per-epoch checkpoints (`tenfold.core.checkpoints.Checkpoint`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tenfold.components.models.facemodels import FaceModel, build, surrogate_spec
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import generator, seed_for, seeded
from tenfold.studies.lowkey.params import LowKeyTrain, Surrogate


class MarginHead(nn.Module):
    """ArcFace (cos(theta + m)) or CosFace (cos(theta) - m) logits, scaled by s, for the true class."""

    def __init__(self, kind: str, dim: int, classes: int, scale: float, margin: float):
        super().__init__()
        if kind not in ("arcface", "cosface"):
            raise ValueError(f"unknown head {kind!r} (arcface, cosface)")
        self.kind, self.scale, self.margin = kind, scale, margin
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        if self.kind == "arcface":
            theta = torch.acos(cos)
            target = torch.where(
                theta + self.margin < math.pi, torch.cos(theta + self.margin), cos - self.margin * math.sin(self.margin)
            )  # keep monotone past pi (insightface)
        else:
            target = cos - self.margin
        return self.scale * torch.where(onehot, target, cos)


def augment(x: torch.Tensor, jitter: float, gen: torch.Generator) -> torch.Tensor:
    """Random flip and a random scale/shift of +-`jitter` (alignment noise) of aligned crops (B, 3, H, W)."""
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3)
    s = 1 + jitter * (2 * torch.rand(b, generator=gen) - 1)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta[:, 0, 0], theta[:, 1, 1] = s * flip, s
    theta[:, :, 2] = 2 * jitter * (2 * torch.rand(b, 2, generator=gen) - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _schedule(total: int, warmup: int) -> Callable[[int], float]:
    return lambda step: (
        (step + 1) / warmup
        if step < warmup
        else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    )


def train_surrogate(
    spec: Surrogate,
    crops: torch.Tensor,
    labels: torch.Tensor,
    cfg: LowKeyTrain,
    seed: int,
    init_state: dict | None = None,
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[FaceModel, list[dict]]:
    """Train one surrogate on aligned uint8 crops (N, H, W, 3) at the MS1M template; returns (model, history).

    `init_state` is the MS1M MobileFaceNet's state dict when `spec.init == "ms1m"` (fine-tuning); the head, the
    backbone of a from-scratch model and every training draw (shuffles, jitter, flips) get their own seeds from
    `seed`. With a `checkpoint`, each epoch is saved with the optimiser, schedule and generator states, so a
    killed run resumes to the same weights and a finished one is loaded instead of retrained."""
    if spec.init == "ms1m" and init_state is None:
        raise ValueError(f"surrogate {spec.name}: init 'ms1m' needs the MS1M weights (init_state)")
    classes = int(labels.max()) + 1
    model = seeded(seed_for(seed, "lowkey", "backbone"), lambda: build(spec.name, surrogate_spec()))
    if spec.init == "ms1m":
        model.net.load_state_dict(init_state, strict=True)
    dim = model.net.bn.num_features
    margin = cfg.arcface_margin if spec.head == "arcface" else cfg.cosface_margin
    head = seeded(seed_for(seed, "lowkey", "head"), lambda: MarginHead(spec.head, dim, classes, cfg.scale, margin))
    epochs, lr = (cfg.epochs, cfg.lr) if spec.init == "ms1m" else (cfg.scratch_epochs, cfg.scratch_lr)
    opt = torch.optim.SGD(
        [{"params": model.parameters(), "lr": lr}, {"params": head.parameters(), "lr": cfg.head_lr}],
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    per_epoch = -(-len(labels) // cfg.batch_size)
    if cfg.batches_per_epoch:
        per_epoch = min(per_epoch, cfg.batches_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(epochs * per_epoch, max(1, per_epoch // 2)))
    start, history = 0, []
    gen = generator(seed_for(seed, "lowkey", "batches"))
    state = checkpoint.load() if checkpoint else None
    if state is not None:
        model.net.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        start, history = state["epoch"], state["history"]
    for epoch in range(start, epochs):
        model.train()
        head.train()
        perm = torch.randperm(len(labels), generator=gen)[: per_epoch * cfg.batch_size]
        total, correct, n = 0.0, 0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = augment(crops[idx].permute(0, 3, 1, 2).float().div(255), cfg.jitter, gen)
            y = labels[idx]
            logits = head(model.unnormalised(x), y)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            n += len(idx)
        rec = {"epoch": epoch + 1, "loss": total / max(1, n), "train_acc": correct / max(1, n)}
        history.append(rec)
        if checkpoint:
            checkpoint.save(
                model=model.net.state_dict(),
                head=head.state_dict(),
                opt=opt.state_dict(),
                sched=sched.state_dict(),
                gen=gen.get_state(),
                epoch=epoch + 1,
                history=history,
            )
        if on_epoch:
            on_epoch(rec)
    return model.eval(), history


def aligned_crops(photos: np.ndarray, points: list, size: tuple[int, int], template: np.ndarray) -> np.ndarray:
    """uint8 aligned crops (N, h, w, 3) of uint8 photos (N, H, W, 3) with their landmarks."""
    from tenfold.studies.lowkey.pipeline import thetas, to_tensor, to_uint8, warp

    th = thetas(list(points), photos.shape[1:3], size, template)
    out = [to_uint8(warp(to_tensor(photos[i : i + 64]), th[i : i + 64], size)) for i in range(0, len(photos), 64)]
    return np.concatenate(out) if out else np.zeros((0, *size, 3), np.uint8)
