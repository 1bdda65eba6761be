"""Poisons for secure dataset release (Fowl et al., arXiv:2103.02683) and the two baselines.

Alignment poisoning (the paper's method): on a fixed surrogate F_theta, compute once the target gradient
    g_t = grad_theta L_R(F(x_t), y_t),   L_R(z, y) = -log(1 - softmax(z)_y)   (the reverse cross-entropy),
averaged over the target set (the training set), then craft delta by signed projected gradient *descent* on
    1 - cos( grad_theta CE(F(A(x + delta)), y), g_t )
(one cosine over all parameters, A a differentiable augmentation). A victim that descends CE on the released
data then descends L_R on clean data, i.e. pushes p_y down: it generalises badly.

Baselines on the same engine: error-maximising adversarial poisons (Fowl et al. 2021: untargeted, maximise CE;
class-targeted, minimise CE towards (y + 1) mod K) and error-minimising unlearnable noise (Huang et al. 2021,
sample-wise min-min: alternate surrogate training on the noisy data and noise descent on CE until the surrogate's
training error falls below a threshold).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tenfold.components.perturb.pgd import PGD, TranslateFlip
from tenfold.core.seeds import seed_dropout, seed_for

METHODS = ("alignment", "adv_untargeted", "adv_targeted", "unlearnable", "random_noise")


def reverse_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_R = -log(1 - p_y) = logsumexp(z) - logsumexp(z_{j != y}), per example (numerically stable)."""
    other = logits.scatter(1, y[:, None], float("-inf"))
    return torch.logsumexp(logits, 1) - torch.logsumexp(other, 1)


def _params(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def target_gradient(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> list[torch.Tensor]:
    """g_t: the gradient of the mean reverse cross-entropy over the target set, w.r.t. the surrogate's weights."""
    model.eval()
    params = _params(model)
    total = [torch.zeros_like(p) for p in params]
    with torch.inference_mode(False), torch.enable_grad():
        for lo in range(0, len(x), batch_size):
            xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
            grads = torch.autograd.grad(reverse_ce(model(xb), yb).sum(), params)
            for t, g in zip(total, grads):
                t += g.detach()
    return [t / len(x) for t in total]


def alignment_objective(model: torch.nn.Module, y: torch.Tensor, g_t: list[torch.Tensor]) -> Callable:
    """The alignment loss `1 - cos(grad_theta CE(F(x'), y), g_t)` as a function of the perturbed batch x'
    (a scalar; differentiable in x' through a double backward pass)."""
    params = _params(model)
    g_norm = torch.sqrt(sum((g * g).sum() for g in g_t))

    def fn(xin: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(F.cross_entropy(model(xin), y), params, create_graph=True)
        dot = sum((g * t).sum() for g, t in zip(grads, g_t))
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        return 1 - dot / (norm * g_norm + 1e-12)

    return fn


def craft(
    method: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    restarts: int = 1,
    augment: bool = True,
    batch_size: int = 256,
    num_classes: int = 10,
    g_t: list[torch.Tensor] | None = None,
    seed: int = 0,
    schedule: str = "constant",
    flip: bool = True,
    on_step: Callable | None = None,
) -> torch.Tensor:
    """Perturb (x, y) in batches of `batch_size` with a fixed surrogate `model`; returns released images.

    `alignment` needs `g_t` (see `target_gradient`); `adv_untargeted` maximises CE; `adv_targeted` minimises CE
    to the permuted label (y + 1) mod K; `random_noise` is a uniform +-eps control (no surrogate). Unlearnable
    noise needs surrogate training in the loop: see `unlearnable`.

    The lab's PGD takes signed steps of constant size `tau * eps` (its MultiStep decay applies only to the Adam-type
    optimisers): `schedule="constant"`. `augment`: a differentiable random translation of up to 1/8 of the side
    (+-4 px at 32 px), with a horizontal flip if `flip` (the lab's `--paugment`). With `restarts` > 1 each batch
    keeps the restart whose final perturbation has the lowest objective (for alignment: 1 - cos on the
    unaugmented batch; the lab keeps the restart with the lowest loss summed over its batches). `on_step(restart,
    step, x_adv)` sees every iterate (see `PGD.run`).
    """
    if method not in METHODS or method == "unlearnable":
        raise ValueError(f"craft() method must be one of {[m for m in METHODS if m != 'unlearnable']}, got {method!r}")
    gen = torch.Generator().manual_seed(seed)
    if method == "random_noise":
        u = torch.rand(x.shape, generator=gen).to(x.device)
        return (x + (2 * u - 1) * eps).clamp(0, 1)
    if method == "alignment" and g_t is None:
        raise ValueError("alignment poisoning needs the target gradient g_t")
    model.eval()
    pgd = PGD(
        eps=eps,
        steps=steps,
        step_size=step_size,
        restarts=restarts,
        schedule=schedule,
        augment=TranslateFlip(0.125, flip=flip) if augment else None,
        minimize=method != "adv_untargeted",
    )
    out = []
    for lo in range(0, len(x), batch_size):
        xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
        select = None
        if method == "alignment":
            fn = alignment_objective(model, yb, g_t)
            select = _with_grad(fn)  # PGD scores restarts under no_grad; the cosine needs a backward pass
        else:
            target = (yb + 1) % num_classes if method == "adv_targeted" else yb
            fn = (lambda t: lambda xin: F.cross_entropy(model(xin), t, reduction="none"))(target)
        out.append(pgd.run(fn, xb, generator=gen, select_fn=select, on_step=on_step))
    return torch.cat(out)


def _with_grad(fn: Callable) -> Callable:
    def wrapped(xin: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return fn(xin.detach()).detach()

    return wrapped


def unlearnable(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    train_steps: int = 10,
    stop_error: float = 0.01,
    max_rounds: int = 20,
    lr: float = 0.1,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[torch.Tensor, int, float]:
    """Sample-wise error-minimising noise (min-min): alternate `train_steps` SGD steps of the surrogate on the
    noisy data with `steps` PGD descent steps on every example's noise, until the surrogate's error on the noisy
    data is below `stop_error` (or `max_rounds`). Returns (released images, rounds used, the surrogate's final error
    on the noisy data)."""
    gen = torch.Generator().manual_seed(seed)
    seed_dropout(model, seed_for(seed, "unlearnable", "dropout"))  # a smallcnn surrogate's masks: not the global RNG
    delta = torch.zeros_like(x)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    pgd = PGD(eps=eps, steps=steps, step_size=step_size, random_start=False, minimize=True)
    rounds, err = 0, 1.0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - `rounds` is returned: how many rounds ran
        model.train()
        for _ in range(train_steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=gen).to(x.device)
            loss = F.cross_entropy(model((x[idx] + delta[idx]).clamp(0, 1)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        for lo in range(0, len(x), batch_size):
            xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
            start = (xb + delta[lo : lo + batch_size]).clamp(0, 1)
            adv = pgd.run(lambda xin, yb=yb: F.cross_entropy(model(xin), yb, reduction="none"), start, generator=gen)
            # the PGD ball is centred on the current iterate: re-project onto the eps-ball around the clean image
            delta[lo : lo + batch_size] = (adv - xb).clamp(-eps, eps)
        with torch.no_grad():
            err = 1 - sum(
                int(
                    (
                        model((x[lo : lo + 1024] + delta[lo : lo + 1024]).clamp(0, 1)).argmax(1) == y[lo : lo + 1024]
                    ).sum()
                )
                for lo in range(0, len(x), 1024)
            ) / len(x)
        if err < stop_error:
            break
    return (x + delta).clamp(0, 1), rounds, float(err)
