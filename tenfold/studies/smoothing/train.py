"""Training the base models with Gaussian noise, as the official `train_dim_red.py` / `train_reconstructor.py`:
Adam, MSE to the clean image, noise of the smoothing sigma added to the model's input (pixels for the autoencoder,
measurements for the reconstructor)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tenfold.studies.smoothing.params import TrainConfig


def train_denoising(
    model: nn.Module,
    images: np.ndarray,
    sigma: float,
    cfg: TrainConfig,
    device: torch.device,
    seed: int,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train `model` to map to_input(x) + sigma * noise back to x; returns the per-epoch mean losses."""
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(images).float()
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(x_all), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            x = x_all[order[i : i + cfg.batch_size]].to(device)
            inp = to_input(x) if to_input else x
            inp = inp + sigma * torch.randn(inp.shape, generator=gen).to(device)
            loss = nn.functional.mse_loss(model(inp), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(x), count + len(x)
        rec = {"epoch": epoch, "loss": total / count}
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
    return history


@torch.inference_mode()
def reconstruction_mse(
    model: nn.Module,
    images: np.ndarray,
    sigma: float,
    device: torch.device,
    seed: int,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Mean squared error of the (eval-mode) model on clean and on noisy inputs."""
    model.eval()
    x = torch.from_numpy(images).float().to(device)
    inp = to_input(x) if to_input else x
    noise = torch.randn(inp.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    return {
        "mse_clean": float(nn.functional.mse_loss(model(inp), x)),
        "mse_noisy": float(nn.functional.mse_loss(model(inp + sigma * noise), x)),
    }
