"""Backdoor attacks: a trigger at test time sends inputs to the adversarial class.

BadNets (Gu et al., arXiv:1708.06733): dirty-label; stamp the patch on training images of other classes and relabel
them as the adversarial class; the trigger is meant for every other class.
Patch backdoor as in the lab's code (`--recipe patch`, `forest/witchcoven/witch_patch.py` of
JonasGeiping/data-poisoning, whose mixing defenses are the augmentation paper's): clean-label; a random Bernoulli
patch (every channel) replaces the bottom-right corner of `budget` training images *of the adversarial class*
(labels kept); at test time the patch is stamped on images of one source class (the lab's target class), which
should become the adversarial class.
Clean-label backdoor (Turner et al., arXiv:1912.02771): images *of* the adversarial class are first made hard to
learn by an untargeted PGD perturbation on the surrogate (eps, l_inf), then stamped with the trigger; labels stay
correct, so the net leans on the trigger.
Hidden-trigger backdoor (Saha et al., arXiv:1910.00033): images of the adversarial class, within eps, whose
features collide with those of *patched source-class* images; the trigger never appears in the training data.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.components.attacks.base import (
    CraftContext,
    Poison,
    project_linf,
    random_trigger,
    sample_poison_indices,
    stamp,
)
from tenfold.components.attacks.registry import register_attack
from tenfold.core.seeds import seed_for


def _trigger(ctx: CraftContext, size: int | None = None) -> np.ndarray:
    return random_trigger(ctx.x_train.shape[1], size or ctx.patch_size, ctx.seed)


def _every_class(ctx: CraftContext):
    """The setup with the trigger meant for every class but the adversarial one (no single source class)."""
    return dataclasses.replace(ctx.setup, source_class=-1)


@register_attack(
    "badnets",
    goal="backdoor",
    label="dirty-label",
    knowledge="from-scratch",
    mechanism="trigger patch",
    norm="patch",
    victim="from-scratch",
    paper="BadNets, arXiv:1708.06733",
)
def craft_badnets(ctx: CraftContext, cfg) -> Poison:
    """`cfg.fraction`: poisoned share of the training set (BadNets is usually run at 5-10%); None = the budget."""
    trig = _trigger(ctx)
    n = ctx.n_poison if cfg is None or cfg.fraction is None else int(round(cfg.fraction * len(ctx.y_train)))
    idx = sample_poison_indices(ctx.y_train, n, ctx.seed, exclude_cls=ctx.setup.adv_class)
    y = np.full(len(idx), ctx.setup.adv_class, dtype=ctx.y_train.dtype)
    return Poison("badnets", "backdoor", _every_class(ctx), idx, stamp(ctx.x_train[idx], trig), y, trig)


@register_attack(
    "patch",
    goal="backdoor",
    label="clean-label",
    knowledge="from-scratch",
    mechanism="trigger patch",
    norm="patch",
    victim="from-scratch",
    paper="lab `--recipe patch` (BadNets-style patch, clean-label), JonasGeiping/data-poisoning",
)
def craft_patch(ctx: CraftContext, cfg) -> Poison:
    """`cfg.fraction`: poisoned share of the training set (None = the budget); `cfg.size`: patch side in pixels
    (None = the budget's patch size; the lab passes it as `--eps`). Poisons are images of the adversarial class,
    labels kept; the trigger is for test images of `setup.source_class`."""
    size = None if cfg is None else cfg.size
    trig = _trigger(ctx, size)
    n = ctx.n_poison if cfg is None or cfg.fraction is None else int(round(cfg.fraction * len(ctx.y_train)))
    idx = sample_poison_indices(ctx.y_train, n, ctx.seed, cls=ctx.setup.adv_class)
    return Poison("patch", "backdoor", ctx.setup, idx, stamp(ctx.x_train[idx], trig), ctx.y_train[idx].copy(), trig)


@register_attack(
    "clean_label_backdoor",
    goal="backdoor",
    label="clean-label",
    knowledge="grey-box",
    mechanism="error-maximizing perturbation",
    norm="linf",
    victim="from-scratch",
    paper="Label-consistent backdoor, arXiv:1912.02771",
)
def craft_clean_label(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: steps, step (PGD step in units of eps)."""
    trig, dev, model = _trigger(ctx), ctx.device, ctx.surrogate.to(ctx.device).eval()
    idx = sample_poison_indices(ctx.y_train, ctx.n_poison, ctx.seed, cls=ctx.setup.adv_class)
    xb = torch.as_tensor(ctx.x_train[idx]).to(dev)
    yb = torch.as_tensor(ctx.y_train[idx]).to(dev)
    x = xb.clone()
    for _ in range(cfg.steps):
        x.requires_grad_(True)
        g = torch.autograd.grad(F.cross_entropy(model(x), yb), x)[0]
        x = project_linf(x.detach() + cfg.step * ctx.eps * g.sign(), xb, ctx.eps)
        ctx.tick()
    return Poison(
        "clean_label_backdoor",
        "backdoor",
        _every_class(ctx),
        idx,
        stamp(x.cpu().numpy(), trig),
        ctx.y_train[idx].copy(),
        trig,
    )


@register_attack(
    "hidden_trigger",
    goal="backdoor",
    label="clean-label",
    knowledge="white-box",
    mechanism="feature collision",
    norm="linf",
    victim="fine-tune",
    paper="Hidden trigger backdoor, arXiv:1910.00033",
)
def craft_hidden_trigger(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: iters, lr (Adam). Each poison is paired with a patched source image (pairing re-drawn each pass
    as in Saha et al.'s greedy assignment, here simply a seeded permutation)."""
    s, trig, dev, model = ctx.setup, _trigger(ctx), ctx.device, ctx.surrogate.to(ctx.device).eval()
    idx = sample_poison_indices(ctx.y_train, ctx.n_poison, ctx.seed, cls=s.adv_class)
    src = sample_poison_indices(
        ctx.y_train, ctx.n_poison, seed_for(ctx.seed, "attacks", "hidden_trigger", "source"), cls=s.source_class
    )
    xb = torch.as_tensor(ctx.x_train[idx]).to(dev)
    with torch.no_grad():
        fs = model.features(torch.as_tensor(stamp(ctx.x_train[src], trig)).to(dev))
    gen = torch.Generator().manual_seed(ctx.seed)
    delta = torch.zeros_like(xb, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    for _ in range(cfg.iters):
        perm = torch.randperm(len(idx), generator=gen).to(dev)
        loss = ((model.features(xb + delta) - fs[perm]) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        with torch.no_grad():
            delta.copy_(project_linf(xb + delta, xb, ctx.eps) - xb)
        ctx.tick()
    x = project_linf(xb + delta.detach(), xb, ctx.eps).cpu().numpy()
    return Poison("hidden_trigger", "backdoor", s, idx, x, ctx.y_train[idx].copy(), trig)
