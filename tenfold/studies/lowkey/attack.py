"""The LowKey objective and optimiser (Cherepanova et al., ICLR 2021; released `lowkey_attack.py`).

Maximise, over the filtered image x',

    mean over extractors e of  mean_d (e(A(x')) - e(A(x)))^2 / ||e(A(x))||_2   -  c_sim * P(x', x)

where A is the detection+alignment warp of the clean image (so the filter survives the pipeline), the
extractors are every ensemble model with and without a Gaussian smoothing layer in front, and P is the
perceptual penalty: 1/2 on the aligned crops and 1/2 on the full images. LPIPS' AlexNet weights cannot be
had offline, so P is 1 - SSIM (differentiable, Gaussian window), a documented substitute.
The optimiser is signed gradient ascent from uniform start noise, with no L-inf ball (as in the release).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenfold.studies.lowkey.params import LowKeyAttack
from tenfold.studies.lowkey.pipeline import warp


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


class GaussianBlur(nn.Module):
    """Depthwise Gaussian smoothing with reflect padding (the smoothing layer of LowKey's ensemble)."""

    def __init__(self, size: int, sigma: float, channels: int = 3):
        super().__init__()
        self.pad, self.channels = size // 2, channels
        self.register_buffer("kernel", gaussian_kernel(size, sigma).expand(channels, 1, size, size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, [self.pad] * 4, mode="reflect")
        return F.conv2d(x, self.kernel, groups=self.channels)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image mean SSIM of (B, C, H, W) images in [0, 1] (Wang et al. 2004 constants), differentiable."""
    c = a.shape[1]
    window = min(window, a.shape[-1], a.shape[-2]) | 1
    k = gaussian_kernel(window, sigma).to(a).expand(c, 1, window, window)

    def filt(x):
        return F.conv2d(x, k, groups=c)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


class LowKey:
    """LowKey against an ensemble of face models; `protect` filters a batch of full images."""

    def __init__(self, models: Sequence[nn.Module], crop: int, cfg: LowKeyAttack):
        self.models = [m.eval() for m in models]
        for m in self.models:
            m.requires_grad_(False)
        self.crop, self.cfg = crop, cfg
        self.blur = GaussianBlur(cfg.blur_kernel, cfg.blur_sigma)
        k = 2 * int(math.ceil(3 * cfg.smooth_sigma)) + 1
        self.smooth = GaussianBlur(k, cfg.smooth_sigma) if cfg.smooth_sigma > 0 else nn.Identity()

    def _crops(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        if self.cfg.warp:
            return warp(x, theta, self.crop)
        return F.interpolate(x, size=(self.crop, self.crop), mode="bilinear", align_corners=False)

    def features(self, crops: torch.Tensor, blurred: bool) -> list[torch.Tensor]:
        src = self.blur(crops) if blurred else crops
        return [m(src) for m in self.models]

    def feature_distance(self, crops: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
        """Per-image mean over the 2 x len(models) extractors of mean_d (f - t)^2 / ||t||."""
        terms = []
        for blurred in (False, True):
            for f, t in zip(self.features(crops, blurred), targets):
                terms.append(((f - t) ** 2).mean(1) / t.norm(dim=1).clamp_min(1e-8))
        return torch.stack(terms).mean(0)

    def protect(
        self, x: torch.Tensor, theta: torch.Tensor, seed: int = 0, progress: Callable[[int, int], None] | None = None
    ) -> tuple[torch.Tensor, dict]:
        """Filter images x (B, 3, H, W) in [0, 1] aligned by theta (B, 2, 3); returns (x', stats per image)."""
        cfg = self.cfg
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            clean_crops = self._crops(x, theta)
            targets = self.features(clean_crops, blurred=False)
        best = x.clone()
        best_dist = torch.full((x.shape[0],), -1.0)
        total = cfg.n_starts * cfg.n_iters
        for start in range(cfg.n_starts):
            delta = ((2 * torch.rand(x.shape, generator=gen) - 1) * cfg.init_noise).detach()
            for it in range(cfg.n_iters):
                delta.requires_grad_(True)
                adv = x + self.smooth(delta)
                crops = self._crops(adv, theta)
                dist = self.feature_distance(crops, targets)
                penalty = 0.5 * (1 - ssim(crops, clean_crops)) + 0.5 * (1 - ssim(adv, x))
                objective = (dist - cfg.c_sim * penalty).sum()
                (grad,) = torch.autograd.grad(objective, delta)
                delta = (delta + cfg.lr * grad.sign()).detach()
                if cfg.eps > 0:
                    delta = delta.clamp(-cfg.eps, cfg.eps)
                if progress:
                    progress(start * cfg.n_iters + it + 1, total)
            with torch.no_grad():
                adv = (x + self.smooth(delta)).clamp(0, 1)
            with torch.no_grad():
                dist = self.feature_distance(self._crops(adv, theta), targets)
            better = dist > best_dist
            best[better], best_dist[better] = adv[better], dist[better]
        with torch.no_grad():
            crop_ssim = ssim(self._crops(best, theta), clean_crops)
        return best, {"feature_distance": best_dist.numpy(), "crop_ssim": crop_ssim.numpy()}
