"""The study's registered model: per-year acceptance probability given the mean review rating.

It is the logistic regression the re-review simulation uses (one intercept and slope per year), packaged as a
torch module so it can be registered like every other study's model.
"""

from __future__ import annotations

import torch
from torch import nn


class AcceptanceModel(nn.Module):
    """`forward(x)` with x[:, 0] = year, x[:, 1] = mean rating -> P(accept); NaN for a year it was not fitted on."""

    def __init__(self, years: list[int], intercepts: list[float], slopes: list[float], round_to: float = 0.1):
        super().__init__()
        self.register_buffer("years", torch.tensor(years, dtype=torch.float32))
        self.register_buffer("coef", torch.tensor([intercepts, slopes], dtype=torch.float32).T.contiguous())
        self.round_to = float(round_to)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        match = (x[:, :1] == self.years[None, :]).float()
        coef = (match @ self.coef) / match.sum(dim=1, keepdim=True)  # 0/0 = NaN for an unknown year
        rating = torch.round(x[:, 1] / self.round_to) * self.round_to
        return torch.sigmoid(coef[:, 0] + coef[:, 1] * rating)
