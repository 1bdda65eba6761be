"""The LowKey objective and optimiser (Cherepanova et al., ICLR 2021; released `lowkey_attack.py`).

Maximise, over the filtered photo x',

    mean over extractors e of  mean_d (e(A_e(x')) - e(A_e(x)))^2 / ||e(A_e(x))||_2   -  c_sim * P(x', x)

where A_e is the detection + alignment warp of the clean photo onto extractor e's template (a differentiable
`grid_sample` of the full-resolution photo, so the filter survives the recognizer's own pipeline), the
extractors are every ensemble model with and without a Gaussian smoothing layer in front (the release's
`combination=True`), and P is the perceptual penalty: 1/2 on the aligned face crops and 1/2 on the full photos
(here on the part of the photo that the face crops cover: elsewhere the gradient is zero and the photo keeps
only the start noise). LPIPS' AlexNet weights cannot be had offline, so P is 1 - SSIM (Gaussian window).
The optimiser is signed gradient ascent from uniform start noise, with no L-inf ball and a clamp at the end
(as released). Options beyond the release (off in the release setting): a Gaussian-smoothed perturbation
(`smooth_sigma`), expectation over small alignment shifts (`eot_shift`, `eot_scale`), L2-normalised instead of
signed steps (`step`), and snapshots of the iterate at chosen step counts (a 20-step filter is the 20th iterate of
the 50-step run: the trade-off's step axis costs one run).

A photo may hold several faces: `owner[k]` is the photo of face k, and every face's term is summed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tenfold.studies.lowkey.params import LowKeyAttack
from tenfold.studies.lowkey.pipeline import thetas as make_thetas
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
            pad = min(self.pad, x.shape[-1] - 1, x.shape[-2] - 1)
            x = F.pad(x, [pad] * 4, mode="reflect")
            if pad < self.pad:
                x = F.pad(x, [self.pad - pad] * 4, mode="replicate")
        return F.conv2d(x, self.kernel, groups=self.channels)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image mean SSIM of (B, C, H, W) images in [0, 1] (Wang et al. 2004 constants, Gaussian window 11 /
    sigma 1.5, valid positions only, as scikit-image's `gaussian_weights=True`), differentiable. The window is
    applied as two 1-d convolutions."""
    c = a.shape[1]
    window = min(window, a.shape[-1], a.shape[-2]) | 1
    if window > min(a.shape[-1], a.shape[-2]):
        window -= 2
    x = torch.arange(window, dtype=a.dtype, device=a.device) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    gh, gv = g.view(1, 1, 1, -1).expand(c, 1, 1, window), g.view(1, 1, -1, 1).expand(c, 1, window, 1)

    def filt(t):
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def jitter_thetas(theta: torch.Tensor, shift: float, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Random alignment error: scale by 1 +- `scale` and shift by +- `shift` (fractions of the crop)."""
    if shift <= 0 and scale <= 0:
        return theta
    b = theta.shape[0]
    s = 1 + scale * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    t = shift * 2 * (2 * torch.rand(b, 2, generator=gen) - 1)  # affine_grid units: the crop spans [-1, 1]
    out = theta.clone()
    out[:, :, :2] = out[:, :, :2] * s
    out[:, :, 2] = out[:, :, 2] + torch.einsum("bij,bj->bi", out[:, :, :2], t)
    return out


def footprint_box(theta: torch.Tensor, image_hw: tuple[int, int], pad: int = 6) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel box covering every crop sampled by `theta` (faces, 2, 3) in an image of
    `image_hw`, padded by `pad` px and clipped to the image."""
    corners = torch.tensor([[-1.0, -1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, 1]])
    pts = torch.einsum("bij,kj->bki", theta.double(), corners.double()).reshape(-1, 2)  # normalised (x, y)
    h, w = image_hw
    xs, ys = (pts[:, 0] + 1) * w / 2, (pts[:, 1] + 1) * h / 2
    top, bottom = max(0, int(ys.min()) - pad), min(h, int(math.ceil(ys.max())) + pad)
    left, right = max(0, int(xs.min()) - pad), min(w, int(math.ceil(xs.max())) + pad)
    return top, bottom, left, right


def step_direction(grad: torch.Tensor, kind: str, box: tuple[int, int, int, int]) -> torch.Tensor:
    """The ascent direction of one step: the sign of the gradient (the release: every pixel moves by `lr`), or
    the gradient scaled per photo to a root-mean-square of 1 over the filter's box (the same mean change, put
    where the objective is most sensitive)."""
    if kind == "sign":
        return grad.sign()
    top, bottom, left, right = box
    rms = grad[..., top:bottom, left:right].pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-12)
    return grad / rms.view(-1, *([1] * (grad.dim() - 1)))


