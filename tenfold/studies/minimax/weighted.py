"""Learnable weighted minimax risk (Zeng, Zhu, Goldstein, Huang, AAAI 2021, arXiv:2010.12989).

Importance weight of an adversarial example (as in the official code, `mode='margin'`):
    m = p_y - max_{j != y} p_j        (probability margin on the adversarial example)
    w = exp(-alpha * m)               (not normalised, not detached)
Weighted AT:      inner PGD maximises sum(w * CE), outer loss mean(w * CE(f(x_adv), y)).
Weighted TRADES:  CE(f(x), y) + beta * mean(w * KL(f(x_adv) || f(x))), inner PGD maximises sum(w * KL).
alpha = 0 recovers plain PGD-AT / TRADES. Evaluation under non-uniform attacks: the attacker's PGD loss is the
weighted CE with alpha_pgd, and the weighted robust accuracy is sum(w_i * correct_i) / sum(w_i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tenfold.components.perturb.models import Standardize, build
from tenfold.components.perturb.pgd import PGD
from tenfold.components.perturb.train import StepLoss
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seeded

TRAINERS = ("at", "weighted_at", "trades", "weighted_trades")


def make_model(cfg, x: torch.Tensor, num_classes: int, seed: int) -> torch.nn.Module:
    """`cfg.arch` (a MinimaxTrain) with initial weights from `seed`; with `cfg.normalize`, wrapped in a
    per-channel standardisation fitted on the training images `x` (budgets stay in pixel units)."""
    model = seeded(seed, lambda: build(cfg.arch, x.shape[1], num_classes, x.shape[-1]))
    return Standardize.fitted(model, x) if cfg.normalize else model


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """p_y - max_{j != y} p_j in probability space, per example (in [-1, 1])."""
    p = logits.softmax(1)
    py = p.gather(1, y[:, None]).squeeze(1)
    other = p.scatter(1, y[:, None], float("-inf")).amax(1)
    return py - other


def importance_weights(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """w = exp(-alpha * margin): larger for misclassified / low-margin (vulnerable) examples."""
    return torch.exp(-alpha * margin(logits, y))


def weighted_ce(model, y: torch.Tensor, alpha: float):
    """Per-example exp(-alpha * m) * CE: the weighted attack objective (alpha = 0: plain CE)."""

    def fn(xin):
        z = model(xin)
        return importance_weights(z, y, alpha) * F.cross_entropy(z, y, reduction="none")

    return fn


def warmup_fraction(step: int, warmup_steps: int) -> float:
    """Share of the full budget used at optimiser step `step` (0-based): linear from 1/warmup_steps to 1."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


def checkpoint_epoch(checkpoint: Checkpoint | None) -> int:
    """Epochs already done in a matching `fit` checkpoint (0 if none or another run's), so a resumed run picks
    up the eps warm-up where it stopped."""
    state = checkpoint.load() if checkpoint else None
    return 0 if state is None else int(state["epoch"])


def trainer_loss(
    kind: str,
    eps: float,
    steps: int,
    step_size: float,
    alpha: float,
    beta: float = 5.0,
    warmup_steps: int = 0,
    start_step: int = 0,
) -> StepLoss:
    """The per-batch loss of one trainer (see TRAINERS); returns (loss, {"weights": w}) for the weight plots.

    eps warm-up: over the first `warmup_steps` optimiser steps the attack budget and step size grow linearly to
    `eps` and `step_size` (the returned loss counts its calls; `start_step` is the step a resumed run starts at).
    Both trainers of a comparison get the same schedule."""
    if kind not in TRAINERS:
        raise ValueError(f"unknown trainer {kind!r}; choose from {', '.join(TRAINERS)}")
    a = alpha if kind.startswith("weighted") else 0.0
    counter = [start_step]

    def budget() -> tuple[float, float]:
        frac = warmup_fraction(counter[0], warmup_steps)
        counter[0] += 1
        return eps * frac, step_size * frac

    if kind.endswith("at"):

        def fn(model, xb, yb, gen):
            e, s = budget()
            xa = PGD(eps=e, steps=steps, step_size=s).run(weighted_ce(model, yb, a), xb, generator=gen)
            z = model(xa)
            w = importance_weights(z, yb, a)
            return (w * F.cross_entropy(z, yb, reduction="none")).mean(), {"weights": w.detach().cpu()}

        return fn

    def kl(z_adv, p_nat):
        return F.kl_div(F.log_softmax(z_adv, 1), p_nat, reduction="none").sum(1)

    def fn(model, xb, yb, gen):
        e, s = budget()
        with torch.no_grad():
            p_nat = model(xb).softmax(1)

        def inner(xin):
            z = model(xin)
            return importance_weights(z, yb, a) * kl(z, p_nat)

        # TRADES starts from a small Gaussian perturbation: the KL gradient vanishes at x itself
        start = (xb + 0.001 * torch.randn(xb.shape, generator=gen).to(xb.device)).clamp(0, 1)
        xa = PGD(eps=e, steps=steps, step_size=s, random_start=False).run(inner, start, generator=gen)
        xa = xb + (xa - xb).clamp(-e, e)
        z_nat, z_adv = model(xb), model(xa)
        w = importance_weights(z_adv, yb, a)
        loss = F.cross_entropy(z_nat, yb) + beta * (w * kl(z_adv, z_nat.softmax(1))).mean()
        return loss, {"weights": w.detach().cpu()}

    return fn


