"""Projected gradient descent/ascent on input perturbations: one engine for attacks, poisons and training.

`PGD(...).run(loss_fn, x)` returns perturbed inputs `x + delta` with `delta` in the l_inf or l_2 ball of radius
`eps` (a float or one radius per example), restricted to a pixel `mask` and to the valid pixel range. The loss is
any differentiable function of the perturbed batch: per-example (shape [B], restarts then keep the best restart
per example) or a scalar (a batch objective such as gradient alignment; restarts keep the best batch).

Features: random start, restarts, step schedules (constant, the lab's multistep decay, cosine), expectation over
differentiable augmentations (EOT: the loss is averaged over `eot` random augmentations per step), signed
(l_inf) or normalised (l_2) steps. The engine differentiates only with respect to `delta`
(`torch.autograd.grad`), so model parameters never accumulate gradients, and it runs under
`torch.inference_mode()` callers as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

LossFn = Callable[[torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _per_example(v: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A radius (float or shape [B]) as a tensor broadcastable against x ([B, 1, 1, ...])."""
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"per-example eps must have shape ({x.shape[0]},), got {tuple(t.shape)}")
    if bool((t < 0).any()):
        raise ValueError("eps must be non-negative")
    return t.view(-1, *([1] * (x.ndim - 1)))


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))


def project(
    delta: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, norm: str, mask: torch.Tensor | None, lo: float, hi: float
) -> torch.Tensor:
    """Project onto {mask-supported delta : ||delta|| <= eps, lo <= x + delta <= hi}.

    For l_inf the box and ball projections commute, so the result is exact; for l_2 the ball projection is
    followed by the box clamp, which can only shrink the norm, so the result stays in budget."""
    if mask is not None:
        delta = delta * mask
    if norm == "linf":
        delta = torch.maximum(torch.minimum(delta, eps), -eps)
    else:
        n = _l2(delta)
        delta = delta * torch.clamp(eps / n.clamp_min(1e-12), max=1.0)
    return (x + delta).clamp(lo, hi) - x


