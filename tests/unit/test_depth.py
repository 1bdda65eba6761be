import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.components.models.recurrent import count_parameters
from tenfold.core.checkpoints import Checkpoint, CheckpointError
from tenfold.core.seeds import seeded
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.depth.models import DepthNet, agreement, iterations
from tenfold.studies.depth.params import DepthParams, DepthTrain, Family
from tenfold.studies.depth.train import learning_rate, lr_at, predict, standardize, train

SHAPE = (1, 8, 8)


def net(family, depth, rec, width=4, seed=0):
    return seeded(seed, lambda: DepthNet(family, depth, rec, width, SHAPE, 3, "kaiming"))


@settings(max_examples=30, deadline=None)
@given(family=st.sampled_from(["residual", "residual_bn", "cnn", "mlp"]), k=st.integers(1, 6))
def test_effective_depth_roundtrip(family, k):
    per, extra = {"residual": (4, 3), "residual_bn": (4, 3), "cnn": (1, 3), "mlp": (1, 2)}[family]
    assert iterations(family, per * k + extra) == k


def test_unreachable_depth_is_an_error():
    with pytest.raises(ValueError, match="effective depth 8"):
        iterations("residual", 8)
    with pytest.raises(ParamsError, match="effective depth 9"):
        validate_section("depth", {"families": [{"name": "residual", "depths": [9]}]})


@pytest.mark.parametrize("family,block", [("residual", 4 * 4 * 4 * 9), ("cnn", 4 * 4 * 9), ("mlp", 4 * 4 + 4)])
def test_parameter_counts_recurrent_vs_feedforward(family, block):
    d = {"residual": 15, "cnn": 6, "mlp": 5}[family]
    k = iterations(family, d)
    r, f = net(family, d, True), net(family, d, False)
    assert count_parameters(f) - count_parameters(r) == (k - 1) * block  # k-1 extra copies of the block
    x = torch.rand(2, *SHAPE)
    assert r(x).shape == f(x).shape == (2, 3)


def test_recurrent_shares_one_block_bn_per_iteration():
    r = net("residual_bn", 11, True)
    assert len(r.body) == 1 and len(r.bns) == 2  # one shared conv module, one BN set per iteration
    f = net("residual_bn", 11, False)
    assert len(f.body) == 2
    # BN parameters are per iteration in both, so the difference is exactly one module's convs
    assert count_parameters(f) - count_parameters(r) == count_parameters(f.body[1])


def test_recurrent_applies_the_same_block_k_times():
    r = net("mlp", 5, True)
    x = torch.rand(3, *SHAPE)
    h = r.stem(x)
    for _ in range(3):
        h = r.body[0](h)
    torch.testing.assert_close(r(x), r.head(h))


def test_agreement():
    assert agreement(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5


def test_lr_schedule_warmup_and_milestones():
    cfg = DepthTrain(epochs=8, warmup_epochs=2, milestones=[0.5, 0.75], lr=1.0)
    assert lr_at(0, cfg, 1.0) == pytest.approx(1 - torch.exp(torch.tensor(-0.5)).item())
    assert lr_at(4, cfg, 1.0) == pytest.approx(0.1 * (1 - torch.exp(torch.tensor(-2.5)).item()))
    assert lr_at(7, cfg, 1.0) < lr_at(5, cfg, 1.0) < lr_at(3, cfg, 1.0)


def _toy():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, *SHAPE, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    return x, y, DepthTrain(epochs=4, batch_size=16, lr=0.05, warmup_epochs=0, milestones=[])


def test_training_learns_and_resumes_identically(tmp_path):
    x, y, cfg = _toy()
    full = net("mlp", 4, True, width=16)
    h = train(full, x, y, cfg, 0.05, seed=1)
    assert h[-1]["loss"] < h[0]["loss"]
    ck = Checkpoint(tmp_path / "ck.pt", "a")
    part = net("mlp", 4, True, width=16)
    train(part, x, y, cfg.model_copy(update={"epochs": 2}), 0.05, seed=1, checkpoint=ck)  # "killed" after 2 epochs
    assert ck.load()["epoch"] == 2
    resumed = net("mlp", 4, True, width=16)
    h2 = train(resumed, x, y, cfg, 0.05, seed=1, checkpoint=ck)
    assert [r["epoch"] for r in h2] == [1, 2, 3, 4]
    assert h2 == h
    assert torch.equal(predict(resumed, x), predict(full, x))
    for a, b in zip(resumed.parameters(), full.parameters()):
        assert torch.equal(a, b)


def test_checkpoint_of_other_params_starts_over_and_a_corrupt_one_is_an_error(tmp_path, caplog):
    x, y, cfg = _toy()
    cfg = cfg.model_copy(update={"epochs": 2})
    path = tmp_path / "ck.pt"
    train(net("mlp", 4, True, width=16), x, y, cfg, 0.05, seed=1, checkpoint=Checkpoint(path, "a"))
    fresh = net("mlp", 4, True, width=16)
    with caplog.at_level("WARNING", logger="tenfold.checkpoints"):
        h = train(fresh, x, y, cfg, 0.05, seed=1, checkpoint=Checkpoint(path, "b"))  # fingerprint mismatch
    assert [r["epoch"] for r in h] == [1, 2] and "starting over" in caplog.text
    assert Checkpoint(path, "b").load()["epoch"] == 2  # overwritten by the new run
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="ck.pt"):
        train(net("mlp", 4, True, width=16), x, y, cfg, 0.05, seed=1, checkpoint=Checkpoint(path, "b"))


def test_standardize_uses_the_training_statistics_per_channel():
    rng = np.random.default_rng(0)
    x_train = rng.normal([[[0.2]], [[0.5]], [[0.8]]], [[[0.1]], [[0.2]], [[0.3]]], (200, 3, 4, 4)).astype(np.float32)
    x_test = x_train[:10] + 1.0
    a, b = standardize(x_train, x_test)
    np.testing.assert_allclose(a.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(a.std(axis=(0, 2, 3)), 1, atol=1e-4)
    # the test images are shifted by 1 before standardising: by 1 / (train std of the channel) after
    np.testing.assert_allclose((b - a[:10]).mean(axis=(0, 2, 3)), 1 / x_train.std(axis=(0, 2, 3)), rtol=1e-4)
    assert a.dtype == b.dtype == np.float32
    flat = x_train.copy()
    flat[:, 1] = 0.5
    with pytest.raises(ValueError, match="constant"):
        standardize(flat, x_test)


def test_learning_rate_of_each_net():
    cfg = DepthTrain(lr=0.05, recurrent_lr=0.03)
    cnn = Family(name="cnn", depths=[5], recurrent_lr=0.01)
    mlp = Family(name="mlp", depths=[4], lr=0.02)
    res = Family(name="residual", depths=[11])
    assert learning_rate(cnn, True, cfg) == 0.01 and learning_rate(cnn, False, cfg) == 0.05
    assert learning_rate(mlp, True, cfg) == learning_rate(mlp, False, cfg) == 0.02  # the family's lr wins
    assert learning_rate(res, True, cfg) == 0.03 and learning_rate(res, False, cfg) == 0.05


def test_cpu_default_is_cifar10_with_the_paper_cnn_learning_rates():
    p = DepthParams()
    assert p.data.dataset == "cifar10" and p.data.standardize
    cnn = next(f for f in p.families if f.name == "cnn")
    assert cnn.recurrent_lr == 0.01 and (cnn.lr or p.train.lr) == 0.05
