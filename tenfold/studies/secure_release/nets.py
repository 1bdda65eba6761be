"""The networks of the secure_release study (surrogates, victims, the release service's model) and the victims'
standard training augmentation.

A net is one of the shared small classifiers (`tenfold.components.perturb.models`: `cnn`, `smallcnn` (a VGG-style
4-conv net), `resnet` (a narrow BatchNorm ResNet-8), `mlp`) behind an input normalisation layer, so that poisons,
attacks and the release service all work in [0, 1] pixel space while the nets see standardised inputs (the lab's
code normalises CIFAR-10 the same way). `mean`/`std` of None means no normalisation (the digits setting).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tenfold.components.perturb.models import build
from tenfold.components.victims import Normalize

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class NormalizedNet(nn.Module):
    """`net((x - mean) / std)`; `norm` is an identity when no statistics are given."""

    def __init__(self, net: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None):
        super().__init__()
        self.norm = Normalize(mean, std) if mean is not None else nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


def build_net(
    arch: str,
    shape: Sequence[int],
    num_classes: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> NormalizedNet:
    """A classifier for images of `shape` (C, H, W); `mean`/`std` per channel, or None for raw inputs."""
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is not None and (len(mean) != shape[0] or len(std) != shape[0]):
        raise ValueError(f"mean/std need one value per channel ({shape[0]}), got {len(mean)} and {len(std)}")
    return NormalizedNet(build(arch, shape[0], num_classes, shape[-1]), mean, std)


def crop_flip(pad: int = 4, flip: bool = True):
    """The standard training augmentation as `f(x, gen)`: random crop of the zero-padded batch (a shift of up to
    `pad` pixels each way, one draw per image) and a horizontal flip with probability 1/2, vectorised."""

    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        rows = (shifts[:, 0, None] + torch.arange(h)[None]).to(x.device)  # (n, h)
        cols = shifts[:, 1, None] + torch.arange(w)[None]  # (n, w)
        cols = torch.where(flips[:, None], cols.flip(1), cols).to(x.device)
        idx_r = rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[-1])
        out = padded.gather(2, idx_r)
        idx_c = cols[:, None, None, :].expand(n, x.shape[1], h, w)
        return out.gather(3, idx_c)

    return fn
