"""Weighted minimax risk: margins and weights as in the official code, trainer losses, non-uniform evaluation."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tenfold.components.perturb.models import Standardize
from tenfold.components.perturb.pgd import accuracy, robust_accuracy
from tenfold.components.perturb.train import fit
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.errors import ArtifactError
from tenfold.core.runtime import atomic_savez
from tenfold.studies.minimax.data import load
from tenfold.studies.minimax.params import MinimaxData, MinimaxTrain
from tenfold.studies.minimax.weighted import (
    checkpoint_epoch,
    importance_weights,
    label_shift,
    make_model,
    margin,
    nonuniform_eval,
    shift_weights,
    shifted_accuracy,
    trainer_loss,
    vulnerable_classes,
    warmup_fraction,
    weighted_ce,
)


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))


def _data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_margin_in_probability_space():
    z = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]]))
    y = torch.tensor([0, 0])
    assert torch.allclose(margin(z, y), torch.tensor([0.5, -0.3]), atol=1e-6)


def test_weights_up_weight_vulnerable_examples_and_keep_gradients():
    z = torch.randn(8, 3, requires_grad=True)
    y = torch.randint(0, 3, (8,))
    assert torch.allclose(importance_weights(z, y, 0.0), torch.ones(8))
    w = importance_weights(z, y, 2.0)
    m = margin(z, y)
    assert bool(((w[m.argmin()] >= w) | (m == m.min())).all())  # lowest margin, largest weight
    w.sum().backward()  # not detached, as in the official code
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


def test_alpha_zero_trainer_equals_plain_pgd_at():
    x, y = _data()
    model = _model()
    plain = trainer_loss("at", 0.1, 2, 0.05, alpha=2.0)
    weighted0 = trainer_loss("weighted_at", 0.1, 2, 0.05, alpha=0.0)
    l1, i1 = plain(model, x, y, torch.Generator().manual_seed(1))
    l2, i2 = weighted0(model, x, y, torch.Generator().manual_seed(1))
    assert torch.allclose(l1, l2) and torch.allclose(i1["weights"], torch.ones(16))
    lw, iw = trainer_loss("weighted_at", 0.1, 2, 0.05, alpha=2.0)(model, x, y, torch.Generator().manual_seed(1))
    assert not torch.allclose(iw["weights"], torch.ones(16))
    with pytest.raises(ValueError):
        trainer_loss("mart", 0.1, 1, 0.1, 1.0)


@pytest.mark.parametrize("kind", ["trades", "weighted_trades"])
def test_trades_losses_train(kind):
    x, y = _data(32)
    model = _model()
    fn = trainer_loss(kind, 0.1, 2, 0.05, alpha=2.0, beta=5.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    first = None
    for i in range(15):
        loss, info = fn(model, x, y, torch.Generator().manual_seed(i))
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first and info["weights"].shape == (32,)


def test_nonuniform_eval_alpha_zero_is_robust_accuracy_and_weighting():
    x, y = _data(40)
    model = _model()
    r = nonuniform_eval(model, x, y, eps=0.0, steps=1, step_size=0.0, restarts=1, alphas=[0.0, 3.0])
    assert r[0.0] == pytest.approx(accuracy(model, x, y))  # eps 0: robust = clean
    with torch.no_grad():
        z = model(x)
        w = importance_weights(z, y, 3.0)
        ref = float((w * (z.argmax(1) == y)).sum() / w.sum())
    assert r[3.0] == pytest.approx(ref, abs=1e-6)
    attacked = nonuniform_eval(model, x, y, eps=0.3, steps=5, step_size=0.1, restarts=2, alphas=[0.0])
    assert attacked[0.0] <= r[0.0]


def test_weighted_ce_alpha_zero_is_ce():
    x, y = _data()
    model = _model()
    with torch.no_grad():
        assert torch.allclose(weighted_ce(model, y, 0.0)(x), F.cross_entropy(model(x), y, reduction="none"))


def test_eps_warmup_ramps_the_budget_and_resumes():
    x, y = _data()
    model = _model()
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    full = trainer_loss("weighted_at", 0.3, 3, 0.1, alpha=2.0)(model, x, y, gen())[0]
    # first step of a very long warm-up: budget ~0, so the loss is the clean weighted loss
    tiny = trainer_loss("weighted_at", 0.3, 3, 0.1, alpha=2.0, warmup_steps=10**6)(model, x, y, gen())[0]
    with torch.no_grad():
        clean = weighted_ce(model, y, 2.0)(x).mean()
    assert torch.allclose(tiny.detach(), clean, atol=1e-4) and float(full.detach()) > float(clean) + 1e-3
    # the loss counts its calls: the 2nd call of a 2-step warm-up uses the full budget
    ramp = trainer_loss("weighted_at", 0.3, 3, 0.1, alpha=2.0, warmup_steps=2)
    first = ramp(model, x, y, gen())[0]
    assert float(first.detach()) < float(full.detach())
    assert torch.allclose(ramp(model, x, y, gen())[0], full)
    # a resumed run past the warm-up starts at the full budget
    resumed = trainer_loss("weighted_at", 0.3, 3, 0.1, alpha=2.0, warmup_steps=2, start_step=5)
    assert torch.allclose(resumed(model, x, y, gen())[0], full)
    assert warmup_fraction(0, 4) == 0.25 and warmup_fraction(3, 4) == 1.0 and warmup_fraction(0, 0) == 1.0


def test_checkpoint_epoch_reads_fit_checkpoints(tmp_path):
    x, y = _data(32)
    ck = Checkpoint(tmp_path / "ck.pt", "f")
    assert checkpoint_epoch(ck) == 0 and checkpoint_epoch(None) == 0
    fit(_model(), x, y, 2, 0.05, 16, 0, loss_fn=trainer_loss("at", 0.1, 1, 0.05, 0.0), checkpoint=ck)
    assert checkpoint_epoch(ck) == 2 and checkpoint_epoch(Checkpoint(ck.path, "other")) == 0


class _Killed(Exception):
    pass


def test_killed_weighted_trainer_resumes_warmup_to_identical_weights(tmp_path):
    """A run killed after epoch 2 of 4 and restarted (warm-up counter from the checkpoint) ends with exactly the
    weights of an uninterrupted run, although the eps warm-up spans the kill."""
    x, y = _data(32)
    seeds = [11, 12, 13, 14]

    def run(ck, kill_after=None):
        model = _model()
        start = checkpoint_epoch(ck) * 2  # 2 steps per epoch
        loss = trainer_loss("weighted_at", 0.2, 2, 0.05, alpha=2.0, warmup_steps=6, start_step=start)

        def on_epoch(r):
            if r["epoch"] == kill_after:
                raise _Killed

        hist = fit(model, x, y, 4, 0.05, 16, 0, loss_fn=loss, checkpoint=ck, epoch_seeds=seeds, on_epoch=on_epoch)
        return model, hist

    ref, ref_hist = run(Checkpoint(None, ""))
    ck = Checkpoint(tmp_path / "ck.pt", "fp")
    with pytest.raises(_Killed):
        run(ck, kill_after=2)
    assert checkpoint_epoch(ck) == 2
    resumed, hist = run(ck)
    assert [r["loss"] for r in hist] == [r["loss"] for r in ref_hist]
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()))


@pytest.mark.parametrize("kind", ["at", "weighted_at"])
def test_at_trainers_learn_with_warmup(kind):
    """Regression: the CPU default used to leave both AT trainers at chance. With an eps warm-up and enough SGD
    steps, an easy separable problem must be learnt, and stay well above chance (1/3) under the attack."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (96,), generator=g)
    x = (0.3 * torch.rand(96, 1, 4, 4, generator=g) + 0.6 * F.one_hot(y, 16).float().view(96, 1, 4, 4)).clamp(0, 1)
    model = _model()
    fit(model, x, y, 15, 0.05, 16, 0, loss_fn=trainer_loss(kind, 0.1, 3, 0.04, alpha=2.0, warmup_steps=18))
    assert accuracy(model, x, y) > 0.85 and robust_accuracy(model, x, y, 0.1, 5, 0.04) > 0.6


