"""Secure release: the reverse cross-entropy, the target gradient, the alignment objective, the baselines,
the online release service and the folder/CLI release (atomic, never in place)."""

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tenfold.components.perturb.models import build
from tenfold.studies.secure_release.evaluate import channel_stats, perceptual, train_victim
from tenfold.studies.secure_release.nets import build_net, crop_flip
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
    model = build_net("mlp", (1, 4, 4), 3)
    x, y = _data(12)
    return ReleaseService(model, target_gradient(model, x, y), 16 / 255, 3, 3 / 255, False, 3, "mlp", (1, 4, 4), 7)


def _rgb_service(classes=None):
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    y = torch.arange(8) % 3
    mean, std = channel_stats(x)
    model = build_net("mlp", (3, 32, 32), 3, mean, std)
    return ReleaseService(
        model,
        target_gradient(model, x, y),
        8 / 255,
        2,
        0.8 / 255,
        True,
        3,
        "mlp",
        (3, 32, 32),
        5,
        flip=True,
        mean=mean,
        std=std,
        classes=classes,
    )


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


def test_restarts_keep_the_best_alignment_restart():
    """Alignment with restarts runs (the cosine needs a backward pass while PGD scores restarts under no_grad) and
    keeps, per batch, a restart whose objective is no worse than a single run's."""
    model = _tiny()
    x, y = _data(24)
    g_t = target_gradient(model, x, y)
    obj = alignment_objective(model, y, g_t)
    eps = 16 / 255
    seen = []
    one = craft("alignment", model, x, y, eps, 4, 0.2 * eps, restarts=1, g_t=g_t, augment=False, num_classes=3, seed=1)
    three = craft(
        "alignment",
        model,
        x,
        y,
        eps,
        4,
        0.2 * eps,
        restarts=3,
        g_t=g_t,
        augment=False,
        num_classes=3,
        seed=1,
        on_step=lambda r, i, xa: seen.append((r, i)),
    )
    with torch.enable_grad():
        assert float(obj(three).detach()) <= float(obj(one).detach()) + 1e-6
    assert seen == [(r, i) for r in range(3) for i in range(1, 5)]
    assert float((three - x).abs().max()) <= eps + 1e-6


def test_constant_step_snapshots_equal_shorter_runs():
    """With a constant step the iterate after k steps is exactly the k-step release (the drop-vs-steps curve comes
    from one run's snapshots)."""
    model = _tiny()
    x, y = _data(12)
    g_t = target_gradient(model, x, y)
    snaps = {}
    craft(
        "alignment",
        model,
        x,
        y,
        16 / 255,
        5,
        2 / 255,
        g_t=g_t,
        num_classes=3,
        seed=4,
        augment=True,
        on_step=lambda r, i, xa: snaps.__setitem__(i, xa.clone()),
    )
    short = craft("alignment", model, x, y, 16 / 255, 2, 2 / 255, g_t=g_t, num_classes=3, seed=4, augment=True)
    assert torch.equal(snaps[2], short) and not torch.equal(snaps[2], snaps[5])


def test_crop_flip_matches_the_loop_augmentation():
    """The vectorised crop + flip equals the shared per-image loop (victims.augment_batch) for the same draws."""
    from tenfold.components.victims import augment_batch

    x = torch.rand(6, 3, 8, 8)
    a = crop_flip(pad=2)(x, torch.Generator().manual_seed(9))
    b = augment_batch(x, torch.Generator().manual_seed(9), pad=2, flip=True)
    assert torch.equal(a, b)


def test_build_net_normalises_inside_and_checks_stats():
    x = torch.rand(5, 3, 32, 32) * 0.5 + 0.25
    mean, std = channel_stats(x)
    net = build_net("cnn", (3, 32, 32), 10, mean, std)
    z = net.norm(x)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert net(x).shape == (5, 10)
    with pytest.raises(ValueError, match="both"):
        build_net("cnn", (3, 32, 32), 10, mean, None)
    with pytest.raises(ValueError, match="per channel"):
        build_net("cnn", (3, 32, 32), 10, [0.5], [0.2])


