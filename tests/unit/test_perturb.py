"""The perturbation engine: budgets and pixel range (property tests), masks, restarts, schedules, EOT,
inference-mode safety, and agreement with torchattacks' PGD."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.components.perturb.models import ARCHS, Standardize, build
from tenfold.components.perturb.pgd import PGD, TranslateFlip, accuracy, attack, ce_loss, project
from tenfold.components.perturb.train import clean_loss, fit, pgd_at_loss
from tenfold.core.checkpoints import Checkpoint, CheckpointError


def _linear(seed=0, d=12, k=3):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, k))


@settings(max_examples=12, deadline=None)
@given(
    norm=st.sampled_from(["linf", "l2"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(0, 4),
    seed=st.integers(0, 1000),
    minimize=st.booleans(),
    restarts=st.integers(1, 2),
)
def test_output_in_budget_and_pixel_range(norm, eps, steps, seed, minimize, restarts):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 1, 2, 6, generator=g)
    y = torch.randint(0, 3, (5,), generator=g)
    model = _linear(seed)
    xa = PGD(eps=eps, steps=steps, norm=norm, minimize=minimize, restarts=restarts).run(
        ce_loss(model, y), x, generator=g
    )
    d = (xa - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert bool((size <= eps + 1e-5).all())
    assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000))
def test_per_example_budget_and_mask(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 3, 4, generator=g)
    y = torch.randint(0, 3, (4,), generator=g)
    eps = torch.tensor([0.0, 0.05, 0.1, 0.3])
    mask = torch.zeros(1, 1, 3, 4)
    mask[..., 1:, :2] = 1
    xa = PGD(eps=eps, steps=3).run(ce_loss(_linear(seed), y), x, mask=mask, generator=g)
    d = xa - x
    assert bool((d.flatten(1).abs().amax(1) <= eps + 1e-6).all())
    assert float(d[..., 0, :].abs().max()) == 0.0 and float(d[..., 2:].abs().max()) == 0.0
    assert float(d[0].abs().max()) == 0.0


def test_project_is_idempotent_and_l2_exact():
    x = torch.full((2, 1, 2, 2), 0.5)
    delta = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]]).view(2, 1, 2, 2)
    eps = torch.tensor([1.0, 1.0]).view(2, 1, 1, 1)
    p = project(delta, x, eps, "l2", None, -10, 10)
    assert torch.allclose(p.flatten(1).norm(dim=1), torch.tensor([1.0, 0.1]))
    assert torch.allclose(project(p, x, eps, "l2", None, -10, 10), p)


def test_ascent_increases_and_descent_decreases_loss():
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 2, 6), torch.randint(0, 3, (16,))
    model = _linear()
    loss = ce_loss(model, y)
    up = PGD(eps=0.2, steps=10, random_start=False).run(loss, x)
    down = PGD(eps=0.2, steps=10, random_start=False, minimize=True).run(loss, x)
    with torch.no_grad():
        assert float(loss(up).mean()) > float(loss(x).mean()) > float(loss(down).mean())


def test_restarts_never_worse_per_example_and_deterministic():
    torch.manual_seed(0)
    x, y = torch.rand(32, 1, 2, 6), torch.randint(0, 3, (32,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    loss = ce_loss(model, y)
    one = PGD(eps=0.3, steps=3, restarts=1).run(loss, x, generator=torch.Generator().manual_seed(5))
    many = PGD(eps=0.3, steps=3, restarts=4).run(loss, x, generator=torch.Generator().manual_seed(5))
    again = PGD(eps=0.3, steps=3, restarts=4).run(loss, x, generator=torch.Generator().manual_seed(5))
    assert bool((loss(many) >= loss(one) - 1e-6).all())  # the first restart is the single run
    assert torch.equal(many, again)


def test_step_schedules():
    assert PGD(eps=1, steps=8).step_factor(7) == 1.0
    ms = PGD(eps=1, steps=250, schedule="multistep")
    assert ms.step_factor(0) == 1.0 and ms.step_factor(100) == pytest.approx(0.1)
    assert ms.step_factor(249) == pytest.approx(1e-3)
    cos = PGD(eps=1, steps=10, schedule="cosine")
    assert cos.step_factor(0) == 1.0 and cos.step_factor(10) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        PGD(eps=1, steps=1, norm="l1")


def test_eot_augmentation_is_differentiable_and_identity_without_shift():
    x = torch.rand(3, 1, 8, 8, requires_grad=True)
    out = TranslateFlip(0.0, flip=False)(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)
    TranslateFlip(0.125)(x, torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    y = torch.randint(0, 3, (3,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    xa = PGD(eps=0.1, steps=2, eot=3, augment=TranslateFlip()).run(ce_loss(model, y), x.detach())
    assert float((xa - x).abs().max()) <= 0.1 + 1e-6


def test_inference_mode_clean_and_no_parameter_grads():
    model = _linear()
    x, y = torch.rand(4, 1, 2, 6), torch.randint(0, 3, (4,))
    with torch.inference_mode():
        xi = x.clone()
        xa = attack(model, xi, y, 0.1, 3)
    assert xa.shape == x.shape and float((xa - x).abs().max()) <= 0.1 + 1e-6
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_models_build_and_bad_name(arch):
    assert build(arch, 1, 10, 28)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg", 1, 10, 28)


def test_standardize_fits_channel_stats_and_keeps_pixel_units():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 4, 4, generator=g) * torch.tensor([0.8, 0.4, 0.0]).view(1, 3, 1, 1) + 0.1
    wrapped = Standardize.fitted(torch.nn.Identity(), x)
    z = wrapped(x)
    assert torch.allclose(z[:, :2].mean((0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z[:, :2].transpose(0, 1).reshape(2, -1).std(1), torch.ones(2), atol=1e-4)
    assert float(wrapped.std[0, 2]) == 1.0 and torch.allclose(z[:, 2], torch.zeros(64, 4, 4), atol=1e-6)  # constant
    assert {"mean", "std"} <= set(wrapped.state_dict())  # saved with the weights
    # an attack on the wrapped net still perturbs pixels within eps of the [0, 1] input
    net = Standardize.fitted(build("cnn", 3, 10, 4), x)
    xa = attack(net, x[:8], torch.zeros(8, dtype=torch.long), 0.05, 3)
    assert float((xa - x[:8]).abs().max()) <= 0.05 + 1e-6 and float(xa.min()) >= 0 and float(xa.max()) <= 1


def test_fit_multistep_gamma_scales_the_lr():
    """Loss = sum of one parameter, no momentum or decay: each step moves it by exactly the current lr."""
    p = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.p = p
    x, y = torch.zeros(4, 1), torch.zeros(4, dtype=torch.long)
    fit(
        model,
        x,
        y,
        4,
        1.0,
        4,
        0,
        loss_fn=lambda m, xb, yb, gen: (m.p.sum(), {}),
        weight_decay=0.0,
        momentum=0.0,
        schedule="multistep",
        milestones=(0.5, 0.75),
        gamma=0.2,
    )
    assert float(p) == pytest.approx(-(1 + 1 + 0.2 + 0.04))  # epochs 1-2 at lr 1, then x0.2, then x0.2 again
    q = torch.nn.Module()
    q.p = torch.nn.Parameter(torch.zeros(1))
    fit(
        q,
        x,
        y,
        4,
        1.0,
        4,
        0,
        loss_fn=lambda m, xb, yb, gen: (m.p.sum(), {}),
        weight_decay=0.0,
        momentum=0.0,
        schedule="multistep",
        milestones=(0.5,),
    )
    assert float(q.p) == pytest.approx(-(1 + 1 + 0.1 + 0.1))  # default gamma 0.1


class _Killed(Exception):
    pass


def _fit_run(ck=None, kill_after=None, epochs=3, **kw):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 2, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    model = _linear(1)

    def on_epoch(r):
        if r["epoch"] == kill_after:
            raise _Killed

    hist = fit(model, x, y, epochs, 0.1, 16, 7, checkpoint=ck, on_epoch=on_epoch, **kw)
    return model, hist


@pytest.mark.parametrize("loss", ["clean", "pgd_at"])
def test_fit_killed_run_resumes_to_identical_weights(tmp_path, loss):
    kw = {"loss_fn": clean_loss if loss == "clean" else pgd_at_loss(0.1, 2)}
    ref, ref_hist = _fit_run(**kw)
    ck = Checkpoint(tmp_path / "ck.pt", "fp")
    with pytest.raises(_Killed):
        _fit_run(ck, kill_after=2, **kw)
    resumed, hist = _fit_run(ck, **kw)
    assert hist == ref_hist
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()))


def test_fit_checkpoint_mismatch_starts_over_and_corrupt_file_raises(tmp_path, caplog):
    ck = Checkpoint(tmp_path / "ck.pt", "one")
    _fit_run(ck)
    other, hist = _fit_run(Checkpoint(ck.path, "two"))  # other params: trained from scratch, logged
    assert [r["epoch"] for r in hist] == [1, 2, 3] and "starting over" in caplog.text
    ck.path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="ck.pt"):
        _fit_run(ck)


def test_fit_epoch_seeds_replace_the_default_stream():
    a, ha = _fit_run(epoch_seeds=[1, 2, 3])
    b, hb = _fit_run(epoch_seeds=[1, 2, 3])
    c, hc = _fit_run()
    assert ha == hb and ha != hc
    with pytest.raises(ValueError, match="epoch_seeds"):
        _fit_run(epoch_seeds=[1])


@pytest.mark.slow
def test_matches_torchattacks_pgd():
    """Same model, budget, steps and step size: robust accuracy agrees with torchattacks within noise."""
    torchattacks = pytest.importorskip("torchattacks")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:, None] / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    torch.manual_seed(0)
    model = build("mlp", 1, 10, 8)
    fit(model, x[:1200], y[:1200], 8, 0.1, 64, 0)
    xt, yt = x[1200:], y[1200:]
    assert accuracy(model, xt, yt) > 0.85
    ours = accuracy(model, attack(model, xt, yt, 0.1, 10, 0.025), yt)
    torch.manual_seed(0)
    ref = accuracy(model, torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=10, random_start=True)(xt, yt), yt)
    assert ours < accuracy(model, xt, yt) - 0.1  # the attack does something
    assert abs(ours - ref) <= 0.04
