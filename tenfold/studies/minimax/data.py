"""The images of study `minimax`: CIFAR-10 from the arrays of DVC stage `build_cifar10`, or the digits."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData
from tenfold.components.data.images import load as load_images
from tenfold.studies.minimax.params import MinimaxData


def load(cfg: MinimaxData, data_root: str | Path, seed: int) -> ImageData:
    """CIFAR-10 from `<data_root>/cifar10` (written by `build_cifar10`; its own train/test split, `source` from
    its manifest; missing arrays are an error naming that stage), or the digits with their seeded split; then a
    class-stratified, seeded subset of `n_train` / `n_test` images."""
    full = (
        cifar10.load(Path(data_root) / "cifar10")
        if cfg.dataset == "cifar10"
        else load_images(cfg.dataset, data_root, seed)
    )
    return full.subset(cfg.n_train, cfg.n_test, seed)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """The standard CIFAR training augmentation: a random crop of the zero-padded image (a shift of up to `pad`
    pixels each way) and a horizontal flip with probability 1/2, drawn per image from `gen`."""
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        crop = padded[i, :, dy : dy + h, dx : dx + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out