def test_victim_trains_with_augmentation_warmup_and_curve():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 3, 8, 8, generator=g), torch.arange(40) % 2
    x[y == 1, 0] += 0.5  # a learnable class signal
    acc, model, curve = train_victim(
        "mlp",
        x.clamp(0, 1),
        y,
        x.clamp(0, 1),
        y,
        3,
        0.1,
        10,
        0,
        2,
        augment=True,
        warmup_epochs=1.0,
        stats=channel_stats(x),
        curve=True,
    )
    assert len(curve) == 3 and curve[-1] == acc and 0 <= acc <= 1


def test_sampled_curve_evaluates_only_the_listed_epochs_and_leaves_training_alone():
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(60, 3, 8, 8, generator=g), torch.arange(60) % 3
    x[y == 1, 0] += 0.5
    args = ("cnn", x.clamp(0, 1), y, x.clamp(0, 1), y, 4, 0.1, 10, 5, 3)
    kw = dict(augment=True, warmup_epochs=1.0, stats=channel_stats(x))
    acc_all, m_all, every = train_victim(*args, curve=True, **kw)
    acc_s, m_s, sampled = train_victim(*args, curve=[2], **kw)
    acc_n, _, none = train_victim(*args, **kw)
    # the same training whichever epochs are evaluated: same final weights and accuracy
    assert acc_all == acc_s == acc_n and none == []
    assert all(torch.equal(a, b) for a, b in zip(m_all.state_dict().values(), m_s.state_dict().values()))
    assert len(every) == 4 and None not in every and every[-1] == acc_all
    assert sampled == [None, every[1], None, acc_s]  # epoch 2 evaluated; the last epoch is the final accuracy


def test_rgb_service_protects_32x32_and_roundtrips(tmp_path):
    svc = _rgb_service()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0])
    out = svc.protect(x, y)
    assert out.shape == x.shape and float((out - x).abs().max()) <= 8 / 255 + 1e-6
    svc.save(tmp_path / "svc.pt")
    back = ReleaseService.load(tmp_path / "svc.pt")
    assert back.mean == svc.mean and back.flip and back.shape == (3, 32, 32)
    again = _rgb_service()
    assert torch.equal(again.protect(x, y), back.protect(x, y))  # same seed, same call count
    with pytest.raises(ReleaseError, match="shape"):
        back.protect(torch.rand(1, 1, 28, 28), torch.tensor([0]))


def test_rgb_folder_release_with_class_name_folders(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(0)
    for name in ("airplane", "bird"):
        (src / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src / name / "a.png")
    svc = _rgb_service(classes=["airplane", "automobile", "bird"])
    r = protect_folder(svc, src, out)
    assert r["protected"] == 2
    assert (out / "labels.csv").read_text().splitlines()[1:] == ["airplane/a.png,0", "bird/a.png,2"]
    img = np.asarray(Image.open(out / "bird" / "a.png"))
    assert img.shape == (32, 32, 3)
    (src / "grey").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(src / "grey" / "b.png")
    with pytest.raises(ReleaseError, match="no label"):
        protect_folder(svc, src, tmp_path / "out2")
    svc.classes = None
    with pytest.raises(ReleaseError, match="no label"):
        list_items(src)
    small = tmp_path / "small" / "0"
    small.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(small / "c.png")
    with pytest.raises(ReleaseError, match="does not match"):
        protect_folder(svc, tmp_path / "small", tmp_path / "out3")


@pytest.mark.slow  # imports the Prefect task module: seconds
def test_craft_task_shows_a_bar_of_crafting_steps_and_snapshots_stay(capsys, monkeypatch):
    import tasks.secure_release as T

    monkeypatch.setenv("TQDM_DISABLE", "1")  # as on a CI runner: asked for explicitly, the bar still shows
    model = _tiny()
    x, y = _data(8)
    g_t = target_gradient(model, x, y)
    args = ("alignment", model, g_t, x, y, 16 / 255, 4, 0.2, 2, False, False, "constant", 3, 5, (2,))
    out, _, snaps, info = T.craft_batch.fn(*args, show_progress=True, label="craft test")
    err = capsys.readouterr().err
    assert "craft test" in err and "/8 " in err  # 4 steps x 2 restarts
    quiet, _, quiet_snaps, _ = T.craft_batch.fn(*args)
    assert capsys.readouterr().err == ""  # off by default
    assert torch.equal(out, quiet) and torch.equal(snaps[2], quiet_snaps[2]) and set(snaps) == {2}
    assert info["loss_released"] < info["loss_clean"]
