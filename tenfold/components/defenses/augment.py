"""Augmentation defenses (Borgnia et al., arXiv:2011.09527), following the lab's `mixing_data_augmentations.py`:

* mixup: one mixing weight per batch, lambda ~ Dirichlet(alpha * 1_nway), each component a permutation of the batch;
  loss = sum_k lambda_k CE(out, y_perm_k) (done here with soft labels, which is the same loss).
* CutMix: applied to a random half of the batches (p = 0.5); lambda ~ Beta(alpha, alpha); one box per batch of side
  sqrt(1 - lambda) W at a uniform centre, clipped; lambda reset to the exact pixel ratio; mixed-label loss.
* cutout: a zeroed square of side sqrt(1 - 0.66 alpha) W per image at a uniform centre; labels unchanged.
* MaxUp (with cutout): `ntrials` augmented copies per image, per-example maximum loss, after plain warm-up epochs.

torchvision.transforms.v2.MixUp/CutMix are not used: they draw from torch's global RNG (so concurrent victims in the
threaded task runner would not be reproducible), have no p = 0.5 CutMix and no k-way mixup or MaxUp. Every draw
here comes from the training loop's own `torch.Generator`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tenfold.components.defenses.registry import register_defense
from tenfold.components.victims import soft_ce, train


def _soft(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return y if y.dtype.is_floating_point else F.one_hot(y, num_classes).float()


def mixup(x, y, gen, num_classes: int, alpha: float = 1.0, nway: int = 2):
    lam = _dirichlet(nway, alpha, gen)
    ys = _soft(y, num_classes)
    perms = [torch.arange(len(x))] + [torch.randperm(len(x), generator=gen) for _ in range(nway - 1)]
    xm = sum(lam[k] * x[perms[k].to(x.device)] for k in range(nway))
    ym = sum(lam[k] * ys[perms[k].to(x.device)] for k in range(nway))
    return xm, ym


def _dirichlet(n: int, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """Dirichlet(alpha 1_n) from normalised Gamma draws, using only `gen` (torch._standard_gamma takes no generator,
    so Gamma(alpha) is drawn as a sum of exponentials for integer alpha, else via Marsaglia-Tsang)."""
    g = torch.stack([_gamma(alpha, gen) for _ in range(n)])
    return g / g.sum()


def _gamma(alpha: float, gen: torch.Generator) -> torch.Tensor:
    boost = 1.0
    if alpha < 1:  # Gamma(a) = Gamma(a + 1) * U^(1/a)
        boost = float(torch.rand(1, generator=gen)) ** (1 / alpha)
        alpha += 1
    d = alpha - 1 / 3
    c = 1 / math.sqrt(9 * d)
    while True:
        z = float(torch.randn(1, generator=gen))
        v = (1 + c * z) ** 3
        u = float(torch.rand(1, generator=gen))
        if v > 0 and math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return torch.tensor(d * v * boost)


def cutmix(x, y, gen, num_classes: int, alpha: float = 1.0, prob: float = 0.5):
    ys = _soft(y, num_classes)
    if float(torch.rand(1, generator=gen)) >= prob:
        return x, ys
    g1, g2 = _gamma(alpha, gen), _gamma(alpha, gen)
    lam = float(g1 / (g1 + g2))
    h, w = x.shape[-2:]
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(torch.randint(h, (1,), generator=gen)), int(torch.randint(w, (1,), generator=gen))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    mask = torch.zeros(h, w, device=x.device, dtype=x.dtype)
    mask[y0:y1, x0:x1] = 1
    xm = x * (1 - mask) + x[perm] * mask
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return xm, lam * ys + (1 - lam) * ys[perm]


def cutout(x, gen, alpha: float = 1.0):
    h, w = x.shape[-2:]
    side = math.sqrt(1 - 0.66 * alpha)
    sh, sw = int(h * side), int(w * side)
    n = len(x)
    cy = torch.randint(h, (n,), generator=gen)
    cx = torch.randint(w, (n,), generator=gen)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    box = ((rows - cy.view(n, 1, 1)).abs() <= sh // 2) & ((cols - cx.view(n, 1, 1)).abs() <= sw // 2)
    return x * (~box).unsqueeze(1).to(x)


class AugmentationDefense:
    """A training-time defense: trains the victim with the mixing inside the loss; reports the mixing used."""

    def __init__(self, name: str, loss_fn, report: dict, mix=None):
        self.name, self.loss_fn, self.report, self.mix = name, loss_fn, report, mix

    def fit(self, model, x, y, tcfg, device, seed):
        return train(model, x, y, tcfg, device, seed, loss_fn=self.loss_fn), dict(self.report)


def _mixing_defense(name: str, mix, report: dict) -> AugmentationDefense:
    def loss(model, x, y, epoch, gen):
        xm, ym = mix(x, y, gen)
        return soft_ce(model(xm), ym).mean()

    return AugmentationDefense(name, loss, report, mix)


@register_defense(
    "mixup",
    stage="augmentation",
    kind="train",
    needs_clean_data=False,
    reports="mixing weights (alpha, nway)",
    paper="mixup arXiv:1710.09412; lab data-poisoning",
)
def build_mixup(cfg, num_classes: int) -> AugmentationDefense:
    return _mixing_defense(
        "mixup",
        lambda x, y, g: mixup(x, y, g, num_classes, cfg.alpha, cfg.nway),
        {"alpha": cfg.alpha, "nway": cfg.nway},
    )


@register_defense(
    "cutmix",
    stage="augmentation",
    kind="train",
    needs_clean_data=False,
    reports="CutMix alpha and application probability",
    paper="CutMix arXiv:1905.04899; lab",
)
def build_cutmix(cfg, num_classes: int) -> AugmentationDefense:
    return _mixing_defense(
        "cutmix",
        lambda x, y, g: cutmix(x, y, g, num_classes, cfg.alpha, cfg.prob),
        {"alpha": cfg.alpha, "prob": cfg.prob},
    )


@register_defense(
    "cutout",
    stage="augmentation",
    kind="train",
    needs_clean_data=False,
    reports="cutout square side",
    paper="Cutout arXiv:1708.04552; lab",
)
def build_cutout(cfg, num_classes: int) -> AugmentationDefense:
    def loss(model, x, y, epoch, gen):
        return soft_ce(model(cutout(x, gen, cfg.alpha)), y).mean()

    return AugmentationDefense("cutout", loss, {"alpha": cfg.alpha, "side_fraction": math.sqrt(1 - 0.66 * cfg.alpha)})


@register_defense(
    "maxup",
    stage="augmentation",
    kind="train",
    needs_clean_data=False,
    reports="trials and warm-up epochs",
    paper="MaxUp arXiv:2002.09024; lab maxup-cutout",
)
def build_maxup(cfg, num_classes: int) -> AugmentationDefense:
    def loss(model, x, y, epoch, gen):
        if epoch < cfg.warmup_epochs:
            return soft_ce(model(x), y).mean()
        losses = torch.stack([soft_ce(model(cutout(x, gen, cfg.alpha)), y) for _ in range(cfg.ntrials)])
        return losses.max(0).values.mean()

    return AugmentationDefense("maxup", loss, {"ntrials": cfg.ntrials, "warmup_epochs": cfg.warmup_epochs})
