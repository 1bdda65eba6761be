"""Witches' Brew (Geiping et al., arXiv:2009.02276): clean-label targeted poisoning by gradient matching.

The poisons (images of the adversarial class, labels unchanged) are perturbed inside an l_inf ball so that the
training gradient they produce aligns with the gradient that would flip the target to the adversarial class:

    g_t = grad_theta CE(F(x_target), y_adv)
    loss(delta) = 1 - < grad_theta CE(F(A(x_p + delta)), y_p), g_t > / (||.|| ||g_t||)   (one cosine, all layers)

optimised as the lab's code does (`forest/witchcoven/witch_base.py`): signed Adam whose learning rate is `tau` in
*normalised* input units (the lab's rule 2, `tau * pbatch / 512` with one poison batch), step decay x0.1 at
iterations //2.667, //1.6, //1.142, a Gaussian start of std eps clipped to the ball, projection onto the eps ball and
the [0, 1] box after every step, several restarts keeping the one with the lowest final loss, and differentiable
augmentation A in the loop (random translation of up to 1/8 of the side, plus horizontal flips when the victims are
trained with flips: the lab's `RandomTransform(shift=8, fliplr=True)` on CIFAR-10). The adaptive variant puts the
defense's mixing (mixup / CutMix) into the loop as well (lab `--pmix`).
"""

from __future__ import annotations

import torch

from tenfold.components.attacks.base import CraftContext, Poison, diff_augment, project_linf, sample_poison_indices
from tenfold.components.attacks.registry import register_attack
from tenfold.components.victims import soft_ce


def _grads(model, loss, create_graph=False):
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], create_graph=create_graph)


def matching_loss(model, x, y, target_grad, gen, augment: bool, mix=None, flip: bool = False) -> torch.Tensor:
    """1 - cosine between the poison batch gradient and the target gradient (summed over all parameters)."""
    if augment:
        x = diff_augment(x, gen, flip=flip)
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
    """`cfg`: iters, restarts, tau (signAdam learning rate in normalised input units), augment (bool)."""
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
    milestones = [int(cfg.iters // f) for f in (2.667, 1.6, 1.142)]
    # optimise u = delta / std (normalised units, as the lab does); the image is xb + u * std
    std = (
        torch.as_tensor(ctx.input_std if ctx.input_std is not None else [1.0] * xb.shape[1], dtype=xb.dtype)
        .view(1, -1, 1, 1)
        .to(dev)
    )
    start_loss = float(matching_loss(model, xb, yb, target_grad, gen, False).detach())
    for _ in range(cfg.restarts):
        u = (torch.randn(xb.shape, generator=gen).to(dev) * ctx.eps).clamp(-ctx.eps, ctx.eps) / std
        u = (project_linf(xb + u * std, xb, ctx.eps) - xb) / std
        u.requires_grad_(True)
        opt = torch.optim.Adam([u], lr=cfg.tau)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1)
        for _ in range(cfg.iters):
            loss = matching_loss(model, xb + u * std, yb, target_grad, gen, cfg.augment, ctx.mix, ctx.flip)
            opt.zero_grad(set_to_none=False)
            u.grad = torch.autograd.grad(loss, u)[0].sign()  # signAdam
            opt.step()
            sched.step()
            with torch.no_grad():
                u.copy_((project_linf(xb + u * std, xb, ctx.eps) - xb) / std)
            ctx.tick()
        final = float(matching_loss(model, xb + u.detach() * std, yb, target_grad, gen, False).detach())
        if final < best_loss:
            best, best_loss = u.detach().clone(), final
    x_p = project_linf(xb + best * std, xb, ctx.eps).cpu().numpy()
    return Poison(
        "gradient_matching",
        "targeted",
        s,
        idx,
        x_p,
        ctx.y_train[idx].copy(),
        info={"matching_loss": best_loss, "start_loss": start_loss, "adaptive": ctx.mix is not None},
    )