@dataclass
class PGD:
    """Projected gradient method on input perturbations.

    eps: radius (float, or a tensor with one radius per example); steps: iterations; step_size: initial step
    (default 2.5 * eps / steps, Madry et al.); norm: `linf` (signed steps) or `l2` (normalised steps);
    restarts: independent runs, the best one is kept; schedule: step-size decay; eot: augmentations averaged per
    step; augment: differentiable augmentation `f(x, generator)`; minimize: descend instead of ascend
    (error-minimising noise, alignment poisons); clip: valid pixel range.
    """

    eps: float | torch.Tensor
    steps: int
    step_size: float | torch.Tensor | None = None
    norm: Literal["linf", "l2"] = "linf"
    random_start: bool = True
    restarts: int = 1
    schedule: Literal["constant", "multistep", "cosine"] = "constant"
    eot: int = 1
    augment: Augment | None = None
    minimize: bool = False
    clip: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {self.norm!r}")
        if self.steps < 0 or self.restarts < 1 or self.eot < 1:
            raise ValueError("steps must be >= 0, restarts and eot >= 1")
        if self.schedule not in ("constant", "multistep", "cosine"):
            raise ValueError(f"unknown step schedule {self.schedule!r}")

    def step_factor(self, i: int) -> float:
        """Multiplier of the step size at iteration i (multistep: x0.1 at 3/8, 5/8 and 7/8 of the steps,
        the MultiStepLR milestones steps/2.667, /1.6, /1.142 of the poisoning code)."""
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * i / max(1, self.steps)))
        milestones = [self.steps / 2.667, self.steps / 1.6, self.steps / 1.142]
        return 0.1 ** sum(i >= m for m in milestones)

    def _start(self, x, eps, gen) -> torch.Tensor:
        if not self.random_start:
            return torch.zeros_like(x)
        if self.norm == "linf":
            u = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device)
            return (2 * u - 1) * eps
        g = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        r = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=gen, dtype=x.dtype).to(x.device)
        return g / _l2(g).clamp_min(1e-12) * eps * r

    def _objective(self, loss_fn: LossFn, xin: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.augment is None:
            return loss_fn(xin)
        return sum(loss_fn(self.augment(xin, gen)) for _ in range(self.eot)) / self.eot

    def run(
        self,
        loss_fn: LossFn,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        select_fn: LossFn | None = None,
        on_step: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Perturb `x` to maximise (or minimise) `loss_fn`; returns the perturbed batch, detached.

        `select_fn` scores the final iterate of each restart (default: `loss_fn` without augmentation).
        `on_step(restart, step, x_adv)` is called after every step with the current iterate (detached), e.g. to
        keep snapshots: with a constant step size, the iterate after k steps is what a k-step run returns."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        lo, hi = self.clip
        sign = -1.0 if self.minimize else 1.0
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone()
            eps = _per_example(self.eps, x)
            base = _per_example(
                2.5 * torch.as_tensor(self.eps) / max(1, self.steps) if self.step_size is None else self.step_size, x
            )
            m = None if mask is None else mask.detach().clone().to(x.dtype).expand_as(x)
            best, best_score = None, None
            for r in range(self.restarts):
                delta = project(self._start(x, eps, gen), x, eps, self.norm, m, lo, hi)
                for i in range(self.steps):
                    delta.requires_grad_(True)
                    loss = self._objective(loss_fn, x + delta, gen)
                    (g,) = torch.autograd.grad(sign * loss.sum(), delta)
                    lr = base * self.step_factor(i)
                    if self.norm == "linf":
                        step = lr * g.sign()
                    else:
                        step = lr * g / _l2(g).clamp_min(1e-12)
                    delta = project(delta.detach() + step, x, eps, self.norm, m, lo, hi)
                    if on_step is not None:
                        on_step(r, i + 1, x + delta)
                delta = delta.detach()
                if self.restarts == 1:
                    return x + delta
                with torch.no_grad():
                    score = sign * (select_fn or loss_fn)(x + delta).detach()
                if best is None:
                    best, best_score = delta, score
                elif score.ndim == 0:
                    if score > best_score:
                        best, best_score = delta, score
                else:
                    better = score > best_score
                    best = torch.where(better.view(-1, *([1] * (x.ndim - 1))), delta, best)
                    best_score = torch.maximum(score, best_score)
            return x + best


class TranslateFlip:
    """Differentiable augmentation: random translation by up to `max_shift` of the side (bilinear
    `grid_sample`, zero padding) and an optional horizontal flip, one draw per example (the poisoning code's
    differentiable augmentation: about +-4 px at 32 px)."""

    def __init__(self, max_shift: float = 0.125, flip: bool = True):
        self.max_shift, self.flip = max_shift, flip

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * self.max_shift * 2  # grid units span [-1, 1]
        sx = torch.ones(b)
        if self.flip:
            sx = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = sx, 1.0
        theta[:, :, 2] = shift
        grid = torch.nn.functional.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def ce_loss(model: torch.nn.Module, y: torch.Tensor) -> LossFn:
    """Per-example cross-entropy of `model` on labels `y` (the untargeted attack loss)."""
    return lambda xin: torch.nn.functional.cross_entropy(model(xin), y, reduction="none")


def attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float | None = None,
    norm: str = "linf",
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 512,
) -> torch.Tensor:
    """Untargeted PGD on cross-entropy, batched; returns adversarial inputs (model left in eval mode)."""
    model.eval()
    pgd = PGD(eps=eps, steps=steps, step_size=step_size, norm=norm, restarts=restarts)
    gen = torch.Generator().manual_seed(seed)
    out = [
        pgd.run(ce_loss(model, y[i : i + batch_size]), x[i : i + batch_size], generator=gen)
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else x.clone()


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = sum(
        int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return correct / max(1, len(x))


def robust_accuracy(model, x, y, eps, steps, step_size=None, norm="linf", restarts=1, seed=0) -> float:
    """Accuracy under the untargeted PGD attack above."""
    return accuracy(model, attack(model, x, y, eps, steps, step_size, norm, restarts, seed), y)
