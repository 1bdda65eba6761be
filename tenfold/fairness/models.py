"""The deep nets of the capacity sweep and the adversary of adversarial debiasing."""
from __future__ import annotations

import math

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


def make_model(input_shape: tuple[int, ...], width: int, depth: int) -> MLP:
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
        import torch

        z = z.unsqueeze(-1)
        if self.notion == "eo":
            yf = y.float().unsqueeze(-1)
            return torch.cat([z, z * yf, z * (1 - yf)], -1)
        return z

    def forward(self, z, y):
        return self.net(self.features(z, y)).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
