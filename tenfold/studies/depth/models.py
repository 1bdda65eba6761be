"""Recurrent and feed-forward classifiers at matched effective depth (after the official DeepThinking models).

Each family has a stem, a block iterated `k` times and a head. The recurrent net applies ONE block k times
(shared weights); its feed-forward twin stacks k distinct copies. Effective depth counts the layers along the
path: residual (block = 2 BasicBlocks = 4 convs): 4k + 3; cnn (block = conv3x3 + ReLU): k + 3; mlp (block =
linear + ReLU): k + 2. `residual_bn` is the residual family with batch norm, where the recurrent net keeps a
separate BatchNorm per iteration (the convs are shared).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_OFFSET = {"residual": (4, 3), "residual_bn": (4, 3), "cnn": (1, 3), "mlp": (1, 2)}


def iterations(family: str, depth: int) -> int:
    """Number of block applications k for an effective depth; error if the depth is not reachable."""
    per, extra = _OFFSET[family]
    k, rem = divmod(depth - extra, per)
    if k < 1 or rem:
        raise ValueError(f"effective depth {depth} is not {per}*k + {extra} (k >= 1) for family {family!r}")
    return k


class BasicBlock(nn.Module):
    """conv-[BN]-ReLU-conv-[BN] + identity, ReLU; bias-free convs as in the paper."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x, bn1=None, bn2=None):
        h = self.conv1(x)
        h = F.relu(bn1(h) if bn1 is not None else h)
        h = self.conv2(h)
        return F.relu(x + (bn2(h) if bn2 is not None else h))


class ResidualModule(nn.Module):
    """The iterated module of the residual family: two BasicBlocks (4 convs)."""

    def __init__(self, c: int):
        super().__init__()
        self.blocks = nn.ModuleList([BasicBlock(c), BasicBlock(c)])

    def forward(self, x, bns=None):
        for i, b in enumerate(self.blocks):
            x = b(x, *(bns[2 * i : 2 * i + 2] if bns is not None else (None, None)))
        return x


class ConvModule(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x, bns=None):
        return F.relu(self.conv(x))


class LinearModule(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x, bns=None):
        return F.relu(self.fc(x))


class DepthNet(nn.Module):
    """A classifier of one family at effective depth `depth`, recurrent (shared block) or feed-forward."""

    def __init__(
        self,
        family: str,
        depth: int,
        recurrent: bool,
        width: int,
        in_shape: tuple[int, int, int],
        num_classes: int,
        init: str = "default",
    ):
        super().__init__()
        self.family, self.depth, self.recurrent = family, depth, recurrent
        self.iters = iterations(family, depth)
        c_in = in_shape[0]
        copies = 1 if recurrent else self.iters
        if family == "mlp":
            self.stem = nn.Sequential(nn.Flatten(), nn.Linear(c_in * in_shape[1] * in_shape[2], width), nn.ReLU())
            self.body = nn.ModuleList(LinearModule(width) for _ in range(copies))
            self.head = nn.Linear(width, num_classes)
        else:
            self.stem = nn.Sequential(nn.Conv2d(c_in, width, 3, stride=2, padding=1, bias=False), nn.ReLU())
            make = ResidualModule if family.startswith("residual") else ConvModule
            self.body = nn.ModuleList(make(width) for _ in range(copies))
            self.head = nn.Sequential(
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(2 * width, num_classes),
            )
        # batch norm: one set of 4 BNs per iteration, for the recurrent net as well (convs shared, BNs not)
        self.bns = (
            nn.ModuleList(nn.ModuleList(nn.BatchNorm2d(width) for _ in range(4)) for _ in range(self.iters))
            if family == "residual_bn"
            else None
        )
        if init == "kaiming":  # He init (fan_in, ReLU) instead of PyTorch's default; biases zero
            for mod in self.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                    if mod.bias is not None:
                        nn.init.zeros_(mod.bias)
        elif init != "default":
            raise ValueError(f"unknown init {init!r} (default, kaiming)")

    def forward(self, x):
        h = self.stem(x)
        for i in range(self.iters):
            block = self.body[0 if self.recurrent else i]
            h = block(h, self.bns[i] if self.bns is not None else None)
        return self.head(h)


def agreement(pred_a: torch.Tensor, pred_b: torch.Tensor) -> float:
    """Share of inputs on which two classifiers predict the same class."""
    return float((pred_a == pred_b).float().mean())
