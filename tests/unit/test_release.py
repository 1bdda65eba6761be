"""Secure release: the reverse cross-entropy, the target gradient, the alignment objective, the baselines,
the online release service and the folder/CLI release (atomic, never in place)."""

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tenfold.components.perturb.models import build
from tenfold.studies.secure_release.evaluate import perceptual
from tenfold.studies.secure_release.poison import alignment_objective, craft, reverse_ce, target_gradient, unlearnable
from tenfold.studies.secure_release.service import ReleaseError, ReleaseService, list_items, protect_folder


def _tiny(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_reverse_ce_is_minus_log_one_minus_p():
    z = torch.randn(6, 5)
    y = torch.randint(0, 5, (6,))
    p = z.softmax(1).gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(reverse_ce(z, y), -torch.log1p(-p), atol=1e-5)


def test_target_gradient_is_mean_gradient_of_reverse_ce():
    model = _tiny()
    x, y = _data()
    g = target_gradient(model, x, y, batch_size=5)
    ref = torch.autograd.grad(reverse_ce(model(x), y).mean(), list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g, ref))


def test_alignment_poisons_align_gradients_within_budget():
    model = _tiny()
    x, y = _data(24)
    g_t = target_gradient(model, x, y)
    obj = alignment_objective(model, y, g_t)
    eps = 32 / 255
    xr = craft("alignment", model, x, y, eps, 15, 0.2 * eps, g_t=g_t, augment=False, batch_size=24, num_classes=3)
    assert float((xr - x).abs().max()) <= eps + 1e-6 and float(xr.min()) >= 0 and float(xr.max()) <= 1
    with torch.enable_grad():
        assert float(obj(xr).detach()) < float(obj(x).detach()) - 0.05  # the cosine to g_t grew


@pytest.mark.parametrize("method", ["adv_targeted", "adv_untargeted", "random_noise"])
def test_baselines_move_loss_the_right_way(method):
    model = _tiny()
    x, y = _data(24)
    eps = 16 / 255
    xr = craft(method, model, x, y, eps, 10, eps / 4, augment=False, num_classes=3)
    assert float((xr - x).abs().max()) <= eps + 1e-6
    with torch.no_grad():
        if method == "adv_untargeted":
            assert F.cross_entropy(model(xr), y) > F.cross_entropy(model(x), y)
        elif method == "adv_targeted":
            t = (y + 1) % 3
            assert F.cross_entropy(model(xr), t) < F.cross_entropy(model(x), t)


def test_unlearnable_noise_in_budget_and_bad_method():
    x, y = _data(20)
    eps = 8 / 255
    xr, rounds, err = unlearnable(_tiny(), x, y, eps, 2, eps / 5, train_steps=2, max_rounds=2, batch_size=10)
    assert 1 <= rounds <= 2 and 0 <= err <= 1 and float((xr - x).abs().max()) <= eps + 1e-6
    with pytest.raises(ValueError, match="needs the target gradient"):
        craft("alignment", _tiny(), x, y, eps, 1, eps)
    with pytest.raises(ValueError):
        craft("unlearnable", _tiny(), x, y, eps, 1, eps)


def test_unlearnable_stops_by_its_error_rule():
    """The min-min loop ends as soon as the surrogate's error on the noisy data is under `stop_error`, not at the
    cap: a threshold any model meets stops after one round, an unreachable one runs to the cap."""
    x, y = _data(20)
    eps = 8 / 255
    _, rounds, err = unlearnable(
        _tiny(), x, y, eps, 1, eps / 5, train_steps=1, stop_error=1.01, max_rounds=5, batch_size=10
    )
    assert rounds == 1 and err < 1.01
    _, rounds, err = unlearnable(
        _tiny(), x, y, eps, 1, eps / 5, train_steps=1, stop_error=0.0, max_rounds=3, batch_size=10
    )
    assert rounds == 3 and err >= 0.0


def test_perceptual_distance():
    x = torch.rand(3, 1, 16, 16)
    d = perceptual(x, (x + 4 / 255).clamp(0, 1))
    assert 30 < d["psnr"] < 60 and 0.5 < d["ssim"] <= 1 and d["linf_255"] == pytest.approx(4, abs=0.01)