def test_nonuniform_eval_returns_per_example_correctness():
    x, y = _data(40)
    model = _model()
    r, correct = nonuniform_eval(
        model, x, y, eps=0.2, steps=3, step_size=0.1, restarts=1, alphas=[0.0, 2.0], return_correct=True
    )
    assert set(correct) == {0.0, 2.0} and correct[0.0].shape == (40,)
    assert r[0.0] == pytest.approx(float(correct[0.0].mean()))  # alpha 0: plain mean of the correctness


def test_shift_weights_put_the_mass_on_the_chosen_classes():
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    w = shift_weights(y, [1], 0.8, 3)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[y == 1].sum()) == pytest.approx(0.8)
    assert float(w[y == 0][0]) == pytest.approx(float(w[y == 2][0]))  # uniform outside the shifted classes
    correct = (y != 1).float()  # the shifted classes are all wrong
    assert shifted_accuracy(correct, w) == pytest.approx(0.2)
    assert shifted_accuracy(correct, torch.ones(10)) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        shift_weights(y, [5], 0.8, 6)


def test_label_shift_pools_every_run_and_reweights():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    runs = {("at", 1): torch.tensor([1, 1, 0, 0, 1, 1.0]), ("weighted_at", 1): torch.tensor([1, 1, 1, 0, 0, 0.0])}
    classes, acc = label_shift(runs, y, 1, 0.8, 3)
    assert classes == [1]  # pooled accuracy: class 0 1.0, class 1 0.25, class 2 0.5
    assert acc[("at", 1)] == pytest.approx(0.2) and acc[("weighted_at", 1)] == pytest.approx(0.1 + 0.4)


