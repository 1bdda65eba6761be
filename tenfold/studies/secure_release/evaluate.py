"""Evaluation of released data: victims trained from scratch, perceptual distance, an adversary's counter-moves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tenfold.components.perturb.pgd import accuracy
from tenfold.components.perturb.train import StepLoss, clean_loss, fit
from tenfold.core.seeds import seed_for, seeded
from tenfold.studies.secure_release.nets import build_net, crop_flip


def perceptual(clean: torch.Tensor, released: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM between clean and released images, and the realised l_inf in /255 units."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = clean.cpu().numpy(), released.cpu().numpy()
    psnr, ssim = [], []
    for u, v in zip(a, b):
        psnr.append(peak_signal_noise_ratio(u, v, data_range=1.0) if not np.array_equal(u, v) else float("inf"))
        ssim.append(structural_similarity(u.transpose(1, 2, 0), v.transpose(1, 2, 0), data_range=1.0, channel_axis=2))
    finite = [p for p in psnr if np.isfinite(p)]
    return {
        "psnr": float(np.mean(finite)) if finite else float("inf"),
        "ssim": float(np.mean(ssim)),
        "linf_255": float((released - clean).abs().max() * 255),
    }


def epoch_seeds(seed: int, epochs: int) -> list[int]:
    """The seed of each training epoch's generator (shuffle, augmentation and loss draws) of a model seeded `seed`."""
    return [seed_for(seed, "secure_release", "epoch", e) for e in range(epochs)]


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images (N, C, H, W): the nets' input normalisation."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-3).tolist()


def train_victim(
    arch: str,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    num_classes: int,
    loss_fn: StepLoss = clean_loss,
    augment: bool = False,
    warmup_epochs: float = 0.0,
    stats: tuple | None = None,
    curve: bool | Sequence[int] = False,
) -> tuple[float, torch.nn.Module, list[float | None]]:
    """Train `arch` from scratch on (x, y) (normalised with `stats` = (mean, std) if given; random crop + flip if
    `augment`; linear warm-up) and return its clean test accuracy, the model and, if `curve`, the clean test
    accuracy after every epoch (`curve=True`) or after the listed epochs only (`curve=[1, 5, ...]`: the other
    entries are None; each evaluation costs a pass over the test set, so a long curve is sampled). The last entry is
    the final accuracy, evaluated once. Evaluating never changes training (no draws, the model back in train mode)."""
    mean, std = stats if stats is not None else (None, None)
    model = seeded(seed, lambda: build_net(arch, tuple(x.shape[1:]), num_classes, mean, std)).to(x.device)
    marks = set(range(1, epochs)) if curve is True else {int(e) for e in curve or ()}
    accs: list[float | None] = []

    def on_epoch(rec) -> None:
        done = len(accs) + 1
        accs.append(accuracy(model, x_test, y_test) if done in marks and done < epochs else None)

    fit(
        model,
        x,
        y,
        epochs,
        lr,
        batch_size,
        seed,
        loss_fn=loss_fn,
        epoch_seeds=epoch_seeds(seed, epochs),
        augment=crop_flip() if augment else None,
        warmup_epochs=warmup_epochs,
        on_epoch=on_epoch if curve else None,
    )
    acc = accuracy(model, x_test, y_test)
    if curve:
        accs[-1] = acc
    return acc, model, accs


STRONG_AUGMENTATIONS = ("mixup", "cutmix")


def strong_augmentation_loss(name: str, alpha: float, num_classes: int, nway: int = 2) -> StepLoss:
    """The adversary's strong-augmentation counter-move, taken from the dataset-security registry
    (`tenfold/components/defenses/augment.py`, Borgnia et al.): `mixup` (k-way, Dirichlet weights) or `cutmix`
    (p = 0.5); the soft-label cross-entropy of the mixed batch, with every draw from the training loop's generator."""
    from tenfold.components.defenses.augment import cutmix, mixup
    from tenfold.components.victims import soft_ce

    if name not in STRONG_AUGMENTATIONS:
        raise ValueError(f"unknown strong augmentation {name!r}; choose from {', '.join(STRONG_AUGMENTATIONS)}")

    def fn(model, xb, yb, gen):
        if name == "mixup":
            xm, ym = mixup(xb, yb, gen, num_classes, alpha, nway)
        else:
            xm, ym = cutmix(xb, yb, gen, num_classes, alpha)
        return soft_ce(model(xm), ym).mean(), {}

    return fn