def nonuniform_eval(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    restarts: int,
    alphas: list[float],
    seed: int = 0,
    batch_size: int = 500,
    return_correct: bool = False,
):
    """Weighted robust accuracy under the non-uniform attack for each alpha_pgd (0 = ordinary robust accuracy).

    For each alpha_pgd, PGD maximises exp(-alpha_pgd * m) * CE with `restarts` random restarts, keeping per
    example the restart with the largest CE; the score is sum(w * correct) / sum(w) with w on the final
    adversarial example. With `return_correct`, also returns {alpha: per-example 0/1 robust correctness}."""
    model.eval()
    out, correct = {}, {}
    for alpha in alphas:
        gen = torch.Generator().manual_seed(seed)
        pgd = PGD(eps=eps, steps=steps, step_size=step_size, restarts=restarts)
        num = den = 0.0
        hits = []
        for lo in range(0, len(x), batch_size):
            xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
            xa = pgd.run(
                weighted_ce(model, yb, alpha),
                xb,
                generator=gen,
                select_fn=lambda xin, yb=yb: F.cross_entropy(model(xin), yb, reduction="none"),
            )
            with torch.no_grad():
                z = model(xa)
                w = importance_weights(z, yb, alpha)
                ok = (z.argmax(1) == yb).float()
                hits.append(ok.cpu())
                num += float((w * ok).sum())
                den += float(w.sum())
        out[alpha] = num / den
        correct[alpha] = torch.cat(hits)
    return (out, correct) if return_correct else out


def shift_weights(y: torch.Tensor, classes: list[int], mass: float, num_classes: int) -> torch.Tensor:
    """Per-example weights of a shifted test distribution: the listed classes together carry `mass` of the
    probability, the other classes the rest, uniformly over the examples within each group (label shift)."""
    y = y.cpu()
    inside = torch.zeros(num_classes, dtype=torch.bool)
    inside[list(classes)] = True
    sel = inside[y]
    n_in, n_out = int(sel.sum()), int((~sel).sum())
    if n_in == 0:
        raise ValueError(f"no test example has a class in {classes}")
    w = torch.where(sel, mass / n_in, (1 - mass) / max(1, n_out))
    if n_out == 0:
        w = torch.full_like(w, 1.0 / n_in)
    return w / w.sum()


def shifted_accuracy(correct: torch.Tensor, weights: torch.Tensor) -> float:
    """Accuracy under a re-weighted test distribution: sum(w * correct) / sum(w)."""
    return float((weights * correct.float()).sum() / weights.sum())


def label_shift(
    uniform_correct: dict, y: torch.Tensor, k: int, mass: float, num_classes: int
) -> tuple[list[int], dict]:
    """The shifted test distribution: the `k` classes with the lowest uniform robust accuracy pooled over every
    run in `uniform_correct` ({key: per-example 0/1 correctness}; so the choice favours no trainer) carry `mass`
    of the test probability. Returns (those classes, {key: accuracy on the shifted distribution})."""
    pooled = torch.stack(list(uniform_correct.values())).mean(0)
    classes = vulnerable_classes(pooled, y, k, num_classes)
    w = shift_weights(y, classes, mass, num_classes)
    return classes, {key: shifted_accuracy(c, w) for key, c in uniform_correct.items()}


def vulnerable_classes(correct: torch.Tensor, y: torch.Tensor, k: int, num_classes: int) -> list[int]:
    """The k classes with the lowest robust accuracy (ties by class id): where an attacker concentrates."""
    y = y.cpu()
    acc = [(float(correct[y == c].float().mean()) if bool((y == c).any()) else 1.0, c) for c in range(num_classes)]
    return sorted(c for _, c in sorted(acc)[:k])
