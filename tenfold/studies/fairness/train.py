"""Training deep nets under a fairness constraint, the four ways the paper examines, plus the classical baseline.

    erm          plain cross-entropy (no constraint): the reference gap
    penalty      cross-entropy + w * relaxed gap (the gap of predicted probabilities), fixed weight w
    lagrangian   constrained optimisation  min_theta max_{lambda >= 0}  CE + lambda * (relaxed gap - epsilon):
                 gradient descent on theta, projected dual ascent on lambda (the multiplier grows while the
                 training constraint is violated and decays to 0 once it holds)
    adversarial  adversarial debiasing (Zhang, Lemoine & Mitchell, 2018): an adversary predicts the group from the
                 logit (and the label, for equalized odds; only positives, for equal opportunity); the predictor
                 follows grad L_P - proj_{grad L_A} grad L_P - alpha * grad L_A
    fairlearn    exponentiated-gradient reductions (Agarwal et al., 2018) around logistic regression

Each run evaluates train (and held-out, when the data has one) and test accuracy and all three gaps (hard
0.5-threshold predictions) at every `eval_epochs`, the training-length axis of the study, with the test gaps' noise
floor (mean and quantile of the gap under random group relabellings of the test set) at each of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.core.seeds import generator, seed_for, seeded
from tenfold.studies.fairness import metrics
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.models import Adversary
from tenfold.studies.fairness.params import FairnessTrain


@torch.no_grad()
def predict_proba(model, x: np.ndarray, device, batch: int = 512) -> np.ndarray:
    model.eval()
    out = [
        torch.sigmoid(model(torch.as_tensor(x[i : i + batch], device=device))).cpu() for i in range(0, len(x), batch)
    ]
    model.train()
    return torch.cat(out).numpy()


def evaluate(
    model, data: FairData, device, noise_permutations: int = 0, floor_seed: int = 0, floor_quantile: float = 0.95
) -> dict[str, float]:
    """Accuracy and gaps of the model's hard predictions on every split; with `noise_permutations`, the test
    gaps' noise floor: `test_floor_<notion>` (mean) and `test_floorq_<notion>` (the `floor_quantile`)."""
    out = {}
    for split in data.splits:
        x, y, s = (getattr(data, f"{k}_{split}") for k in "xys")
        pred = (predict_proba(model, x, device) >= 0.5).astype(np.int64)
        out.update({f"{split}_{k}": v for k, v in metrics.report(pred, y, s).items()})
        if split == "test" and noise_permutations:
            for nt in metrics.NOTION_NAMES:
                out[f"test_floor_{nt}"], out[f"test_floorq_{nt}"] = metrics.noise_floor(
                    pred, y, s, nt, noise_permutations, floor_seed, floor_quantile
                )
    return out