def _service(tmp_path=None):
    model = build("mlp", 1, 3, 4)
    x, y = _data(12)
    return ReleaseService(model, target_gradient(model, x, y), 16 / 255, 3, 3 / 255, False, 3, "mlp", (1, 4, 4), 7)


def test_service_online_is_deterministic_and_roundtrips(tmp_path):
    x, y = _data(12, seed=1)
    a = _service()
    out = a.protect_stream(x, y, 4)
    assert a.protected == 12 and a.calls == 3 and a.images_per_second > 0
    assert float((out - x).abs().max()) <= 16 / 255 + 1e-6 and float((out - x).abs().max()) > 0
    a.save(tmp_path / "svc.pt")
    b = ReleaseService.load(tmp_path / "svc.pt")
    assert torch.equal(b.protect_stream(x, y, 4), out)
    with pytest.raises(ReleaseError, match="shape"):
        b.protect(torch.rand(1, 1, 5, 5), torch.tensor([0]))
    with pytest.raises(ReleaseError, match="labels"):
        b.protect(torch.rand(1, 1, 4, 4), torch.tensor([3]))


def _write_folder(root, n=5):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / str(i % 3)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(d / f"img{i}.png")


def test_protect_folder_atomic_never_in_place(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_folder(src)
    before = {p: p.read_bytes() for p in src.rglob("*.png")}
    svc = _service()
    r = protect_folder(svc, src, out, batch_size=2)
    assert r["protected"] == 5 and r["skipped"] == 0
    assert {p: p.read_bytes() for p in src.rglob("*.png")} == before  # originals untouched
    outs = sorted(out.rglob("*.png"))
    assert len(outs) == 5 and not list(out.rglob("*.tmp"))
    assert (out / "labels.csv").read_text().splitlines()[0] == "file,label"
    orig = np.asarray(Image.open(src / "1" / "img1.png"), np.float32)
    prot = np.asarray(Image.open(out / "1" / "img1.png"), np.float32)
    assert np.abs(prot - orig).max() <= 16 + 0.5
    stamp = {p: p.stat().st_mtime_ns for p in outs}
    again = protect_folder(svc, src, out)
    assert again["protected"] == 0 and again["skipped"] == 5
    assert {p: p.stat().st_mtime_ns for p in outs} == stamp  # existing outputs are kept
    with pytest.raises(ReleaseError, match="outside"):
        protect_folder(svc, src, src / "released")


def test_folder_labels_errors(tmp_path):
    (tmp_path / "cats").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "cats" / "a.png")
    with pytest.raises(ReleaseError, match="no label"):
        list_items(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\ncats/a.png,2\n")
    assert list_items(tmp_path) == [(tmp_path / "cats" / "a.png", 2)]


def test_release_cli(tmp_path, capsys):
    from flows.release_cli import add_release_command

    src, out = tmp_path / "in", tmp_path / "out"
    _write_folder(src, 3)
    _service().save(tmp_path / "svc.pt")
    ap = argparse.ArgumentParser()
    add_release_command(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(["release", str(src), str(out), "--service", str(tmp_path / "svc.pt")])
    assert args.fn(args) == 0
    assert "protected 3 images" in capsys.readouterr().out and len(list(out.rglob("*.png"))) == 3
    bad = ap.parse_args(["release", str(src), str(src / "x"), "--service", str(tmp_path / "svc.pt")])
    with pytest.raises(SystemExit, match="outside"):
        bad.fn(bad)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_strong_augmentation_counter_uses_the_registry_and_trains(name, monkeypatch):
    from tenfold.components.defenses import augment
    from tenfold.studies.secure_release.evaluate import strong_augmentation_loss

    calls = []
    real = getattr(augment, name)
    monkeypatch.setattr(augment, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = build("mlp", 1, 3, 8)
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 3
    loss_fn = strong_augmentation_loss(name, 1.0, 3)
    gen = torch.Generator().manual_seed(0)
    loss, _ = loss_fn(model, x, y, gen)
    assert calls and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError):
        strong_augmentation_loss("cutout", 1.0, 3)
