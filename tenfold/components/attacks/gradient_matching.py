"""Witches' Brew (Geiping et al., arXiv:2009.02276): clean-label targeted poisoning by gradient matching.

The poisons (images of the adversarial class, labels unchanged) are perturbed inside an l_inf ball so that the
training gradient they produce aligns with the gradient that would flip the target to the adversarial class:

    g_t = grad_theta CE(F(x_target), y_adv)
    loss(delta) = 1 - < grad_theta CE(F(A(x_p + delta)), y_p), g_t > / (||.|| ||g_t||)   (one cosine, all layers)

optimised with signed Adam and step decay at 3/8, 5/8, 7/8 of the iterations, several random restarts keeping the
lowest final loss, and differentiable augmentation A in the loop. The adaptive variant puts the defense's mixing
(mixup / CutMix) into the loop as well (lab `--pmix`).
"""

from __future__ import annotations

import torch

from tenfold.components.attacks.base import CraftContext, Poison, diff_augment, project_linf, sample_poison_indices
from tenfold.components.attacks.registry import register_attack
from tenfold.components.victims import soft_ce


def _grads(model, loss, create_graph=False):
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], create_graph=create_graph)


def matching_loss(model, x, y, target_grad, gen, augment: bool, mix=None) -> torch.Tensor:
    """1 - cosine between the poison batch gradient and the target gradient (summed over all parameters)."""
    if augment:
        x = diff_augment(x, gen)
    yy = y
    if mix is not None:
        x, yy = mix(x, y, gen)
    g = _grads(model, soft_ce(model(x), yy).mean(), create_graph=True)
    dot = sum((a * b).sum() for a, b in zip(g, target_grad))
    norm = torch.sqrt(sum((a * a).sum() for a in g)) * torch.sqrt(sum((b * b).sum() for b in target_grad))
    return 1 - dot / norm


@register_attack(
    "gradient_matching",
    goal="targeted",
    label="clean-label",
    knowledge="grey-box",
    mechanism="gradient matching",
    norm="linf",
    victim="from-scratch",
    paper="Witches' Brew, arXiv:2009.02276",
)
def craft(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: iters, restarts, tau (Adam step = tau * eps), augment (bool)."""
    s, dev, model = ctx.setup, ctx.device, ctx.surrogate.to(ctx.device).eval()
    idx = sample_poison_indices(ctx.y_train, ctx.n_poison, ctx.seed, cls=s.adv_class)
    xb = torch.as_tensor(ctx.x_train[idx]).to(dev)
    yb = torch.as_tensor(ctx.y_train[idx]).to(dev)
    xt = torch.as_tensor(ctx.x_test[s.target_index : s.target_index + 1]).to(dev)
    target_grad = [
        g.detach() for g in _grads(model, soft_ce(model(xt), torch.tensor([s.adv_class], device=dev)).mean())
    ]
    gen = torch.Generator().manual_seed(ctx.seed)
    best, best_loss = None, float("inf")
    milestones = [int(cfg.iters * f) for f in (0.375, 0.625, 0.875)]
    for _ in range(cfg.restarts):
        delta = ((torch.rand(xb.shape, generator=gen) * 2 - 1) * ctx.eps).to(dev).requires_grad_(True)
        opt = torch.optim.Adam([delta], lr=cfg.tau * ctx.eps)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1)
        for _ in range(cfg.iters):
            loss = matching_loss(model, xb + delta, yb, target_grad, gen, cfg.augment, ctx.mix)
            opt.zero_grad(set_to_none=False)
            delta.grad = torch.autograd.grad(loss, delta)[0].sign()  # signAdam
            opt.step()
            sched.step()
            with torch.no_grad():
                delta.copy_(project_linf(xb + delta, xb, ctx.eps) - xb)
        final = float(matching_loss(model, xb + delta.detach(), yb, target_grad, gen, False).detach())
        if final < best_loss:
            best, best_loss = delta.detach().clone(), final
    x_p = project_linf(xb + best, xb, ctx.eps).cpu().numpy()
    return Poison(
        "gradient_matching",
        "targeted",
        s,
        idx,
        x_p,
        ctx.y_train[idx].copy(),
        info={"matching_loss": best_loss, "adaptive": ctx.mix is not None},
    )
