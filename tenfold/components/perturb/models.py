"""Small image classifiers shared by the perturbation studies (surrogates, victims, adversarially trained nets).

build(arch, in_ch, num_classes, side)  ->  nn.Module
arch: `smallcnn` (the MNIST net of the weighted-minimax code: conv 32-32-64-64, FC 200-200, dropout 0.5),
      `cnn` (two conv blocks of 16/32 channels, a fast surrogate), `mlp` (two hidden layers),
      `resnet` (a narrow ResNet-8), `resnet18` (the CIFAR ResNet-18 of the adversarial-training codes:
      BasicBlocks [2, 2, 2, 2] of width 64-512, BatchNorm, 3x3 stem; 11M parameters, a GPU net).
"""

from __future__ import annotations

import torch
from torch import nn

from tenfold.core.runtime import channels_last
from tenfold.core.seeds import SeededDropout

ARCHS = ("smallcnn", "cnn", "mlp", "resnet", "resnet18")


class SmallCNN(nn.Module):
    """Zeng et al.'s MNIST SmallCNN: 4 conv layers (32, 32, 64, 64) + FC 200-200 with dropout 0.5."""

    def __init__(self, in_ch: int, num_classes: int, side: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        s = ((side - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * s * s, 200),
            nn.ReLU(),
            SeededDropout(0.5),  # masks from the training loop's per-epoch generator (fit), not the global RNG
            nn.Linear(200, 200),
            nn.ReLU(),
            nn.Linear(200, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ConvNet(nn.Module):
    """Two conv blocks (16, 32 channels) with max-pooling and a linear head."""

    def __init__(self, in_ch: int, num_classes: int, side: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (side // 4) ** 2, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class MLP(nn.Module):
    def __init__(self, in_ch: int, num_classes: int, side: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch * side * side, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet8(nn.Module):
    """A narrow ResNet (stem + 3 residual stages of width 16/32/64, global pooling)."""

    def __init__(self, in_ch: int, num_classes: int, side: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            _Block(16, 16, 1),
            _Block(16, 32, 2),
            _Block(32, 64, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class ResNet18(nn.Module):
    """CIFAR ResNet-18 (He et al. 2016 as used by Madry-style adversarial training codes): 3x3 stem of 64 channels,
    four stages of two BasicBlocks (64, 128, 256, 512; stride 2 from the second stage), global pooling, linear."""

    def __init__(self, in_ch: int, num_classes: int, side: int):
        super().__init__()
        widths, layers, cin = (64, 128, 256, 512), [], 64
        for i, w in enumerate(widths):
            layers += [_Block(cin, w, 1 if i == 0 else 2), _Block(w, w, 1)]
            cin = w
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            *layers,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class Standardize(nn.Module):
    """`net((x - mean) / std)` per channel: input standardisation inside the model, so attacks, budgets and
    pixel clipping stay in [0, 1] pixel units. mean and std are buffers (saved with the weights)."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1).clone())

    @classmethod
    def fitted(cls, net: nn.Module, x: torch.Tensor) -> Standardize:
        """Wrap `net` with the per-channel mean and std of the images `x` (N, C, H, W); a constant channel gets
        std 1."""
        xc = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
        std = xc.std(1)
        return cls(net, xc.mean(1).cpu(), torch.where(std > 0, std, torch.ones_like(std)).cpu())

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


_CLASSES = {"smallcnn": SmallCNN, "cnn": ConvNet, "mlp": MLP, "resnet": ResNet8, "resnet18": ResNet18}


def build(arch: str, in_ch: int, num_classes: int, side: int) -> nn.Module:
    """Construct a classifier by name (see ARCHS); a bad name is a clear error."""
    if arch not in _CLASSES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    return channels_last(_CLASSES[arch](in_ch, num_classes, side))
