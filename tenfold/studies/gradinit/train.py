"""Ordinary training after the initialisation: image classifiers (SGD + cosine) and the sequence model (Adam)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tenfold.core.seeds import generator, seed_dropout, seed_for
from tenfold.studies.gradinit.seqtask import make_batch, token_loss


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel standardisation with the training set's mean and std (the paper's `transforms.Normalize`).

    Raw [0, 1] MNIST pixels (mean 0.13, std 0.31) shrink the signal of the no-BN networks further; the official
    code normalises CIFAR-10 with its channel statistics before every model.
    """
    axes = (0, *range(2, x_train.ndim))
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    if not np.all(std > 0):
        raise ValueError("standardize: a channel of the training images is constant (std 0)")
    return ((x_train - mean) / std).astype(x_train.dtype), ((x_test - mean) / std).astype(x_test.dtype)


@torch.no_grad()
def evaluate_images(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a tensor dataset; non-finite logits count as wrong with loss inf."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch])
        loss += F.cross_entropy(out, y[i : i + batch], reduction="sum").item()
        correct += (out.argmax(1) == y[i : i + batch]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def param_groups(model: nn.Module, lr: float, bias_lr_factor: float = 1.0) -> list[dict]:
    """One SGD group for the weights at `lr` and, when `bias_lr_factor` != 1, one for the biases at
    `lr * bias_lr_factor` (the official code trains the biases of no-BN ResNets at base_lr / 10)."""
    if bias_lr_factor == 1.0:
        return [{"params": list(model.parameters()), "lr": lr}]
    named = list(model.named_parameters())
    biases = [p for n, p in named if n.endswith("bias")]
    others = [p for n, p in named if not n.endswith("bias")]
    return [{"params": others, "lr": lr}, {"params": biases, "lr": lr * bias_lr_factor}]


def cosine_factor(step: int, steps_per_epoch: int, cfg) -> float:
    """The lr multiplier at iteration `step`: cosine from 1 to 0 over `cfg.cosine_epochs` (null: `cfg.epochs`)."""
    total = steps_per_epoch * max(cfg.epochs, cfg.cosine_epochs or 0)
    return 0.5 * (1 + math.cos(math.pi * step / total))


def train_images(
    model: nn.Module, xtr, ytr, xte, yte, cfg, seed: int, on_epoch=None, bias_lr_factor: float = 1.0
) -> list[dict]:
    """SGD (momentum, weight decay), cosine annealing per iteration to 0 over `cfg.cosine_epochs` (null: the
    epochs trained; the paper anneals over 200 epochs, so its first epoch runs at nearly the full lr), grad-norm
    clipping; biases at `cfg.lr * bias_lr_factor` (same cosine schedule).

    Returns one record per epoch with train loss, test loss, test accuracy and the mean pre-clipping gradient norm;
    a diverged run (non-finite loss) stops early and is recorded as such. With `cfg.first_epoch_points` = k > 0 the
    first epoch's record also holds a `curve`: test loss/accuracy at k evenly spaced steps (the last one the end of
    the epoch) with the mean training loss and gradient norm of the steps since the previous point.
    """
    opt = torch.optim.SGD(
        param_groups(model, cfg.lr, bias_lr_factor), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = max(1, len(xtr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_factor(s, steps_per_epoch, cfg))
    gen = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    k = getattr(cfg, "first_epoch_points", 0) or 0
    points = sorted({max(1, round(steps_per_epoch * (i + 1) / k)) for i in range(k)}) if k else []
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(xtr), generator=gen).to(xtr.device)
        losses, norms, curve, last = [], [], [], 0
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # the norm before clipping (max_norm inf = no clipping: the gradients are multiplied by exactly 1)
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), cfg.clip or float("inf"))))
            opt.step()
            sched.step()
            losses.append(loss.item())
            if epoch == 1 and s + 1 in points and s + 1 < steps_per_epoch:
                tl, ta = evaluate_images(model, xte, yte)
                curve.append(
                    {
                        "step": s + 1,
                        "test_loss": tl,
                        "test_acc": ta,
                        "train_loss": float(np.mean(losses[last:])),
                        "grad_norm": float(np.mean(norms[last:])),
                    }
                )
                last = s + 1
        test_loss, test_acc = evaluate_images(model, xte, yte)
        rec = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "grad_norm": float(np.mean(norms)),
            "diverged": not np.isfinite(np.mean(losses)),
        }
        if epoch == 1 and points:
            rec["curve"] = curve + [
                {
                    "step": steps_per_epoch,
                    "test_loss": test_loss,
                    "test_acc": test_acc,
                    "train_loss": float(np.mean(losses[last:])),
                    "grad_norm": float(np.mean(norms[last:])),
                }
            ]
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        if rec["diverged"]:
            break
    return history


@torch.no_grad()
def evaluate_seq(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    out = model(x)
    loss = token_loss(out, y).item()
    acc = (out.argmax(-1) == y).float().mean().item()
    model.train()
    return loss, acc


def diverged(losses: list[float], window: int, reference: float | None = None, tol: float = 0.02) -> bool:
    """A run diverged when a loss is non-finite or the mean of its last `window` training losses is not below
    (1 - tol) x its starting point: the first step's loss, or `reference` if lower (for the sequence task ln(vocab),
    the loss of a constant uniform prediction; a random init starts slightly above it)."""
    if not losses:
        return False
    if not np.all(np.isfinite(losses)):
        return True
    start = losses[0] if reference is None else min(losses[0], reference)
    return bool(np.mean(losses[-window:]) >= (1 - tol) * start)


def train_seq(model: nn.Module, task, cfg, lr: float, device, seed: int, eval_every: int = 50) -> dict:
    """Adam (0.9, 0.98) at a constant `lr` with no warmup on fresh generated batches; held-out accuracy curve,
    the first-step loss, the mean loss of the last `cfg.diverge_window` steps and the divergence verdict.

    Training batches, the held-out set and the dropout masks each get their own seed from `seed` (the held-out set
    is the same for every run of one seed)."""
    gen = generator(seed_for(seed, "gradinit", "seq_batches"))
    test_gen = generator(seed_for(seed, "gradinit", "seq_test"))
    xte, yte = (t.to(device) for t in make_batch(task.task, task.n_test, task.length, task.vocab, test_gen))
    # dropout masks independent of other threads' use of the global RNG (a no-op for a net without dropout)
    seed_dropout(model, seed_for(seed, "gradinit", "dropout"))
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    curve, losses = [], []
    model.train()
    for step in range(1, cfg.steps + 1):
        x, y = (t.to(device) for t in make_batch(task.task, cfg.batch_size, task.length, task.vocab, gen))
        loss = token_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            break
        if step % eval_every == 0 or step == cfg.steps:
            tl, ta = evaluate_seq(model, xte, yte)
            curve.append(
                {"step": step, "train_loss": float(np.mean(losses[-eval_every:])), "test_loss": tl, "test_acc": ta}
            )
    final = curve[-1] if curve and np.isfinite(losses[-1]) else {"test_loss": float("inf"), "test_acc": 0.0}
    window = cfg.diverge_window
    return {
        "lr": lr,
        "curve": curve,
        "final_test_acc": final["test_acc"],
        "final_test_loss": final["test_loss"],
        "initial_loss": float(losses[0]),
        "final_train_loss": float(np.mean(losses[-window:])),
        "diverged": diverged(losses, window, math.log(task.vocab), cfg.diverge_tolerance),
        "trains": bool(final["test_acc"] >= cfg.trains_threshold),
    }
