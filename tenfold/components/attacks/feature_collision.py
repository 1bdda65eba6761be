"""Feature-collision attacks on fine-tuned victims (transfer setting of the poisoning benchmark).

Poison Frogs (Shafahi et al., arXiv:1804.00792): each poison starts from a base image of the adversarial class and
moves its penultimate features onto the target's, min ||f(p) - f(t)||^2, by forward-backward splitting: a
gradient step on the feature term, then the proximal step of beta ||p - b||^2; the benchmark's l_inf projection
(eps around the base) keeps the poison clean-label.
Bullseye Polytope (Aghakhani et al., arXiv:2005.00191): all poisons jointly, the *mean* of their features sits on
the target's, min ||mean_j f(p_j) - f(t)||^2 / ||f(t)||^2, Adam with l_inf projection.
"""

from __future__ import annotations

import torch

from tenfold.components.attacks.base import CraftContext, Poison, project_linf, sample_poison_indices
from tenfold.components.attacks.registry import register_attack


def _start(ctx: CraftContext):
    s, dev, model = ctx.setup, ctx.device, ctx.surrogate.to(ctx.device).eval()
    idx = sample_poison_indices(ctx.y_train, ctx.n_poison, ctx.seed, cls=s.adv_class)
    xb = torch.as_tensor(ctx.x_train[idx]).to(dev)
    with torch.no_grad():
        ft = model.features(torch.as_tensor(ctx.x_test[s.target_index : s.target_index + 1]).to(dev))
    return model, idx, xb, ft


@register_attack(
    "poison_frogs",
    goal="targeted",
    label="clean-label",
    knowledge="white-box",
    mechanism="feature collision",
    norm="linf",
    victim="fine-tune",
    paper="Poison Frogs, arXiv:1804.00792",
)
def craft_frogs(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: iters, lr (step of the forward step), beta (proximal weight, scaled by feature/input dims)."""
    model, idx, xb, ft = _start(ctx)
    beta = cfg.beta * (ft.shape[1] / xb[0].numel()) ** 2
    lr = cfg.lr
    p = xb.clone()
    for _ in range(cfg.iters):
        p.requires_grad_(True)
        loss = ((model.features(p) - ft) ** 2).sum()
        grad = torch.autograd.grad(loss, p)[0]
        with torch.no_grad():
            p = p - lr * grad  # forward step on the feature-collision term
            p = (p + lr * beta * xb) / (1 + lr * beta)  # backward (proximal) step on beta ||p - b||^2
            p = project_linf(p, xb, ctx.eps)
        ctx.tick()
    with torch.no_grad():
        dist = float(((model.features(p) - ft) ** 2).sum(1).mean())
    return Poison(
        "poison_frogs",
        "targeted",
        ctx.setup,
        idx,
        p.cpu().numpy(),
        ctx.y_train[idx].copy(),
        info={"feature_distance": dist},
    )


@register_attack(
    "bullseye_polytope",
    goal="targeted",
    label="clean-label",
    knowledge="white-box",
    mechanism="feature collision",
    norm="linf",
    victim="fine-tune",
    paper="Bullseye Polytope, arXiv:2005.00191",
)
def craft_bullseye(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: iters, lr (Adam)."""
    model, idx, xb, ft = _start(ctx)
    delta = torch.zeros_like(xb, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    for _ in range(cfg.iters):
        loss = ((model.features(xb + delta).mean(0, keepdim=True) - ft) ** 2).sum() / (ft**2).sum()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        with torch.no_grad():
            delta.copy_(project_linf(xb + delta, xb, ctx.eps) - xb)
        ctx.tick()
    p = project_linf(xb + delta.detach(), xb, ctx.eps)
    with torch.no_grad():
        rel = float(((model.features(p).mean(0, keepdim=True) - ft) ** 2).sum() / (ft**2).sum())
    return Poison(
        "bullseye_polytope",
        "targeted",
        ctx.setup,
        idx,
        p.cpu().numpy(),
        ctx.y_train[idx].copy(),
        info={"relative_feature_distance": rel},
    )