def augment_batch(xb: torch.Tensor, gen: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flips and shifts of up to `shift` pixels (zero padding) of a batch of images, drawn from
    `gen`: the standard augmentation of small-image nets."""
    n, _, h, w = xb.shape
    flip = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(flip.view(-1, 1, 1, 1).to(xb.device), xb.flip(3), xb)
    padded = F.pad(xb, (shift, shift, shift, shift))
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen).tolist()
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def _project_out(g: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """g minus its component along `direction` (unchanged if the direction is zero)."""
    norm = direction.norm()
    if norm == 0:
        return g
    unit = direction / norm
    return g - (g @ unit) * unit


def train_fair(
    model,
    data: FairData,
    method: str,
    notion: str,
    cfg: FairnessTrain,
    device,
    seed: int,
    noise_permutations: int = 0,
    on_eval: Callable[[dict], None] | None = None,
    augment: bool = False,
    floor_quantile: float = 0.95,
) -> list[dict]:
    """Train `model` in place with `method` for `notion`; returns one record per `cfg.eval_epochs` (with the
    test noise floor at each when `noise_permutations` > 0). `augment` flips and shifts image batches."""
    if method not in ("erm", "penalty", "lagrangian", "adversarial"):
        raise ValueError(f"unknown method {method!r}")
    if augment and not data.is_image:
        raise ValueError(f"augmentation needs image data ({data.name} is tabular)")
    model.to(device).train()
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    s = torch.as_tensor(data.s_train, device=device)
    n = len(y)
    adv = opt_a = None
    if method == "adversarial":
        adv = seeded(seed_for(seed, "fairness", "adversary"), lambda: Adversary(notion, cfg.adversary_width)).to(device)
        opt_a = torch.optim.Adam(adv.parameters(), lr=cfg.adversary_lr)
    lam = 0.0
    gen = generator(seed_for(seed, "fairness", "batches"))
    aug_gen = generator(seed_for(seed, "fairness", "augment"))
    floor_seed = seed_for(seed, "fairness", "noise_floor")
    history, evals = [], set(cfg.eval_epochs)
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, yb, sb = x[idx], y[idx], s[idx]
            if augment:
                xb = augment_batch(xb, aug_gen)
            z = model(xb)
            loss = F.binary_cross_entropy_with_logits(z, yb.float())
            if method in ("penalty", "lagrangian"):
                soft = metrics.gap(torch.sigmoid(z), yb, sb, notion)
                if method == "penalty":
                    loss = loss + cfg.penalty_weight * soft
                else:
                    loss = loss + lam * (soft - cfg.epsilon)
                    lam = max(0.0, lam + cfg.dual_lr * (soft.item() - cfg.epsilon))
            opt.zero_grad()
            if method == "adversarial":
                _adversarial_step(model, params, adv, opt_a, z, loss, yb, sb, notion, cfg.adversary_weight)
            else:
                loss.backward()
            opt.step()
        if epoch in evals:
            rec = {
                "epoch": epoch,
                "lambda": lam,
                **evaluate(model, data, device, noise_permutations, floor_seed, floor_quantile),
            }
            history.append(rec)
            if on_eval:
                on_eval(rec)
    return history


def _adversarial_step(model, params, adv, opt_a, z, loss_p, yb, sb, notion, alpha) -> None:
    """One adversary update on the detached logits, then set the predictor's gradient (Zhang et al., eq. 1)."""
    mask = yb == 1 if notion == "eopp" else torch.ones_like(yb, dtype=torch.bool)
    if not mask.any():
        loss_p.backward()
        return
    la = F.binary_cross_entropy_with_logits(adv(z.detach()[mask], yb[mask]), sb[mask].float())
    opt_a.zero_grad()
    la.backward()
    opt_a.step()
    la = F.binary_cross_entropy_with_logits(adv(z[mask], yb[mask]), sb[mask].float())
    gp = torch.autograd.grad(loss_p, params, retain_graph=True)
    ga = torch.autograd.grad(la, params, allow_unused=True)
    ga = [torch.zeros_like(p) if g is None else g for p, g in zip(params, ga)]
    flat_p, flat_a = torch.cat([g.reshape(-1) for g in gp]), torch.cat([g.reshape(-1) for g in ga])
    flat = _project_out(flat_p, flat_a) - alpha * flat_a
    offset = 0
    for p in params:
        k = p.numel()
        p.grad = flat[offset : offset + k].view_as(p).clone()
        offset += k


def _baseline_features(x: np.ndarray) -> np.ndarray:
    """Flat features for the linear baseline; images are 2x2 average-pooled first (a 28x28 digit becomes 196
    features), which keeps the reduction's repeated logistic-regression fits to seconds."""
    if x.ndim == 4 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))
    return x.reshape(len(x), -1)


def baseline_featurizer(data: FairData, pca_components: int | None, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Fixed features for the classical baseline: with `pca_components`, image pixels projected on the training
    set's leading principal components (standardised); otherwise `_baseline_features`."""
    if not (pca_components and data.is_image):
        return _baseline_features
    from sklearn.decomposition import PCA

    flat = data.x_train.reshape(len(data.x_train), -1)
    k = min(pca_components, *flat.shape)
    pca = PCA(k, svd_solver="randomized", random_state=seed % (2**32)).fit(flat)
    z = pca.transform(flat)
    mu, sd = z.mean(0), z.std(0) + 1e-8
    return lambda x: ((pca.transform(x.reshape(len(x), -1)) - mu) / sd).astype(np.float64)


def fairlearn_baseline(
    data: FairData,
    notion: str,
    epsilon: float,
    max_iter: int,
    eps: float,
    seed: int,
    pca_components: int | None = None,
    noise_permutations: int = 0,
    floor_quantile: float = 0.95,
) -> dict[str, float]:
    """Exponentiated-gradient reduction (Agarwal et al., 2018) around logistic regression on fixed features
    (`baseline_featurizer`); accuracy and gaps on every split, and the test noise floor (as `evaluate`)."""
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient, TruePositiveRateParity
    from sklearn.linear_model import LogisticRegression

    constraint = {"dp": DemographicParity, "eo": EqualizedOdds, "eopp": TruePositiveRateParity}[notion]
    flat = baseline_featurizer(data, pca_components, seed)
    eg = ExponentiatedGradient(
        LogisticRegression(max_iter=1000), constraint(difference_bound=epsilon), eps=eps, max_iter=max_iter
    )
    eg.fit(flat(data.x_train), data.y_train, sensitive_features=data.s_train)
    out = {}
    for split in data.splits:
        x, y, s = (getattr(data, f"{k}_{split}") for k in "xys")
        pred = np.asarray(eg.predict(flat(x), random_state=seed % (2**32))).astype(np.int64)
        out.update({f"{split}_{k}": v for k, v in metrics.report(pred, y, s).items()})
        if split == "test" and noise_permutations:
            for nt in metrics.NOTION_NAMES:
                out[f"test_floor_{nt}"], out[f"test_floorq_{nt}"] = metrics.noise_floor(
                    pred, y, s, nt, noise_permutations, seed_for(seed, "fairness", "noise_floor"), floor_quantile
                )
    return out
