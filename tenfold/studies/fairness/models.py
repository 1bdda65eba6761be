"""The deep nets of the capacity sweep and the adversary of adversarial debiasing.

Unlike the other studies' conv nets these stay in the default (NCHW) layout: at their small widths channels-last
(`tenfold.core.runtime.channels_last`) gains nothing measurable (the claim's ResNet 1.0x a step, `python -m
benchmarks.bench_layout`; the stage took 361 s in it and 374 s without, an hour apart, within the machine's drift),
and the default layout keeps the fairness run equal to the one locked before the layout change."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """`depth` hidden layers of `width` ReLU units on flattened inputs, one logit out."""

    def __init__(self, in_features: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.width, self.depth = width, depth

    def forward(self, x):
        return self.net(x).squeeze(-1)


class SmallCNN(nn.Module):
    """A small convolutional net for image tasks: `depth` blocks of conv 3x3 (stride 2, `channels` maps) + ReLU,
    then a linear layer on the flattened maps to one logit. Stride-2 convolutions instead of pooling keep it cheap
    on a CPU (28x28 digits -> 14 -> 7 -> 4)."""

    def __init__(self, in_channels: int, image_size: int, channels: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(c, channels, 3, stride=2 if size > 2 else 1, padding=1), nn.ReLU()]
            c, size = channels, (size + 1) // 2 if size > 2 else size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * size * size, 1)
        self.channels, self.depth = channels, depth

    def forward(self, x):
        return self.head(self.features(x).flatten(1)).squeeze(-1)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (1x1-projected when the shape changes) input, then ReLU (He et al.)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A ResNet-style net for small images: a stride-2 conv stem (`width` channels), three stages of one basic
    block each (`width`, 2x, 4x channels; the last two stride 2), global average pooling, one logit.
    On 32x32 faces: 16x16 -> 16 -> 8 -> 4; 19.7k parameters at width 8."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stages = nn.Sequential(
            BasicBlock(width, width, 1), BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 4 * width, 2)
        )
        self.head = nn.Linear(4 * width, 1)
        self.width = width

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean((2, 3))).squeeze(-1)


def cnn_channels(width: int, ratio: float) -> int:
    """Channels of the CNN at capacity `width` (the MLP's hidden units): width * ratio, at least 2."""
    return max(2, int(round(width * ratio)))


def make_model(
    input_shape: tuple[int, ...], width: int, depth: int, image_arch: str = "mlp", cnn_channel_ratio: float = 1 / 16
) -> nn.Module:
    """An MLP on flattened inputs, or for images (input shape C x H x W): with `image_arch='cnn'` a SmallCNN whose
    channel count follows the capacity axis (`cnn_channels(width, cnn_channel_ratio)`; ratio 1 = width channels,
    as for the faces), with `image_arch='resnet'` a ResNetSmall of base width `width`."""
    if image_arch not in ("mlp", "cnn", "resnet"):
        raise ValueError(f"unknown image_arch {image_arch!r} (mlp, cnn, resnet)")
    if len(input_shape) == 3:
        if image_arch == "cnn":
            return SmallCNN(input_shape[0], input_shape[1], cnn_channels(width, cnn_channel_ratio), depth)
        if image_arch == "resnet":
            return ResNetSmall(input_shape[0], width)
    return MLP(math.prod(input_shape), width, depth)


class Adversary(nn.Module):
    """Predicts the group from the predictor's logit (and, for equalized odds, the label) as in Zhang, Lemoine
    and Mitchell (2018): input [z] for demographic parity / equal opportunity, [z, z*y, z*(1-y)] for equalized odds."""

    def __init__(self, notion: str, width: int):
        super().__init__()
        self.notion = notion
        k = 3 if notion == "eo" else 1
        self.net = nn.Sequential(nn.Linear(k, width), nn.ReLU(), nn.Linear(width, 1))

    def features(self, z, y):
        z = z.unsqueeze(-1)
        if self.notion == "eo":
            yf = y.float().unsqueeze(-1)
            return torch.cat([z, z * yf, z * (1 - yf)], -1)
        return z

    def forward(self, z, y):
        return self.net(self.features(z, y)).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
