"""Face embedding backbones and the margin heads they are trained with (ArcFace, CosFace).

Small versions of the paper's families, sized for CPU training on a few hundred faces: `resnet` (IR-style
residual blocks), `vgg` (plain conv stacks) and `mobilenet` (depthwise-separable, used as the held-out
architecture). Every backbone maps (B, 3, S, S) images in [0, 1] to unnormalised embeddings (B, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout)
    )


class _IRBlock(nn.Module):
    """Improved residual unit (BN-conv-BN-PReLU-conv-BN) as in ArcFace's IR backbones."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.short = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return self.body(x) + self.short(x)


def _features(kind: str, w: int) -> nn.Sequential:
    if kind == "resnet":
        return nn.Sequential(
            _conv_bn(3, w, 2),
            _IRBlock(w, w, 1),
            _IRBlock(w, 2 * w, 2),
            _IRBlock(2 * w, 2 * w, 1),
            _IRBlock(2 * w, 4 * w, 2),
            _IRBlock(4 * w, 4 * w, 2),
        )
    if kind == "vgg":
        layers, cin = [_conv_bn(3, w, 2)], w
        for cout in (w, 2 * w, 4 * w):
            layers += [_conv_bn(cin, cout), _conv_bn(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        return nn.Sequential(*layers)
    if kind == "mobilenet":
        layers, cin = [_conv_bn(3, w, 2)], w
        for cout, stride in ((2 * w, 2), (2 * w, 1), (4 * w, 2), (4 * w, 1), (4 * w, 2)):
            layers += [_conv_bn(cin, cin, stride, groups=cin), _conv_bn(cin, cout, k=1)]
            cin = cout
        return nn.Sequential(*layers)
    raise ValueError(f"unknown backbone {kind!r} (resnet, vgg, mobilenet)")


class SeededDropout(nn.Module):
    """Dropout drawing its masks from a generator set by `FaceNet.seed_dropout` (the training loop's), so training
    gives the same weights whatever other threads do with torch's global RNG (surrogates train concurrently in a
    thread pool) and a resumed run continues the same mask stream. Without a generator it is ordinary dropout.
    No parameters or buffers: state dicts are those of `nn.Dropout`."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.gen = p, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.gen is None:
            return F.dropout(x, self.p, True)
        keep = torch.rand(x.shape, generator=self.gen, device=self.gen.device) >= self.p
        return x * keep.to(x.device) / (1 - self.p)


class FaceNet(nn.Module):
    """Backbone + BN-dropout-linear-BN embedding layer (the face.evoLVe output layer), input in [0, 1]."""

    def __init__(self, backbone: str, crop: int, dim: int = 128, width: int = 32):
        super().__init__()
        self.backbone, self.crop = backbone, crop
        self.features = _features(backbone, width)
        with torch.no_grad():
            c, h, w = self.features(torch.zeros(1, 3, crop, crop)).shape[1:]
        self.output = nn.Sequential(
            nn.BatchNorm2d(c), SeededDropout(0.2), nn.Flatten(), nn.Linear(c * h * w, dim), nn.BatchNorm1d(dim)
        )

    def seed_dropout(self, gen: torch.Generator | None) -> None:
        """Draw dropout masks from `gen` (None: torch's global RNG)."""
        for m in self.modules():
            if isinstance(m, SeededDropout):
                m.gen = gen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features((x - 0.5) / 0.5))


class MarginHead(nn.Module):
    """ArcFace (cos(theta + m)) or CosFace (cos(theta) - m) logits, scaled by s, for the true class."""

    def __init__(self, kind: str, dim: int, classes: int, scale: float, margin: float):
        super().__init__()
        if kind not in ("arcface", "cosface"):
            raise ValueError(f"unknown head {kind!r} (arcface, cosface)")
        self.kind, self.scale, self.margin = kind, scale, margin
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        if self.kind == "arcface":
            theta = torch.acos(cos)
            target = torch.where(
                theta + self.margin < math.pi, torch.cos(theta + self.margin), cos - self.margin * math.sin(self.margin)
            )  # keep monotone past pi (insightface)
        else:
            target = cos - self.margin
        return self.scale * torch.where(onehot, target, cos)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