class LowKey:
    """LowKey against an ensemble of `FaceModel`s (each with its own input size and template); `protect`
    filters a batch of full photos of one size."""

    def __init__(self, models: Sequence[nn.Module], cfg: LowKeyAttack):
        self.models = [m.eval() for m in models]
        for m in self.models:
            m.requires_grad_(False)
        self.cfg = cfg
        self.blur = GaussianBlur(cfg.blur_kernel, cfg.blur_sigma)
        k = 2 * int(math.ceil(3 * cfg.smooth_sigma)) + 1
        self.smooth = GaussianBlur(k, cfg.smooth_sigma) if cfg.smooth_sigma > 0 else nn.Identity()

    def thetas(self, points: Sequence[np.ndarray | None], image_hw: tuple[int, int]) -> list[torch.Tensor]:
        """Per model, the alignment thetas (faces, 2, 3) of the detected landmarks onto its template."""
        return [make_thetas(list(points), image_hw, m.size, m.template) for m in self.models]

    def _features(self, x: torch.Tensor, owner: torch.Tensor, ths: list[torch.Tensor], blurred: bool):
        out = []
        for m, th in zip(self.models, ths):
            crops = warp(x[owner], th, m.size)
            f = m.unnormalised(self.blur(crops) if blurred else crops)
            out.append(F.normalize(f, dim=1) if self.cfg.normalised_features else f)
        return out

    def feature_distance(self, x, owner, ths, targets) -> torch.Tensor:
        """Per face, the mean over the 2 x len(models) extractors of mean_d (f - t)^2 / ||t||."""
        terms = []
        for blurred in (False, True):
            for f, t in zip(self._features(x, owner, ths, blurred), targets):
                terms.append(((f - t) ** 2).mean(1) / t.norm(dim=1).clamp_min(1e-8))
        return torch.stack(terms).mean(0)

    def _gradient(self, x, delta, owner, ths, targets, clean_crops, clean_region, box, gen) -> torch.Tensor:
        """d objective / d delta, one extractor's graph at a time (peak memory of one model, not the ensemble):
        objective = sum over faces of feature distance - c_sim * (1/2 face-crop + 1/2 photo-region penalty)."""
        cfg, ref = self.cfg, self.models[0]
        delta = delta.detach().requires_grad_(True)
        adv = x + self.smooth(delta)
        point = adv.detach().requires_grad_(True)
        total = torch.zeros_like(point)
        n_terms = 2 * len(self.models)
        for m, th, t in zip(self.models, ths, targets):
            th = jitter_thetas(th, cfg.eot_shift, cfg.eot_scale, gen)
            for blurred in (False, True):
                crops = warp(point[owner], th, m.size)
                f = m.unnormalised(self.blur(crops) if blurred else crops)
                if cfg.normalised_features:
                    f = F.normalize(f, dim=1)
                term = (((f - t) ** 2).mean(1) / t.norm(dim=1).clamp_min(1e-8)).sum() / n_terms
                total += torch.autograd.grad(term, point)[0]
        if cfg.c_sim > 0:
            top, bottom, left, right = box
            face_pen = 1 - ssim(warp(point[owner], ths[0], ref.size), clean_crops)
            region_pen = (1 - ssim(point[..., top:bottom, left:right], clean_region))[owner]
            total -= torch.autograd.grad(cfg.c_sim * (0.5 * face_pen + 0.5 * region_pen).sum(), point)[0]
        return torch.autograd.grad(adv, delta, grad_outputs=total)[0]

    def protect(
        self,
        x: torch.Tensor,
        points: Sequence[np.ndarray],
        owner: Sequence[int] | None = None,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
        snapshots: Sequence[int] = (),
    ) -> tuple[torch.Tensor, dict]:
        """Filter photos x (B, 3, H, W) in [0, 1] whose faces have 5-point `points` (one (5, 2) array per face,
        face k in photo `owner[k]`; default one face per photo). Returns (x', stats); stats holds per-face
        `feature_distance` and `crop_ssim`, and `snapshots` {step: photos after that many steps} (clamped)."""
        cfg = self.cfg
        owner_t = torch.as_tensor(np.arange(len(x)) if owner is None else np.asarray(owner), dtype=torch.long)
        if len(points) != len(owner_t):
            raise ValueError(f"{len(points)} faces but {len(owner_t)} owners")
        gen = torch.Generator().manual_seed(seed)
        ths = self.thetas(points, tuple(x.shape[-2:]))
        ref = self.models[0]  # the face-region penalty is taken on the first model's aligned crop
        top, bottom, left, right = footprint_box(torch.cat(ths), tuple(x.shape[-2:]))  # where the filter acts
        with torch.no_grad():
            targets = self._features(x, owner_t, ths, blurred=False)
            clean_crops = warp(x[owner_t], ths[0], ref.size)
            clean_region = x[..., top:bottom, left:right]
        best, best_dist = x.clone(), torch.full((len(owner_t),), -1.0)
        keep = sorted({int(s) for s in snapshots if 0 < int(s) <= cfg.n_iters})
        shots: dict[int, torch.Tensor] = {}
        total = cfg.n_starts * cfg.n_iters
        for start in range(cfg.n_starts):
            delta = ((2 * torch.rand(x.shape, generator=gen) - 1) * cfg.init_noise).detach()
            for it in range(cfg.n_iters):
                grad = self._gradient(
                    x, delta, owner_t, ths, targets, clean_crops, clean_region, (top, bottom, left, right), gen
                )
                delta = (delta + cfg.lr * step_direction(grad, cfg.step, (top, bottom, left, right))).detach()
                if cfg.eps > 0:
                    delta = delta.clamp(-cfg.eps, cfg.eps)
                if start == cfg.n_starts - 1 and it + 1 in keep and it + 1 < cfg.n_iters:
                    with torch.no_grad():
                        shots[it + 1] = (x + self.smooth(delta)).clamp(0, 1)
                if progress:
                    progress(start * cfg.n_iters + it + 1, total)
            with torch.no_grad():
                adv = (x + self.smooth(delta)).clamp(0, 1)
                dist = self.feature_distance(adv, owner_t, ths, targets)
            # restarts keep the photo whose faces moved furthest (summed over its faces)
            per_photo = torch.zeros(len(x)).index_add_(0, owner_t, dist)
            best_photo = torch.zeros(len(x)).index_add_(0, owner_t, best_dist)
            better = per_photo > best_photo
            best[better] = adv[better]
            best_dist = torch.where(better[owner_t], dist, best_dist)
        if cfg.n_iters in keep:
            shots[cfg.n_iters] = best
        with torch.no_grad():
            crop_ssim = ssim(warp(best[owner_t], ths[0], ref.size), clean_crops)
        return best, {"feature_distance": best_dist.numpy(), "crop_ssim": crop_ssim.numpy(), "snapshots": shots}
