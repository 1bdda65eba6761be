"""Recurrent nets and their feed-forward twins (arXiv:2102.11011), for per-pixel segmentation (mazes).

Both families share one block definition. The recurrent net applies one block `iters` times (weights shared);
the feed-forward twin stacks `iters` distinct blocks. Effective depth (convolutions along the longest path) is
``4 + 4 * iters``: 1 projection conv, 2 residual blocks of 2 convs per iteration, 3 head convs (the optional
recall conv that re-reads the input each iteration is counted separately as `recall`).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """conv-relu-conv + identity, relu; no batch norm, no bias (as in the paper's maze nets)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class RecurBlock(nn.Module):
    """One iteration: [recall conv over (state, input)] + 2 residual blocks."""

    def __init__(self, width: int, in_channels: int, recall: bool):
        super().__init__()
        self.recall = recall
        self.merge = nn.Conv2d(width + in_channels, width, 3, padding=1, bias=False) if recall else None
        self.blocks = nn.Sequential(BasicBlock(width), BasicBlock(width))

    def forward(self, h, x):
        if self.recall:
            h = F.relu(self.merge(torch.cat([h, x], 1)))
        return self.blocks(h)


class SegmentNet(nn.Module):
    """Projection -> iterated block(s) -> head giving 2 logits per pixel.

    `recurrent=True`: one shared block, any number of iterations at test time.
    `recurrent=False`: `iters` distinct blocks (the feed-forward twin); the depth is fixed.
    """

    def __init__(self, width: int = 32, iters: int = 10, recurrent: bool = True, recall: bool = True,
                 in_channels: int = 3, init: str = "default"):
        super().__init__()
        self.width, self.iters, self.recurrent, self.recall = width, iters, recurrent, recall
        self.project = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        n_blocks = 1 if recurrent else iters
        self.body = nn.ModuleList([RecurBlock(width, in_channels, recall) for _ in range(n_blocks)])
        self.head = nn.Sequential(
            nn.Conv2d(width, 32, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(32, 8, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(8, 2, 3, padding=1, bias=False),
        )
        if init == "kaiming_zero_residual":
            # He init keeps the signal's scale through the projection, recall and head convs; the second conv of
            # every residual block starts at zero, so each block starts as the identity and depth (or iterating)
            # does not blow the signal up (torchvision's `zero_init_residual`).
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.conv2.weight)
        elif init != "default":
            raise ValueError(f"unknown init {init!r}")

    @property
    def effective_depth(self) -> int:
        return 4 + 4 * self.iters

    def recurrent_parameters(self):
        return self.body.parameters()

    def initial_state(self, x):
        return F.relu(self.project(x))

    def step(self, h, x, i: int):
        return self.body[0 if self.recurrent else i](h, x)

    def forward(self, x, iters: int | None = None, state=None, start: int = 0, return_state: bool = False):
        """Run `iters` iterations (default: the trained count) from `state` (default: the projection of x)."""
        iters = self.iters if iters is None else iters
        if not self.recurrent and start + iters > self.iters:
            raise ValueError(f"feed-forward net has depth for {self.iters} iterations, asked for {start + iters}")
        h = self.initial_state(x) if state is None else state
        for i in range(start, start + iters):
            h = self.step(h, x, i)
        out = self.head(h)
        return (out, h) if return_state else out

    @torch.no_grad()
    def predict_iters(self, x, iter_list: list[int]) -> dict[int, torch.Tensor]:
        """Predicted labels after each iteration count in `iter_list`, from one forward pass of max(iter_list)."""
        want = sorted(set(iter_list))
        if not self.recurrent and want[-1] > self.iters:
            raise ValueError(f"feed-forward net cannot run {want[-1]} iterations (depth {self.iters})")
        h = self.initial_state(x)
        out: dict[int, torch.Tensor] = {}
        for i in range(want[-1]):
            h = self.step(h, x, i)
            if i + 1 in want:
                out[i + 1] = self.head(h).argmax(1)
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
