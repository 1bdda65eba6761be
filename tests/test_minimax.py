"""Weighted minimax risk: margins and weights as in the official code, trainer losses, non-uniform evaluation."""
import pytest
import torch
import torch.nn.functional as F

from tenfold.minimax.weighted import importance_weights, margin, nonuniform_eval, trainer_loss, weighted_ce
from tenfold.perturb.pgd import accuracy


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