def test_vulnerable_classes_are_the_least_robust():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    correct = torch.tensor([1, 1, 0, 0, 1, 0, 1, 1.0])
    assert vulnerable_classes(correct, y, 2, 4) == [1, 2]
    assert vulnerable_classes(correct, y, 1, 4) == [1]


def _cifar_arrays(root, per_class=(5, 3)):
    """A stand-in for the output of stage build_cifar10: uint8 NCHW arrays + manifest under root/cifar10."""
    g = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "test"), per_class):
        arrays[f"x_{split}"] = g.integers(0, 256, (10 * n, 3, 32, 32), dtype=np.uint8)
        arrays[f"y_{split}"] = np.repeat(np.arange(10), n).astype(np.int64)
    atomic_savez(root / "cifar10" / "cifar10.npz", compress=False, **arrays)
    (root / "cifar10" / "manifest.json").write_text(json.dumps({"source": "imagefolder:test-slice"}))
    return arrays


def test_cifar10_is_read_from_the_build_stage_arrays_and_subset_by_class(tmp_path):
    arrays = _cifar_arrays(tmp_path)
    d = load(MinimaxData(dataset="cifar10", n_train=20, n_test=10), tmp_path, seed=3)
    assert d.name == "cifar10" and d.source == "imagefolder:test-slice" and d.shape == (3, 32, 32)
    assert np.bincount(d.y_train, minlength=10).tolist() == [2] * 10 and len(d.y_test) == 10
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    for img, lab in zip(d.x_train, d.y_train):  # every subset image is one of the originals, with its label
        raw = (img * 255).round().astype(np.uint8)
        assert any(np.array_equal(raw, o) for o in arrays["x_train"][arrays["y_train"] == lab])
    again = load(MinimaxData(dataset="cifar10", n_train=20, n_test=10), tmp_path, seed=3)
    assert np.array_equal(again.x_train, d.x_train)  # seeded


def test_missing_cifar10_arrays_fail_before_training_naming_the_stage(tmp_path):
    with pytest.raises(ArtifactError, match="build_cifar10"):
        load(MinimaxData(dataset="cifar10"), tmp_path, seed=0)


def test_make_model_standardises_inside_the_net_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = 0.5 + 0.2 * torch.rand(30, 3, 8, 8, generator=g)
    a = make_model(MinimaxTrain(arch="cnn", normalize=True), x, 10, seed=4)
    b = make_model(MinimaxTrain(arch="cnn", normalize=True), x, 10, seed=4)
    plain = make_model(MinimaxTrain(arch="cnn", normalize=False), x, 10, seed=4)
    assert isinstance(a, Standardize) and not isinstance(plain, Standardize)
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.allclose(a.mean.flatten(), x.mean((0, 2, 3)), atol=1e-6)
    with torch.no_grad():  # the same weights behind the standardisation: plain net on standardised inputs
        assert torch.allclose(a(x), plain((x - a.mean) / a.std), atol=1e-5)


def test_augment_batch_crops_and_flips_per_image_from_the_generator():
    from tenfold.studies.minimax.data import augment_batch

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(1), pad=0, flip=False), x)
    flipped = augment_batch(x[:1].repeat(64, 1, 1, 1), torch.Generator().manual_seed(2), pad=0)
    n_flip = sum(torch.equal(f, x[0].flip(-1)) for f in flipped)
    assert 10 < n_flip < 54 and all(torch.equal(f, x[0]) or torch.equal(f, x[0].flip(-1)) for f in flipped)
