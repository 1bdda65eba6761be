"""A plain, seeded classifier training loop with a pluggable per-batch loss (clean, adversarial, weighted, augmented).

The loop owns shuffling, SGD with momentum, the learning-rate schedule and an optional
`tenfold.core.checkpoints.Checkpoint` that a killed run resumes from; `loss_fn(model, xb, yb, gen) -> (loss, info)`
decides what a step optimises, so the release victims, the adversarially trained counter-move and the minimax
trainers all share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_dropout, seed_for

StepLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict]]


def clean_loss(model, xb, yb, gen):
    """Standard cross-entropy."""
    return F.cross_entropy(model(xb), yb), {}


def fit(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    loss_fn: StepLoss = clean_loss,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    schedule: str = "cosine",
    milestones: tuple[float, ...] = (),
    augment=None,
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    epoch_seeds: Sequence[int] | None = None,
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
) -> list[dict]:
    """Train `model` in place on tensors already on its device; returns per-epoch records.

    schedule: `cosine` (to 0), `multistep` (x`gamma`, default 0.1, at the given fractions of training) or `constant`.
    augment: optional `f(x, gen)` applied to every batch before the loss (e.g. random crop/flip).
    checkpoint: saved after every epoch and resumed when it matches (see `tenfold.core.checkpoints`: a
    fingerprint mismatch starts over, a corrupt file raises). Every epoch's shuffle, augmentation and loss
    draws come from one generator seeded for that epoch, so a resumed run reproduces an uninterrupted one.
    epoch_seeds: the seed of each epoch's generator (e.g. from `tenfold.core.seeds.seed_for`); default
    `seed * 1_000_003 + epoch`, kept for the callers that have not switched yet.
    warmup_epochs: linear learning-rate warm-up over this many epochs (the schedule times (step + 1) / warm-up
    steps), 0 = none.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n, history, start = len(x), [], 0
    steps_per_epoch = math.ceil(n / batch_size)
    if epoch_seeds is not None and len(epoch_seeds) < epochs:
        raise ValueError(f"epoch_seeds has {len(epoch_seeds)} seeds for {epochs} epochs")
    state = checkpoint.load(map_location=x.device) if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start = list(state["history"]), int(state["epoch"])

    warm = warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        return _scheduled(step) * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)

    def _scheduled(step: int) -> float:
        frac = step / max(1, epochs * steps_per_epoch)
        if schedule == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * frac))
        if schedule == "multistep":
            return lr * gamma ** sum(frac >= m for m in milestones)
        return lr

    for epoch in range(start, epochs):
        model.train()
        epoch_seed = int(epoch_seeds[epoch]) if epoch_seeds is not None else seed * 1_000_003 + epoch
        gen = torch.Generator().manual_seed(epoch_seed)
        seed_dropout(model, seed_for(epoch_seed, "dropout"))  # its own generator: the other draws stay as they were
        perm = torch.randperm(n, generator=gen).to(x.device)
        tot, infos = 0.0, []
        for b, lo in enumerate(range(0, n, batch_size)):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + b)
            idx = perm[lo : lo + batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, gen)
            loss, info = loss_fn(model, xb, yb, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            infos.append(info)
        rec = {"epoch": epoch + 1, "loss": tot / n}
        for k in infos[0] if infos else {}:
            vals = [i[k] for i in infos]
            rec[k] = torch.cat(vals).tolist() if isinstance(vals[0], torch.Tensor) else sum(vals) / len(vals)
        history.append(rec)
        if checkpoint:
            checkpoint.save(epoch=epoch + 1, model=model.state_dict(), optimizer=opt.state_dict(), history=history)
        if on_epoch:
            on_epoch(rec)
    return history


def pgd_at_loss(eps: float, steps: int, step_size: float | None = None) -> StepLoss:
    """Madry et al. PGD adversarial training: CE on l_inf PGD examples (random start) crafted per batch."""
    from tenfold.components.perturb.pgd import PGD

    pgd = PGD(eps=eps, steps=steps, step_size=step_size)

    def fn(model, xb, yb, gen):
        xa = pgd.run(lambda xin: F.cross_entropy(model(xin), yb, reduction="none"), xb, generator=gen)
        return F.cross_entropy(model(xa), yb), {}

    return fn
