"""Defenses on tiny inputs: the mixing, filtering, detection and DP pieces do what their papers say."""

import numpy as np
import pytest
import torch

from tenfold.components.defenses import DEFENSES
from tenfold.components.defenses.augment import cutmix, cutout, mixup
from tenfold.components.defenses.dp import DPSGD, BatchClipNoise
from tenfold.components.defenses.filtering import ActivationClustering, SpectralSignatures, precision_recall
from tenfold.components.defenses.strip import Strip
from tenfold.components.victims import ConvNet, TrainConfig

torch.set_num_threads(1)  # tiny tensors: extra threads only add contention


def test_registry_has_every_issue_defense_with_a_stage():
    for name in [
        "none",
        "mixup",
        "cutmix",
        "cutout",
        "maxup",
        "dpsgd",
        "batch_clip_noise",
        "spectral_signatures",
        "activation_clustering",
        "strip",
    ]:
        assert DEFENSES[name].stage
    assert DEFENSES["dpsgd"].stage == "differential privacy"
    assert "NOT differentially private" in DEFENSES["batch_clip_noise"].reports


def test_mixup_soft_labels_are_convex_combinations():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 6, 6), torch.arange(8) % 4
    xm, ym = mixup(x, y, g, 4, alpha=1.0, nway=3)
    assert torch.allclose(ym.sum(1), torch.ones(8)) and (ym > 0).sum(1).max() >= 2
    assert xm.shape == x.shape and not torch.equal(xm, x)


def test_cutmix_probability_and_exact_pixel_ratio():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(4, 1, 10, 10), torch.tensor([0, 1, 2, 3])
    same, ys = cutmix(x, y, g, 4, prob=0.0)
    assert torch.equal(same, x) and torch.equal(ys, torch.eye(4))
    xm, ym = cutmix(x, y, g, 4, prob=1.0)
    changed = (xm != x).float().mean().item()
    own = ym[torch.arange(4), y]
    assert torch.allclose(own, own[0].expand(4)) and own[0] <= 1.0
    assert changed <= 1 - own[0].item() + 1e-6  # pasted area equals 1 - lambda (some pixels may coincide)


def test_cutout_zeroes_one_square_per_image():
    g = torch.Generator().manual_seed(2)
    x = torch.ones(5, 1, 20, 20)
    out = cutout(x, g, alpha=1.0)
    zeros = (out == 0).flatten(1).sum(1)
    assert torch.all(zeros > 0) and torch.all(zeros <= 13 * 13)


def test_spectral_signatures_and_activation_clustering_find_planted_outliers():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 8))
    y = np.repeat([0, 1], 100)
    poison = np.arange(10)
    feats[poison] += 8.0  # a separated sub-population inside class 0
    ss = SpectralSignatures(1.5).select(feats, y, len(poison))
    p, r = precision_recall(ss, poison)
    assert r == 1.0 and p > 0.3
    ac = ActivationClustering(4, 0.35, 0).select(feats, y, len(poison))
    assert precision_recall(ac, poison) == (1.0, 1.0)
    assert precision_recall(np.array([], dtype=int), poison) == (0.0, 0.0)


class _Trojan(torch.nn.Module):
    """Predicts class 0 with certainty when pixel (0, 0) is bright, else uniform: a perfect backdoor."""

    def forward(self, x):
        on = (x[:, 0, 0, 0] > 0.9).float()[:, None]
        return on * torch.tensor([[20.0, 0, 0]]) + (1 - on) * torch.zeros(1, 3)


def test_strip_flags_low_entropy_trojaned_inputs():
    rng = np.random.default_rng(0)
    clean = rng.random((30, 1, 4, 4)).astype(np.float32) * 0.5
    trig = clean.copy()
    trig[:, 0, 0, 0] = 1.0
    s = Strip(5, 0.05, 0)
    with pytest.raises(RuntimeError):
        s.flag(_Trojan(), trig, clean, "cpu")
    s.calibrate(_Trojan(), clean[:15], clean, "cpu")
    # blends keep the trigger pixel at >= 0.5 + 0 ... only above 0.9 when the partner is bright too
    assert s.flag(_Trojan(), trig, np.maximum(clean, 0.85), "cpu").mean() > 0.9


def test_dpsgd_reports_epsilon_and_more_noise_means_smaller_epsilon():
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 64)
    cfg = TrainConfig(1, 16, 0.05, 0.0)
    eps = []
    for noise in (0.8, 2.0):
        torch.manual_seed(0)
        _, rep = DPSGD(noise, 1.0, 1e-5).fit(ConvNet(1, 3, 4, 8), x, y, cfg, "cpu", 0)
        eps.append(rep["epsilon"])
    assert np.isfinite(eps).all() and eps[0] > eps[1] > 0


def test_batch_clip_noise_is_reproducible_and_labelled_not_private():
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        m, rep = BatchClipNoise(1.0, 0.1).fit(ConvNet(1, 3, 4, 8), x, y, TrainConfig(1, 8, 0.05, 0.0), "cpu", 3)
        outs.append(m.head.weight.detach().clone())
    assert torch.equal(outs[0], outs[1]) and rep["differentially_private"] is False
