"""GradInit (Zhu et al., arXiv:2102.08098, Algorithm 1) with `torch.func.functional_call`.

Every parameter tensor p0 of the model gets one scalar scale alpha (init 1); the model is evaluated with
parameters alpha * p0 through `functional_call`, so no module parameter is deleted or replaced. One iteration:

1. draw a batch S = S0 + S1 (two halves) and g = grad_theta L(S; theta) with the graph kept;
2. if ||g|| > gamma (L2 norm for the SGD variant, L1 for Adam): a constraint step minimising ||g|| in alpha;
3. otherwise an objective step minimising L(S~; theta - eta * A[g]) / eta in alpha, with A[g] = g / ||g||_2
   (SGD) or sign(g) (Adam's first step) held constant (the official code detaches it: the scales' gradient is
   <grad L(S~; theta'), p0>, first order), S~ = S0 + a fresh half batch (or disjoint from S when overlap is off);
4. the scales take a RescaleAdam step (per-scale gradient clipping, separate first moments for the two kinds of
   step), then are clamped to [min_scale, max_scale] (biases to >= 0, LayerNorm weights also to <= max_scale).

Finally the scales are multiplied into the module's parameters in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

Batch = tuple[torch.Tensor, torch.Tensor]


class RescaleAdam:
    """Adam on a dict of scalar scales, with per-scale gradient clipping and projection.

    The constraint and objective steps keep separate first moments (their gradients point in unrelated
    directions) and share the second moment, as in the official optimiser.
    """

    def __init__(
        self,
        scales: dict[str, torch.Tensor],
        lr: float,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        grad_clip: float = 1.0,
        lower: dict[str, float] | None = None,
        upper: dict[str, float | None] | None = None,
    ):
        self.scales, self.lr, self.betas, self.eps, self.clip = scales, lr, betas, eps, grad_clip
        self.lower = lower or {k: 0.0 for k in scales}
        self.upper = upper or {k: None for k in scales}
        self.m = {kind: {k: torch.zeros_like(v) for k, v in scales.items()} for kind in ("objective", "constraint")}
        self.v = {k: torch.zeros_like(v) for k, v in scales.items()}
        self.t = {"objective": 0, "constraint": 0}

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor], kind: str) -> None:
        b1, b2 = self.betas
        self.t[kind] += 1
        t = self.t[kind]
        for k, a in self.scales.items():
            g = grads.get(k)
            if g is None:
                continue
            g = g.clamp(-self.clip, self.clip)
            m = self.m[kind][k].mul_(b1).add_(g, alpha=1 - b1)
            v = self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            step = self.lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + self.eps)
            a.sub_(step).clamp_(min=self.lower[k], max=self.upper[k])


def scale_bounds(model: nn.Module, min_scale: float, max_scale: float | None):
    """Lower/upper bound per parameter name: weights >= min_scale, biases >= 0, LayerNorm weights <= max_scale."""
    lower, upper = {}, {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            name = f"{mname}.{pname}" if mname else pname
            lower[name] = 0.0 if pname.endswith("bias") else min_scale
            upper[name] = max_scale if isinstance(mod, nn.LayerNorm) and pname == "weight" else None
    return lower, upper


@dataclass
class GradInitResult:
    scales: dict[str, float]
    history: list[dict] = field(default_factory=list)

    @property
    def constraint_share(self) -> float:
        return sum(h["constraint"] for h in self.history) / max(1, len(self.history))


def _norm(grads, alg: str) -> torch.Tensor:
    if alg == "sgd":
        return torch.sqrt(sum((g * g).sum() for g in grads))
    return sum(g.abs().sum() for g in grads)


def gradinit(
    model: nn.Module,
    batches: Iterator[Batch],
    loss_fn: Callable,
    cfg,
    log_every: int = 0,
    on_log: Callable[[dict], None] | None = None,
) -> GradInitResult:
    """Learn the scales of `model` (modified in place) with GradInit; `cfg` is a `GradInitConfig`.

    `batches` yields (x, y) of `cfg.batch_size` examples; each iteration consumes one batch for S and the first
    half of the next one as the fresh half batch of S~ (the next S starts with a new batch).
    """
    was_training = model.training
    model.eval()  # dropout off during GradInit (the networks here have no batch norm)
    base = {k: p.detach().clone() for k, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    scales = {k: torch.ones((), device=p.device) for k, p in base.items()}
    lower, upper = scale_bounds(model, cfg.min_scale, cfg.max_scale)
    opt = RescaleAdam(scales, cfg.lr, betas=(0.9, cfg.beta2), grad_clip=cfg.grad_clip, lower=lower, upper=upper)
    names = list(base)
    history = []

    def loss_at(theta, x, y):
        return loss_fn(functional_call(model, (theta, buffers), (x,)), y)

    for it in range(cfg.iters):
        x, y = next(batches)
        xf, yf = next(batches)
        half = len(x) // 2
        if cfg.overlap:
            x2, y2 = torch.cat([x[:half], xf[:half]]), torch.cat([y[:half], yf[:half]])
        else:
            x2, y2 = xf, yf
        alphas = {k: scales[k].detach().requires_grad_(True) for k in names}
        theta = {k: alphas[k] * base[k] for k in names}
        loss = loss_at(theta, x, y)
        grads = torch.autograd.grad(loss, [theta[k] for k in names], create_graph=True)
        gnorm = _norm(grads, cfg.alg)
        constraint = bool(gnorm.item() > cfg.gamma)
        if constraint:
            target = gnorm
        else:
            # the step direction is a constant (the official code: `m.weight - trust * grad.detach()` for SGD,
            # `grad.sign()` for Adam): the scales' gradient flows through theta only, not through A[g]
            if cfg.alg == "sgd":
                l2 = torch.sqrt(sum((g.detach() * g.detach()).sum() for g in grads))
                step = {k: g.detach() / l2 for k, g in zip(names, grads)}
            else:
                step = {k: torch.sign(g.detach()) for k, g in zip(names, grads)}
            theta2 = {k: theta[k] - cfg.eta * step[k] for k in names}
            target = loss_at(theta2, x2, y2) / cfg.eta
        ga = torch.autograd.grad(target, [alphas[k] for k in names], allow_unused=True)
        opt.step({k: g for k, g in zip(names, ga) if g is not None}, "constraint" if constraint else "objective")
        rec = {"iter": it, "loss": float(loss.detach()), "grad_norm": float(gnorm.detach()), "constraint": constraint}
        history.append(rec)
        if on_log and log_every and (it % log_every == 0 or it == cfg.iters - 1):
            on_log(rec)
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.mul_(scales[k])
    model.train(was_training)
    return GradInitResult({k: float(v) for k, v in scales.items()}, history)


def batch_stream(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> Iterator[Batch]:
    """Endless stream of shuffled batches (a new seeded permutation per pass)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size].to(x.device)
            yield x[idx], y[idx]


def sample_stream(sampler: Callable[[torch.Generator], Batch], seed: int) -> Iterator[Batch]:
    """Endless stream of freshly generated batches (for the generated sequence task)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield sampler(gen)


def scale_summary(scales: dict[str, float]) -> dict:
    """min / mean / max of the learned scales per kind of tensor (the official code logs the same statistics):
    embeddings (`tok.`, `pos.`), LayerNorm weights, biases, other weights; each tensor counted once."""
    kinds = {
        "embedding": lambda k: k.startswith(("tok.", "pos.")),
        "layernorm": lambda k: ".ln" in k and "weight" in k,
        "bias": lambda k: k.endswith("bias"),
        "weight": lambda k: k.endswith("weight"),
    }
    out, seen = {}, set()
    for kind, pick in kinds.items():
        vals = [v for k, v in scales.items() if k not in seen and pick(k)]
        seen |= {k for k in scales if pick(k)}
        if vals:
            out[kind] = {"min": min(vals), "mean": sum(vals) / len(vals), "max": max(vals), "n": len(vals)}
    return out
